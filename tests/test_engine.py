"""The engine: discovery, prefilter, one parse per file, companions, requirements, safe writes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import libcst as cst
import pytest
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.metadata import PositionProvider

from claun_migrate.codemods._support import add_companion, report, require, stamp
from claun_migrate.engine import (
    SelectionError,
    discover,
    migrate,
    select_codemods,
    write_atomic,
)


class Rename(VisitorBasedCodemodCommand):
    """``foo`` -> ``bar`` wherever the name appears."""

    DESCRIPTION = "foo -> bar"
    TRIGGERS = ("foo",)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        if updated_node.value == "boom":
            raise RuntimeError("codemod bug")
        return (
            updated_node.with_changes(value="bar") if updated_node.value == "foo" else updated_node
        )


class Helper(VisitorBasedCodemodCommand):
    """Asks for ``helper.py`` beside the file and for flask in requirements.txt."""

    DESCRIPTION = "companion and requirement"
    TRIGGERS = ("needs_helper",)
    REQUIRES = ("rename",)
    TEXT = stamp("helper.py", "1.0", "VALUE = 1\n")

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        add_companion(self.context, "helper.py", self.TEXT)
        require(self.context, "flask")
        require(self.context, "psycopg2", "psycopg2-binary")
        return updated_node


class Census(VisitorBasedCodemodCommand):
    """Reports how many files the engine gathered, at the first statement."""

    DESCRIPTION = "gather"
    TRIGGERS = ("census",)
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, context: CodemodContext, files: int = -1) -> None:
        super().__init__(context)
        self.files = files

    @classmethod
    def gather(cls, sources: Mapping[str, str]) -> dict[str, int]:
        return {"files": len(sources)}

    def visit_Module(self, node: cst.Module) -> bool:
        report(self.context, node.body[0], "CEN001", f"{self.files} files")
        return False


REGISTRY = {"rename": Rename, "helper": Helper, "census": Census}


def run(*paths: Path, **options: object):
    return migrate(paths, registry=REGISTRY, jobs=1, **options)  # type: ignore[arg-type]


def test_discovery_skips_vcs_virtualenv_vendor_and_build_folders(tmp_path: Path) -> None:
    for folder in [".git", "node_modules", "build", "dist", "__pycache__", "x.egg-info", "env"]:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "m.py").write_text("foo\n")
    (tmp_path / "env" / "pyvenv.cfg").write_text("")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "m.py").write_text("foo\n")
    (tmp_path / "pkg" / "notes.txt").write_text("foo\n")
    assert discover([tmp_path]) == [tmp_path / "pkg" / "m.py"]


def test_discovery_honours_excludes_by_relative_path_or_name(tmp_path: Path) -> None:
    for name in ["keep.py", "skip_me.py", "gen/out.py"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("")
    assert discover([tmp_path], ["skip_*.py", "gen"]) == [tmp_path / "keep.py"]


def test_files_without_a_trigger_are_not_parsed(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("foo = 1\n")
    (tmp_path / "broken.py").write_text("def (:\n")
    result = run(tmp_path)
    assert (result.files_scanned, result.files_parsed, result.errors) == (2, 1, [])


def test_unparsable_file_is_reported_and_the_others_still_migrate(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("foo = 1\n")
    (tmp_path / "b.py").write_text("foo = (\n")
    result = run(tmp_path, write=True)
    assert [(e.path.name, e.message.startswith("cannot parse")) for e in result.errors] == [
        ("b.py", True)
    ]
    assert (tmp_path / "a.py").read_text() == "bar = 1\n"
    assert (tmp_path / "b.py").read_text() == "foo = (\n"


def test_a_failing_codemod_is_a_file_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("foo = boom\n")
    (tmp_path / "b.py").write_text("foo = 2\n")
    result = run(tmp_path, write=True)
    assert [(e.path.name, "codemod bug" in e.message) for e in result.errors] == [("a.py", True)]
    assert (tmp_path / "b.py").read_text() == "bar = 2\n"


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("foo = 1\n")
    result = run(tmp_path)
    assert [c.after for c in result.changes] == ["bar = 1\n"]
    assert (tmp_path / "a.py").read_text() == "foo = 1\n"


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbffoo = 'caf\xc3\xa9'\n",
        b"foo = 1\r\nx = 2\r\n",
        b"# -*- coding: latin-1 -*-\nfoo = '\xe9'\n",
    ],
    ids=["utf8-bom", "crlf", "latin1-cookie"],
)
def test_writes_keep_bom_line_endings_and_encoding(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "a.py").write_bytes(data)
    run(tmp_path, write=True)
    assert (tmp_path / "a.py").read_bytes() == data.replace(b"foo", b"bar")


def test_writes_keep_the_file_mode_and_leave_no_temp_files(tmp_path: Path) -> None:
    script = tmp_path / "a.py"
    script.write_text("foo = 1\n")
    script.chmod(0o751)
    run(tmp_path, write=True)
    assert script.stat().st_mode & 0o777 == 0o751
    assert os.listdir(tmp_path) == ["a.py"]


def test_writes_go_through_a_symlink_and_keep_it(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "a.py"
    target.write_text("foo = 1\n")
    link = tmp_path / "link.py"
    link.symlink_to(target)
    write_atomic(link, b"bar = 1\n")
    assert link.is_symlink()
    assert target.read_bytes() == b"bar = 1\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another owner")
def test_writes_keep_the_file_owner(tmp_path: Path) -> None:
    script = tmp_path / "a.py"
    script.write_text("foo = 1\n")
    os.chown(script, 12345, 12345)
    write_atomic(script, b"bar = 1\n")
    assert (script.stat().st_uid, script.stat().st_gid) == (12345, 12345)


def test_companion_is_created_then_left_alone_when_identical(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("needs_helper = 1\n")
    first = run(tmp_path, write=True)
    assert (tmp_path / "helper.py").read_text() == Helper.TEXT
    assert [c.before for c in first.changes if c.path.name == "helper.py"] == [None]
    assert run(tmp_path).changes == []


def test_older_generated_companion_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("needs_helper = 1\n")
    (tmp_path / "helper.py").write_text(stamp("helper.py", "0.9", "VALUE = 0\n"))
    run(tmp_path, write=True)
    assert (tmp_path / "helper.py").read_text() == Helper.TEXT


@pytest.mark.parametrize(
    ("existing", "reason"),
    [
        (stamp("helper.py", "0.9", "VALUE = 0\n") + "EDITED = 1\n", "edited by hand (GEN001)"),
        ("mine\n", "not generated by claun-migrate (GEN002)"),
    ],
    ids=["edited-copy", "not-ours"],
)
def test_companion_edited_by_hand_or_not_ours_is_an_error_and_its_source_is_left_untouched(
    tmp_path: Path, existing: str, reason: str
) -> None:
    """The source would import a companion that cannot be written: it is not migrated at all."""
    (tmp_path / "requirements.txt").write_text("requests\n")
    (tmp_path / "a.py").write_text("foo = needs_helper\n")
    (tmp_path / "helper.py").write_text(existing)
    (tmp_path / "b.py").write_text("foo = 2\n")
    result = run(tmp_path, write=True)
    assert [(e.path.name, e.message) for e in result.errors] == [
        ("a.py", f"not migrated: it needs helper.py, which is {reason}; {HINT[reason[-7:-1]]}")
    ]
    assert [c.path.name for c in result.changes] == ["b.py"]
    assert dict(result.edits) == {"rename": 1}
    assert not any(f.finding.code.startswith("GEN") for f in result.findings)
    assert (tmp_path / "a.py").read_text() == "foo = needs_helper\n"
    assert (tmp_path / "helper.py").read_text() == existing
    assert (tmp_path / "requirements.txt").read_text() == "requests\n"
    assert (tmp_path / "b.py").read_text() == "bar = 2\n"


HINT = {
    "GEN001": "compare it with the new version, then delete it and run again",
    "GEN002": "rename it (this file imports ours under that name), then run again",
}


def test_only_the_source_with_an_unwritable_companion_is_left_untouched(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "helper.py").write_text("mine\n")
    (tmp_path / "pkg" / "a.py").write_text("foo = needs_helper\n")
    (tmp_path / "b.py").write_text("foo = needs_helper\n")
    result = run(tmp_path, write=True)
    assert [e.path.name for e in result.errors] == ["a.py"]
    assert sorted(c.path.relative_to(tmp_path).as_posix() for c in result.changes) == [
        "b.py",
        "helper.py",
    ]
    assert (tmp_path / "pkg" / "a.py").read_text() == "foo = needs_helper\n"


@pytest.mark.parametrize(
    ("existing", "code"),
    [(stamp("helper.py", "0.9", "VALUE = 0\n") + "EDITED = 1\n", "GEN001"), ("mine\n", "GEN002")],
    ids=["edited-copy", "not-ours"],
)
def test_unwritable_companion_of_an_unchanged_source_is_a_review_item(
    tmp_path: Path, existing: str, code: str
) -> None:
    """A source this run does not change already imports the file: nothing breaks, so the
    file is only reported and kept."""
    (tmp_path / "a.py").write_text("needs_helper = 1\n")
    (tmp_path / "helper.py").write_text(existing)
    result = run(tmp_path, write=True)
    assert result.errors == []
    found = [(f.path.name, f.finding.code) for f in result.findings]
    assert [item for item in found if item[1].startswith("GEN")] == [("helper.py", code)]
    assert (tmp_path / "helper.py").read_text() == existing


def test_missing_requirements_are_appended_and_alternatives_count(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("needs_helper = 1\n")
    (tmp_path / "requirements.txt").write_text("psycopg2-binary>=2.9\nrequests")
    run(tmp_path, write=True)
    assert (tmp_path / "requirements.txt").read_text() == "psycopg2-binary>=2.9\nrequests\nflask\n"
    assert all(c.path.name != "requirements.txt" for c in run(tmp_path).changes)


def test_no_requirements_file_is_a_review_item(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "a.py").write_text("needs_helper = 1\n")
    codes = {f.finding.code for f in run(tmp_path).findings}
    assert codes == {"REQ001"}


def test_gather_sees_every_discovered_source_and_only_triggered_files_are_parsed(tmp_path):
    for name in ["a", "b"]:
        (tmp_path / f"{name}.py").write_text("census = 1\n")
    (tmp_path / "c.py").write_text("other = 1\n")
    result = run(tmp_path, select=["census"])
    assert [f.finding.message for f in result.findings] == ["3 files", "3 files"]


def test_edits_are_counted_per_codemod(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("foo = 1\nx = 2\ny = foo\n")
    (tmp_path / "b.py").write_text("foo = 1\n")
    assert dict(run(tmp_path).edits) == {"rename": 3}


def test_selection_adds_what_a_codemod_requires_in_registry_order() -> None:
    assert select_codemods(["helper"], registry=REGISTRY) == ["rename", "helper"]
    assert select_codemods(None, ["census"], registry=REGISTRY) == ["rename", "helper"]


@pytest.mark.parametrize(("select", "ignore"), [(["nope"], []), (["helper"], ["rename"])])
def test_unknown_or_contradictory_selection_is_an_error(select: list[str], ignore: list[str]):
    with pytest.raises(SelectionError):
        select_codemods(select, ignore, registry=REGISTRY)


def test_parallel_run_gives_the_same_result_as_a_sequential_one(tmp_path: Path) -> None:
    for index in range(24):
        (tmp_path / f"m{index:02}.py").write_text(f"foo = {index}\n" if index % 3 else "x = 1\n")
    sequential = migrate([tmp_path], registry=REGISTRY, jobs=1)
    parallel = migrate([tmp_path], registry=REGISTRY, jobs=2)
    assert parallel.changes == sequential.changes
    assert len(parallel.changes) == 16


def test_generated_runtime_copies_are_never_parsed(tmp_path: Path) -> None:
    (tmp_path / "helper.py").write_text(stamp("helper.py", "1.0", "foo = 1\n"))
    result = run(tmp_path)
    assert (result.files_parsed, result.changes) == (0, [])
