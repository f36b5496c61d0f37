import io
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixture_tools import legacy_data_layer

from claun_migrate.cli import main
from claun_migrate.proof.verify import (
    Comparison,
    Progress,
    SuiteResult,
    VerifyError,
    copy_tree,
    render_json,
    render_text,
    run_suite,
    suite_env,
    verify,
    verify_trees,
)

PYTEST = [sys.executable, "-m", "pytest", "-q"]

LEGACY_DATABASE = (
    legacy_data_layer()
    + '''\
def init_database():
    """Initialize database tables"""
    execute_sql(
        "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name VARCHAR(50) NOT NULL)",
        commit=True,
    )
'''
)

BACKEND_TESTS = """\
import os

import pytest

from app.services.database import execute_sql, init_database


def test_rows_round_trip():
    init_database()
    execute_sql("INSERT INTO items (id, name) VALUES (1, 'a')", commit=True)
    rows = execute_sql("SELECT id, name FROM items", fetch=True)
    assert rows[0][1] == "a"


def test_rows_are_plain_tuples():
    init_database()
    rows = execute_sql("SELECT count(*) FROM items", fetch=True)
    assert type(rows[0]) is tuple


@pytest.mark.skipif(not os.path.exists("FEATURE"), reason="feature not built yet")
def test_feature():
    pass


def test_database_is_private():
    assert not any(key.startswith(("CLAUN_", "PYTEST_XDIST")) for key in os.environ)
    assert os.environ.get("DATABASE_URL") or os.environ["DATABASE_PATH"].endswith("claun.db")
"""


def make_backend(root: Path) -> Path:
    """A tiny backend written like the legacy one, with its own pytest suite."""
    for folder in ("app", "app/services", "tests"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "app/services/database.py").write_text(LEGACY_DATABASE)
    (root / "tests/test_items.py").write_text(BACKEND_TESTS)
    return root


def break_rows(root: Path) -> None:
    """A migration a test catches: rows stop being plain tuples."""
    path = root / "app/services/database.py"
    path.write_text(
        path.read_text().replace(
            "return cursor.fetchall()", "return [list(row) for row in cursor.fetchall()]"
        )
    )


def build_feature(root: Path) -> None:
    (root / "FEATURE").write_text("")


def test_copy_tree_leaves_out_vcs_virtualenvs_and_caches(tmp_path: Path) -> None:
    src = make_backend(tmp_path / "src")
    for junk in (".git/HEAD", "app/__pycache__/x.pyc", ".venv/pyvenv.cfg", "env2/pyvenv.cfg"):
        (src / junk).parent.mkdir(parents=True, exist_ok=True)
        (src / junk).write_text("")
    copy = copy_tree(src, tmp_path / "copy")
    names = {path.relative_to(copy).as_posix() for path in copy.rglob("*")}
    assert "app/services/database.py" in names
    assert not {".git", "app/__pycache__", ".venv", "env2"} & names


def test_run_suite_reads_each_test_outcome_and_message(tmp_path: Path) -> None:
    (tmp_path / "test_mix.py").write_text(
        "import pytest\n"
        "def test_ok(): pass\n"
        "def test_bad(): assert 1 == 2, 'one is not two'\n"
        "@pytest.mark.skip\ndef test_skip(): pass\n"
        "@pytest.fixture\ndef broken(): raise RuntimeError('boom')\n"
        "def test_error(broken): pass\n"
    )
    result = run_suite(tmp_path, PYTEST, suite_env({}))
    assert result.outcomes == {
        "test_mix::test_ok": "passed",
        "test_mix::test_bad": "failed",
        "test_mix::test_skip": "skipped",
        "test_mix::test_error": "error",
    }
    assert "one is not two" in result.messages["test_mix::test_bad"]
    assert not (tmp_path / ".pytest_cache").exists()


def test_a_command_without_junit_output_counts_as_one_test(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "raise SystemExit(3)"]
    result = run_suite(tmp_path, command, suite_env({}))
    assert list(result.outcomes.values()) == ["failed"]
    assert result.returncode == 3


def test_a_command_that_cannot_start_is_a_verify_error(tmp_path: Path) -> None:
    with pytest.raises(VerifyError, match="cannot start"):
        run_suite(tmp_path, ["no-such-test-runner-xyz"], suite_env({}))


def test_harmless_migration_passes_with_the_same_outcomes(tmp_path: Path) -> None:
    backend = make_backend(tmp_path / "backend")
    comparisons, migrated = verify(
        backend, tmp_path / "work", migrate=lambda root: None, databases=["sqlite"]
    )
    (comparison,) = comparisons
    assert comparison.before.counts() == {"passed": 3, "failed": 0, "error": 0, "skipped": 1}
    assert comparison.regressions == comparison.improvements == []
    assert migrated.name == "backend" and migrated != backend
    assert "verdict: ok" in render_text(comparisons)


def test_breaking_migration_is_reported_by_test_name(tmp_path: Path) -> None:
    backend = make_backend(tmp_path / "backend")
    comparisons, _ = verify(backend, tmp_path / "work", migrate=break_rows, databases=["sqlite"])
    assert comparisons[0].regressions == ["tests.test_items::test_rows_are_plain_tuples"]
    text = render_text(comparisons)
    assert "tests.test_items::test_rows_are_plain_tuples (passed -> failed)" in text
    assert "verdict: FAILED, 1 test(s)" in text
    data = json.loads(render_json(comparisons))
    assert data["ok"] is False
    assert data["databases"][0]["after"]["failed"] == 1


def test_test_skipped_before_and_passing_after_is_an_improvement(tmp_path: Path) -> None:
    backend = make_backend(tmp_path / "backend")
    comparisons, _ = verify(backend, tmp_path / "work", migrate=build_feature, databases=["sqlite"])
    assert comparisons[0].improvements == ["tests.test_items::test_feature"]
    assert comparisons[0].regressions == []


def test_a_test_that_disappears_after_is_a_regression() -> None:
    before = SuiteResult({"t::a": "passed", "t::b": "passed"})
    after = SuiteResult({"t::a": "passed"})
    comparison = Comparison("sqlite", before, after)
    assert comparison.regressions == ["t::b"]
    assert comparison.to_dict()["regressions"][0]["after"] == "missing"


def test_a_suite_where_nothing_passes_before_is_a_verify_error(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x(): assert False\n")
    with pytest.raises(VerifyError, match="no test passed before"):
        verify_trees(tmp_path, tmp_path, databases=["sqlite"], command=PYTEST)


@pytest.mark.postgres
def test_postgres_suites_each_get_a_fresh_database(
    tmp_path: Path, postgres_server_url: str
) -> None:
    backend = make_backend(tmp_path / "backend")
    comparisons, _ = verify(
        backend,
        tmp_path / "work",
        migrate=break_rows,
        databases=["postgres"],
        database_url=postgres_server_url,
    )
    (comparison,) = comparisons
    # the INSERT with a fixed id would fail on a database reused from the "before" run
    assert comparison.before.outcomes["tests.test_items::test_rows_round_trip"] == "passed"
    assert comparison.after.outcomes["tests.test_items::test_rows_round_trip"] == "passed"
    assert comparison.regressions == ["tests.test_items::test_rows_are_plain_tuples"]


def test_verify_command_exit_code_2_when_the_suite_cannot_start(tmp_path: Path) -> None:
    backend = make_backend(tmp_path / "backend")
    result = CliRunner().invoke(
        main, ["verify", "--database", "sqlite", "--tests", "no-such-runner-xyz", str(backend)]
    )
    assert result.exit_code == 2, result.output
    assert "cannot start" in result.output


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Content and mtime of every file under ``root``."""
    return {
        path.relative_to(root).as_posix(): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_verify_command_catches_the_real_migration_changing_row_types(tmp_path: Path) -> None:
    backend = make_backend(tmp_path / "backend")
    args = ["verify", "--database", "sqlite", "--format", "json", str(backend)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    (regression,) = report["databases"][0]["regressions"]
    assert regression["test"] == "tests.test_items::test_rows_are_plain_tuples"
    assert "is tuple" in regression["message"]


def test_verify_command_passes_env_to_both_runs(tmp_path: Path) -> None:
    backend = make_backend(tmp_path / "backend")
    (backend / "tests/test_items.py").write_text(
        "import os\ndef test_env(): assert os.environ['SWITCH'] == 'on'\n"
    )
    args = ["verify", "--database", "sqlite", "--env", "SWITCH=on", str(backend)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "verdict: ok" in result.stdout


@pytest.mark.postgres
def test_apply_verify_leaves_the_tree_untouched_when_a_test_catches_the_migration(
    tmp_path: Path, postgres_server_url: str
) -> None:
    backend = make_backend(tmp_path / "backend")
    before = snapshot(backend)
    result = CliRunner(env={"DATABASE_URL": postgres_server_url}).invoke(
        main, ["apply", "--verify", str(backend)]
    )
    assert result.exit_code == 1, result.output
    assert "tests.test_items::test_rows_are_plain_tuples (passed -> failed)" in result.stdout
    assert "not applied" in result.stdout
    assert snapshot(backend) == before


@pytest.mark.postgres
def test_apply_verify_writes_what_apply_writes_when_the_tests_pass(
    tmp_path: Path, postgres_server_url: str
) -> None:
    backend = make_backend(tmp_path / "backend")
    tests = backend / "tests/test_items.py"
    tests.write_text(tests.read_text().replace("type(rows[0]) is tuple", "rows[0] == (1,)"))
    plain = copy_tree(backend, tmp_path / "plain")
    assert CliRunner().invoke(main, ["apply", str(plain)]).exit_code == 0
    result = CliRunner(env={"DATABASE_URL": postgres_server_url}).invoke(
        main, ["apply", "--verify", "--format", "json", str(backend)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"]
    assert {k: v[0] for k, v in snapshot(backend).items()} == {
        k: v[0] for k, v in snapshot(plain).items()
    }


def test_progress_without_a_terminal_prints_one_line_per_suite_start_and_end() -> None:
    stream = io.StringIO()
    with Progress(stream).suite("sqlite before") as finish:
        finish(SuiteResult({"t::a": "passed", "t::b": "skipped"}, seconds=1.24))
    assert stream.getvalue().splitlines() == [
        "sqlite before: running",
        "sqlite before: 1 passed, 0 failed, 0 errors, 1 skipped (1.2s)",
    ]
