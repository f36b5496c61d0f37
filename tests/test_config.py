"""``[tool.claun-migrate]``, ``--select``/``--ignore`` by codemod or rule code, and inline
suppressions: a review item kept on purpose no longer fails ``check --strict``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from claun_migrate.cli import main
from claun_migrate.config import ConfigError, load

CALL = 'pool = psycopg2.pool.SimpleConnectionPool(1, 10, "dbname=x")'


def project(tmp_path: Path, line: str = CALL, table: str = "") -> Path:
    """A project whose one file has one POOL003 review item (a pool that is not thread-safe)."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "export.py").write_text(f"import psycopg2.pool\n\n{line}\n")
    (tmp_path / "pyproject.toml").write_text(f"[project]\nname = 'x'\n{table}")
    return tmp_path


def strict(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", "--strict", *map(str, args)])
    return result.exit_code, result.output


def test_the_review_item_fails_strict_when_nothing_suppresses_it(tmp_path: Path) -> None:
    code, out = strict(project(tmp_path))
    assert code == 1
    assert "pkg/export.py:3:8: POOL003 " in out


@pytest.mark.parametrize(
    "comment",
    ["# noqa: POOL003", "# noqa: CM105, POOL003", "# noqa", "# claun-migrate: ignore[POOL003]"],
)
def test_an_inline_suppression_on_the_line_keeps_it_and_strict_passes(
    tmp_path: Path, comment: str
) -> None:
    code, out = strict(project(tmp_path, f"{CALL}  {comment}"))
    assert code == 0, out
    assert "0 review items (1 suppressed)" in out


@pytest.mark.parametrize("comment", ["# noqa: CM105", "# claun-migrate: ignore[CM105]"])
def test_a_suppression_naming_another_code_keeps_the_finding(tmp_path: Path, comment: str) -> None:
    assert strict(project(tmp_path, f"{CALL}  {comment}"))[0] == 1


@pytest.mark.parametrize(
    "table",
    [
        '[tool.claun-migrate]\nignore = ["POOL003"]\n',
        '[tool.claun-migrate]\nignore = ["POOL"]\n',
        '[tool.claun-migrate.per-file-ignores]\n"pkg/export.py" = ["POOL003"]\n',
        '[tool.claun-migrate.per-file-ignores]\n"pkg/*" = ["POOL003"]\n',
    ],
)
def test_the_configuration_ignores_it_found_upward_from_the_path(
    tmp_path: Path, table: str
) -> None:
    root = project(tmp_path, table=table)
    assert strict(root / "pkg")[0] == 0
    assert strict(root / "pkg" / "export.py")[0] == 0


def test_a_per_file_ignore_for_another_file_keeps_it(tmp_path: Path) -> None:
    table = '[tool.claun-migrate.per-file-ignores]\n"other/*" = ["POOL003"]\n'
    assert strict(project(tmp_path, table=table))[0] == 1


def test_ignore_on_the_command_line_takes_rule_codes(tmp_path: Path) -> None:
    root = project(tmp_path)
    assert strict("--ignore", "POOL003", root)[0] == 0
    assert strict("--select", "CM105", root)[0] == 0
    assert strict("--select", "POOL003", root)[0] == 1


def test_exclude_in_the_configuration_drops_files_even_named_on_the_command_line(
    tmp_path: Path,
) -> None:
    root = project(tmp_path, table='[tool.claun-migrate]\nextend-exclude = ["pkg"]\n')
    result = CliRunner().invoke(main, ["check", "--strict", str(root / "pkg" / "export.py")])
    assert result.exit_code == 0
    assert "warning: no Python files found" in result.output


def test_an_unknown_selector_is_a_usage_error_naming_both_kinds(tmp_path: Path) -> None:
    code, out = strict("--ignore", "XY999", project(tmp_path))
    assert code == 2
    assert "unknown codemod or rule 'XY999'" in out and "named-rows" in out and "CM105" in out


def test_an_unknown_key_is_an_error_naming_the_file(tmp_path: Path) -> None:
    root = project(tmp_path, table='[tool.claun-migrate]\nignores = ["POOL003"]\n')
    code, out = strict(root)
    assert code == 2
    assert f"{root / 'pyproject.toml'}: [tool.claun-migrate] unknown key ignores" in out


def test_per_file_ignores_refuse_codemod_names(tmp_path: Path) -> None:
    table = '[tool.claun-migrate.per-file-ignores]\n"pkg/*" = ["named-rows"]\n'
    code, out = strict(project(tmp_path, table=table))
    assert code == 2 and "takes rule codes, not codemods" in out


def test_load_reads_every_key_and_passes_the_data_layer_table_through(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "pyproject.toml").write_text(
        "[tool.claun-migrate]\n"
        'select = ["pool-connections"]\nignore = ["CM105"]\nexclude = ["a"]\n'
        'extend-exclude = ["b"]\nline-length = 88\n'
        '[tool.claun-migrate.per-file-ignores]\n"x/*.py" = ["CM1"]\n'
        "[tool.claun-migrate.data-layer]\n"
        'connect-functions = ["db_connect"]\nhelpers = ["fetch_all"]\n'
    )
    config = load([tmp_path / "sub"])
    assert config.path == tmp_path / "pyproject.toml"
    assert (config.select, config.ignore, config.exclude) == (
        ["pool-connections"],
        ["CM105"],
        ["a", "b"],
    )
    assert config.per_file_ignores == {"x/*.py": ["CM1"]} and config.line_length == 88
    assert config.data_layer == {"connect-functions": ["db_connect"], "helpers": ["fetch_all"]}


def test_a_pyproject_without_the_table_is_passed_over(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.claun-migrate]\nignore = ["CM105"]\n')
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "pyproject.toml").write_text("[tool.ruff]\nline-length = 80\n")
    assert load([tmp_path / "inner"]).ignore == ["CM105"]


def test_a_wrong_type_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.claun-migrate]\nline-length = "long"\n')
    with pytest.raises(ConfigError, match="line-length must be a positive integer"):
        load([tmp_path])


def test_a_project_with_its_own_codemods_package_runs(tmp_path: Path) -> None:
    root = project(tmp_path)
    (root / "codemods").mkdir()
    (root / "codemods" / "__init__.py").write_text("CODEMODS = 'the project s own'\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-m", "claun_migrate", "check", "--no-cache", "."],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "pkg/export.py:3:8: POOL003 " in result.stdout
    assert "1 of 2 files parsed" in result.stdout
