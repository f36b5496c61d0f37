"""A run is a transaction over the tree: journal recovery, the lock, symlinks, changed files."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import libcst as cst
import pytest
from click.testing import CliRunner
from libcst.codemod import VisitorBasedCodemodCommand

import claun_migrate.engine as engine
from claun_migrate.cli import main
from claun_migrate.engine import TreeBusy, migrate, transaction
from claun_migrate.engine.edits import count_edits
from claun_migrate.engine.transaction import Transaction, digest, tree_lock
from tests.test_engine import REGISTRY, Helper, Rename


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv("CLAUN_MIGRATE_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def root(tmp_path: Path, state: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.py").write_text("foo = 1\n")
    (folder / "b.py").write_text("foo = 2\n")
    return folder


def run(root: Path, **options: object):
    return migrate([root], registry=REGISTRY, jobs=1, **options)  # type: ignore[arg-type]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


MIGRATED = {"a.py": b"bar = 1\n", "b.py": b"bar = 2\n"}
ORIGINAL = {"a.py": b"foo = 1\n", "b.py": b"foo = 2\n"}


def interrupted(root: Path, state: Path) -> Transaction:
    """A transaction staged as ``apply`` stages it, then abandoned as by a SIGKILL."""
    txn = Transaction(os.path.realpath(root), state)
    files = {str(root / name): (MIGRATED[name], digest(ORIGINAL[name])) for name in ORIGINAL}
    assert txn.prepare(files, [os.path.realpath(root)]) == {}
    return txn


def test_apply_leaves_no_journal_staged_file_or_temp_file(root: Path, state: Path) -> None:
    run(root, write=True)
    assert snapshot(root) == MIGRATED
    assert list((state / "journal").iterdir()) == []
    assert list((state / "staging").iterdir()) == []


def test_staging_beside_the_files_when_the_state_folder_is_elsewhere(
    root: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transaction, "same_filesystem", lambda a, b: False)
    run(root, write=True)
    assert snapshot(root) == MIGRATED


def test_a_run_killed_while_staging_is_rolled_back_by_the_next_command(
    root: Path, state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(transaction, "same_filesystem", lambda a, b: False)
    interrupted(root, state)
    assert any(".claun-" in name for name in os.listdir(root))  # dot-files beside the targets
    run(root)
    assert "before writing; removed its temporary files" in capsys.readouterr().err
    assert snapshot(root) == ORIGINAL
    assert list((state / "journal").iterdir()) == []


def test_a_run_killed_while_renaming_is_completed_by_the_next_command(
    root: Path, state: Path, capsys: pytest.CaptureFixture
) -> None:
    txn = interrupted(root, state)
    txn._save("commit")
    first = next(iter(txn.entries.values()))
    os.replace(first.staged, first.target)  # killed after the first rename
    result = run(root)
    assert "while writing; completed it: 1 of 2 files written now" in capsys.readouterr().err
    assert snapshot(root) == MIGRATED
    assert result.changes == []


def test_completion_leaves_a_file_edited_since_the_kill_alone(
    root: Path, state: Path, capsys: pytest.CaptureFixture
) -> None:
    txn = interrupted(root, state)
    txn._save("commit")
    (root / "b.py").write_text("mine = 2\n")
    run(root)
    assert "left alone, changed since" in capsys.readouterr().err
    assert snapshot(root) == {"a.py": b"bar = 1\n", "b.py": b"mine = 2\n"}


def test_a_run_killed_while_restoring_is_restored_by_the_next_command(
    root: Path, state: Path, capsys: pytest.CaptureFixture
) -> None:
    txn = interrupted(root, state)
    txn.commit()
    txn._save("rollback")
    run(root)
    assert "while restoring its files; restored 2 of 2" in capsys.readouterr().err
    assert snapshot(root) == ORIGINAL


def test_a_second_apply_waits_for_the_lock_then_exits_2(
    root: Path, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(transaction.LOCK_WAIT_ENV, "0.2")
    with tree_lock(state, os.path.realpath(root), exclusive=True):
        with pytest.raises(TreeBusy, match=f"pid {os.getpid()}"):
            run(root, write=True)
        outcome = CliRunner().invoke(main, ["apply", str(root)])
    assert outcome.exit_code == 2
    assert "another claun-migrate run is using" in outcome.output
    assert snapshot(root) == ORIGINAL


def test_a_second_apply_is_serialised_behind_the_first(root: Path, state: Path) -> None:
    released = threading.Event()

    def hold() -> None:
        with tree_lock(state, os.path.realpath(root), exclusive=True):
            time.sleep(0.3)
            (root / "a.py").write_text("foo = 10\n")
        released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.05)
    result = run(root, write=True)
    holder.join()
    assert released.is_set()
    assert [c.after for c in result.changes] == ["bar = 10\n", "bar = 2\n"]


def test_checks_share_the_lock(root: Path, state: Path) -> None:
    with tree_lock(state, os.path.realpath(root), exclusive=False):
        assert len(run(root).changes) == 2


class Meddle(VisitorBasedCodemodCommand):
    """Edits ``b.py`` on disk while the run transforms ``a.py``, as a user might."""

    DESCRIPTION = "meddle"
    TRIGGERS = ("meddle",)

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        sibling = Path(self.context.filename).with_name("b.py")
        sibling.write_text("foo = 'edited by the user'\n")
        return updated_node


def test_a_file_changed_on_disk_after_it_was_read_is_not_overwritten(root: Path) -> None:
    (root / "a.py").write_text("meddle = foo\n")
    result = migrate([root], registry={"rename": Rename, "meddle": Meddle}, jobs=1, write=True)
    assert [(e.path.name, e.message) for e in result.errors] == [
        ("b.py", "changed on disk since it was read: not overwritten (run again)")
    ]
    assert (root / "b.py").read_text() == "foo = 'edited by the user'\n"
    assert (root / "a.py").read_text() == "meddle = bar\n"


def test_nothing_is_written_through_a_symlink_out_of_the_tree(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "requirements.txt").write_text("requests\n")
    (outside / "mod.py").write_text("foo = 'outside'\n")
    (outside / "helper.py").write_text("# not a runtime copy\n")
    (root / "requirements.txt").symlink_to(outside / "requirements.txt")
    (root / "link.py").symlink_to(outside / "mod.py")
    (root / "pkg").mkdir()
    (root / "pkg" / "c.py").write_text("needs_helper = foo\n")
    (root / "pkg" / "helper.py").symlink_to(outside / "helper.py")
    (root / "d.py").write_text("needs_helper = 2\n")
    before = snapshot(outside)
    result = run(root, write=True)
    messages = {e.path.name: e.message for e in result.errors}
    assert messages["link.py"].endswith("outside the tree: not written")
    assert messages["requirements.txt"].endswith("outside the tree: not written")
    assert messages["c.py"].startswith("not migrated: it needs helper.py")
    assert snapshot(outside) == before
    assert (root / "a.py").read_text() == "bar = 1\n"


def test_a_symlink_inside_the_tree_is_written_through(root: Path) -> None:
    (root / "real").mkdir()
    (root / "real" / "c.py").write_text("x = 1\n")
    (root / "link.py").symlink_to(root / "real" / "c.py")
    (root / "real" / "c.py").write_text("foo = 3\n")
    result = run(root, write=True)
    assert (root / "link.py").is_symlink()
    assert (root / "real" / "c.py").read_text() == "bar = 3\n"
    assert [e.path.name for e in result.errors] == ["link.py"]  # the same file, written once


def test_a_symlink_loop_is_one_file_error(root: Path) -> None:
    (root / "loop.py").symlink_to(root / "loop.py")
    result = run(root, write=True)
    assert [(e.path.name, e.message.startswith("cannot read")) for e in result.errors] == [
        ("loop.py", True)
    ]
    assert snapshot(root) == MIGRATED
    outcome = CliRunner().invoke(main, ["check", str(root)])
    assert outcome.exit_code == 2
    assert "loop.py: error: cannot read" in outcome.output
    assert "internal error" not in outcome.output


def test_a_file_over_the_size_limit_is_reported_not_parsed(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "MAX_FILE_BYTES", 1000)
    (root / "big.py").write_text("foo = 1\n" * 200)
    (root / "bigger.py").write_text("foo = 1\n" * 300)
    monkeypatch.setenv("CLAUN_MIGRATE_MAX_FILE_BYTES", "2000")
    result = run(root)
    assert [(e.path.name, e.message.split(" (")[0]) for e in result.errors] == [
        ("bigger.py", "too large to migrate")
    ]
    assert result.files_parsed == 3


def test_an_unreadable_companion_takes_down_what_relies_on_it(root: Path) -> None:
    (root / "c.py").write_text("needs_helper = foo\n")
    (root / "helper.py").mkdir()  # the companion's path is a folder: cannot be written
    (root / "requirements.txt").write_text("flask\npsycopg2\n")
    result = run(root, write=True)
    messages = {e.path.name: e.message for e in result.errors}
    assert messages["helper.py"] == "cannot read: Is a directory"
    assert (
        messages["c.py"]
        == "not migrated: it relies on helper.py, which failed: " + (messages["helper.py"])
    )
    assert (root / "c.py").read_text() == "needs_helper = foo\n"
    assert snapshot(root)["a.py"] == b"bar = 1\n"


def test_a_write_failure_takes_down_what_relies_on_it_and_nothing_else(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk while staging the companion: the file needing it is held back."""
    stage = Transaction._stage

    def full_disk(self: Transaction, entry, *args: object):
        if entry.target.endswith("helper.py"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return stage(self, entry, *args)

    monkeypatch.setattr(Transaction, "_stage", full_disk)
    (root / "c.py").write_text("needs_helper = foo\n")
    (root / "requirements.txt").write_text("flask\npsycopg2\n")
    result = run(root, write=True)
    assert [(e.path.name, e.message) for e in result.errors] == [
        ("helper.py", "cannot write: No space left on device"),
        (
            "c.py",
            "not migrated: it relies on helper.py, which failed: "
            "cannot write: No space left on device",
        ),
    ]
    assert snapshot(root) == {**MIGRATED, "c.py": b"needs_helper = foo\n", **REQUIREMENTS}


REQUIREMENTS = {"requirements.txt": b"flask\npsycopg2\n"}


def test_edit_counting_handles_a_5_mb_module() -> None:
    before = "".join(f"value_{i} = compute({i})\n" for i in range(200_000))
    after = before.replace("value_1234 =", "renamed =").replace("value_99999 =", "other =")
    assert len(before) > 5_000_000
    assert count_edits(before, after) == 2


@pytest.mark.parametrize(
    ("before", "after", "edits"),
    [
        ("a\nb\nc\n", "a\nb\nc\n", 0),
        ("a\nb\nc\n", "A\nb\nC\n", 2),
        ("a\nb\nc\n", "a\nx\ny\nb\nc\n", 1),
        ("x\na\nx\nb\nx\n", "y\na\nx\nb\ny\n", 2),
        ("", "new\n", 1),
    ],
)
def test_edits_count_runs_of_changed_lines(before: str, after: str, edits: int) -> None:
    assert count_edits(before, after) == edits


def test_helper_companion_written_in_the_same_transaction(root: Path, state: Path) -> None:
    (root / "c.py").write_text("needs_helper = foo\n")
    (root / "requirements.txt").write_text("flask\npsycopg2\n")
    run(root, write=True)
    assert (root / "helper.py").read_text() == Helper.TEXT
    assert list((state / "journal").iterdir()) == []


def test_an_unwritable_state_folder_fails_apply_clearly_and_lets_check_run(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("CLAUN_MIGRATE_CACHE_DIR", str(blocker / "state"))
    assert len(run(root).changes) == 2
    with pytest.raises(TreeBusy, match="cannot use the state folder"):
        run(root, write=True)
    assert snapshot(root) == ORIGINAL


def test_write_files_writes_all_or_none(root: Path, state: Path) -> None:
    from claun_migrate.engine import write_files

    new = {root / "a.py": (b"bar = 1\n", b"foo = 1\n"), root / "c.py": (b"new\n", None)}
    stale = {**new, root / "b.py": (b"bar = 2\n", b"not what is there\n")}
    problems = write_files(root, stale)
    assert [(p.path.name, p.message.startswith("changed on disk")) for p in problems] == [
        ("b.py", True)
    ]
    assert snapshot(root) == ORIGINAL
    assert write_files(root, new) == []
    assert snapshot(root) == {**ORIGINAL, "a.py": b"bar = 1\n", "c.py": b"new\n"}
