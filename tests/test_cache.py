"""The result cache: a rerun over unchanged files parses nothing and reports the same."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
from libcst.codemod import VisitorBasedCodemodCommand

from claun_migrate.engine import migrate
from claun_migrate.engine.cache import ResultCache
from tests.test_engine import REGISTRY


def run(root: Path, cache: Path):
    return migrate([root], registry=REGISTRY, jobs=1, cache_dir=cache)


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    (root / "a.py").write_text("foo = 1\n")
    (root / "b.py").write_text("census = foo\n")
    return root


def test_second_run_reuses_results_and_reports_the_same(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    first = run(root, tmp_path / "cache")
    second = run(root, tmp_path / "cache")
    assert (first.files_parsed, first.files_cached) == (2, 0)
    assert (second.files_parsed, second.files_cached) == (0, 2)
    assert [(c.path, c.after) for c in second.changes] == [(c.path, c.after) for c in first.changes]
    assert second.findings == first.findings


def test_an_edited_file_is_recomputed_and_the_others_are_not(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    run(root, tmp_path / "cache")
    (root / "a.py").write_text("foo = 2\n")
    result = run(root, tmp_path / "cache")
    assert (result.files_parsed, result.files_cached) == (1, 1)
    assert any(c.after == "bar = 2\n" for c in result.changes)


def test_a_gathered_argument_change_misses_the_cache(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    run(root, tmp_path / "cache")
    (root / "c.py").write_text("census = 3\n")  # Census.gather now counts three files
    result = run(root, tmp_path / "cache")
    assert result.files_cached == 1  # a.py only: b.py's codemod arguments changed
    assert {f.finding.message for f in result.findings} == {"3 files"}


def test_a_corrupt_entry_is_a_miss_not_an_error(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    cache = tmp_path / "cache"
    run(root, cache)
    for entry in cache.rglob("*"):
        if entry.is_file():
            entry.write_bytes(b"not a pickle")
    result = run(root, cache)
    assert (result.files_parsed, result.files_cached, result.errors) == (2, 0, [])


def test_keys_depend_on_every_part(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    assert cache.key("a.py", "x = 1\n") == cache.key("a.py", "x = 1\n")
    assert cache.key("a.py", "x = 1\n") != cache.key("a.py", "x = 2\n")
    assert cache.key("a.py", "x = 1\n") != cache.key("b.py", "x = 1\n")


def test_cli_caches_in_the_configured_folder_unless_told_not_to(
    tmp_path: Path, monkeypatch
) -> None:
    from click.testing import CliRunner

    from claun_migrate.cli import main

    backend = tmp_path / "backend"
    backend.mkdir()
    (backend / "app.py").write_text("from flask import Flask\n\napp = Flask(__name__)\n")
    monkeypatch.setenv("CLAUN_MIGRATE_CACHE_DIR", str(tmp_path / "cache"))
    runner = CliRunner()
    runner.invoke(main, ["check", str(backend)])
    cached = runner.invoke(main, ["check", str(backend)])
    uncached = runner.invoke(main, ["check", "--no-cache", str(backend)])
    assert "1 from cache" in cached.output
    assert "from cache" not in uncached.output
    assert any((tmp_path / "cache").rglob("*"))


class Grow(VisitorBasedCodemodCommand):
    """Not idempotent: appends ``x`` to every ``grow...`` name, every run."""

    DESCRIPTION = "grow"
    TRIGGERS = ("grow",)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        if updated_node.value.startswith("grow"):
            return updated_node.with_changes(value=updated_node.value + "x")
        return updated_node


def test_confirmed_apply_leaves_the_next_run_nothing_to_parse(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    cache = tmp_path / "cache"
    applied = migrate([root], registry=REGISTRY, jobs=1, cache_dir=cache, write=True, confirm=True)
    assert applied.errors == [] and len(applied.changes) == 2
    again = run(root, cache)
    assert (again.files_parsed, again.changes) == (0, [])


def test_confirmed_apply_reports_a_codemod_that_is_not_idempotent(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("grow = 1\n")
    result = migrate([tmp_path], registry={"grow": Grow}, jobs=1, write=True, confirm=True)
    assert [(e.path.name, e.message) for e in result.errors] == [
        ("a.py", "a second pass would change it again (a codemod bug)")
    ]
