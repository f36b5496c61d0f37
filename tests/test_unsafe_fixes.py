"""The opt-in level for unsafe fixes: ``--unsafe-fixes`` / ``unsafe-fixes = true`` reach the
``gather`` of codemods that declare ``UNSAFE_FIXES``, and nothing else; default off."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import libcst as cst
import pytest
from click.testing import CliRunner
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.metadata import PositionProvider

from claun_migrate.cli import main
from claun_migrate.codemods import CODEMODS
from claun_migrate.codemods._support import report
from claun_migrate.config import ConfigError, load
from claun_migrate.engine import migrate


class Level(VisitorBasedCodemodCommand):
    """Reports the fix level its ``gather`` was given, at the first statement."""

    DESCRIPTION = "level"
    TRIGGERS = ("level_probe",)
    UNSAFE_FIXES = True
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, context: CodemodContext, unsafe: bool | None = None) -> None:
        super().__init__(context)
        self.unsafe = unsafe

    @classmethod
    def gather(cls, sources: Mapping[str, str], *, unsafe_fixes: bool) -> dict[str, bool]:
        return {"unsafe": unsafe_fixes}

    def visit_Module(self, node: cst.Module) -> bool:
        report(self.context, node.body[0], "LVL001", f"unsafe fixes {self.unsafe}")
        return False


class Safe(VisitorBasedCodemodCommand):
    """Gathers without knowing about fix levels (its gather takes no keyword)."""

    DESCRIPTION = "safe"
    TRIGGERS = ("level_probe",)

    @classmethod
    def gather(cls, sources: Mapping[str, str]) -> dict[str, object]:
        return {}


REGISTRY = {"level": Level, "safe": Safe}


def level(root: Path, **options: object) -> list[str]:
    result = migrate([root], registry=REGISTRY, jobs=1, **options)  # type: ignore[arg-type]
    assert result.errors == []
    return [located.finding.message for located in result.findings]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "a.py").write_text("level_probe = 1\n")
    return tmp_path


def test_unsafe_fixes_are_off_by_default(tree: Path) -> None:
    assert level(tree) == ["unsafe fixes False"]


def test_the_engine_passes_the_level_only_to_codemods_that_declare_it(tree: Path) -> None:
    assert level(tree, unsafe_fixes=True) == ["unsafe fixes True"]


def test_the_level_is_part_of_the_cache_key(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert level(tree, cache_dir=cache) == ["unsafe fixes False"]
    assert level(tree, cache_dir=cache, unsafe_fixes=True) == ["unsafe fixes True"]
    again = migrate([tree], registry=REGISTRY, jobs=1, cache_dir=cache, unsafe_fixes=True)
    assert again.files_cached == 1


def write_config(root: Path, table: str) -> None:
    (root / "pyproject.toml").write_text(f"[tool.claun-migrate]\n{table}\n")


def test_configuration_reads_unsafe_fixes(tmp_path: Path) -> None:
    assert load([tmp_path]).unsafe_fixes is False
    write_config(tmp_path, "unsafe-fixes = true")
    assert load([tmp_path]).unsafe_fixes is True


def test_unsafe_fixes_that_is_not_a_boolean_names_the_file(tmp_path: Path) -> None:
    write_config(tmp_path, 'unsafe-fixes = "yes"')
    with pytest.raises(ConfigError, match=r"pyproject.toml: \[tool.claun-migrate\] unsafe-fixes"):
        load([tmp_path])


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real command line, with the probe codemod among the registered ones."""
    monkeypatch.setitem(CODEMODS, "level", Level)


@pytest.mark.parametrize(
    ("table", "flags", "expected"),
    [
        ("", [], False),
        ("", ["--unsafe-fixes"], True),
        ("unsafe-fixes = true", [], True),
        ("unsafe-fixes = true", ["--no-unsafe-fixes"], False),
        ("unsafe-fixes = false", ["--unsafe-fixes"], True),
    ],
)
@pytest.mark.parametrize("command", ["check", "diff", "apply"])
@pytest.mark.usefixtures("registered")
def test_the_flag_overrides_the_configuration(
    tree: Path, command: str, table: str, flags: list[str], expected: bool
) -> None:
    write_config(tree, table)
    args = [command, "--no-cache", "-j", "1", "--select", "level", *flags, str(tree)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 1), result.output
    assert f"LVL001 unsafe fixes {expected}" in result.output
