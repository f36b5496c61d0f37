"""``check``, ``diff`` and ``apply``: exit codes, output formats and what gets written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixture_tools import BACKEND_DIR

from claun_migrate.cli import main

DATA_LAYER = "app/services/database.py"


@pytest.fixture
def backend(tmp_path: Path) -> Path:
    return Path(shutil.copytree(BACKEND_DIR, tmp_path / "backend"))


def invoke(command: str, *args: str | Path):
    """Run ``command``; named-rows is left out unless selected, to keep these tests fast."""
    select = [] if "--select" in args else ["--select", "pool-connections"]
    return CliRunner().invoke(main, [command, *select, *[str(a) for a in args]])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_check_exits_1_while_changes_are_pending_and_lists_them(backend: Path) -> None:
    result = invoke("check", backend)
    assert result.exit_code == 1
    assert f"{DATA_LAYER}: would change by pool-connections" in result.output


def test_diff_exits_1_prints_a_patch_that_git_applies_to_what_apply_writes(
    backend: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(backend.parent)
    before = snapshot(backend)
    result = invoke("diff", "backend", "--color", "never")
    assert result.exit_code == 1
    assert f"--- a/backend/{DATA_LAYER}\n+++ b/backend/{DATA_LAYER}\n" in result.stdout
    assert "\x1b[" not in result.stdout
    assert snapshot(backend) == before
    patched = Path(shutil.copytree(backend, backend.parent / "patched" / "backend"))
    subprocess.run(
        ["git", "apply", "-"],
        input=result.stdout.encode(),
        cwd=patched.parent,
        env={**os.environ, "GIT_CEILING_DIRECTORIES": str(backend.parent)},
        check=True,
    )
    assert invoke("apply", "backend").exit_code == 0
    assert snapshot(patched) == snapshot(backend) != before


def test_apply_dry_run_is_diff(backend: Path) -> None:
    assert invoke("apply", "--dry-run", backend).stdout == invoke("diff", backend).stdout
    assert invoke("apply", "--dry-run", backend).exit_code == 1


def test_diff_colours_when_asked(backend: Path) -> None:
    assert "\x1b[32m+" in invoke("diff", backend, "--color", "always").stdout


def test_apply_writes_summarises_and_then_check_and_diff_are_clean(backend: Path) -> None:
    applied = invoke("apply", backend)
    assert applied.exit_code == 0, applied.output
    summary = applied.output.splitlines()[-1]
    assert "files changed" in summary and "pool-connections:" in summary
    assert "review items" in summary
    assert "from .db_pool import getconn, putconn" in (backend / DATA_LAYER).read_text()
    assert invoke("check", backend).exit_code == 0
    assert invoke("diff", backend).exit_code == 0
    assert "\n0 files changed" in "\n" + invoke("apply", backend).output


CALLER = 'import psycopg2.pool\n\npool = psycopg2.pool.SimpleConnectionPool(1, 10, "dbname=x")\n'


def test_review_items_fail_check_only_with_strict(backend: Path) -> None:
    (backend / "app/export.py").write_text(CALLER)
    invoke("apply", backend)
    assert invoke("check", backend).exit_code == 0
    assert invoke("check", "--strict", backend).exit_code == 1


def test_a_connect_per_call_left_in_the_tree_fails_check_and_changes_nothing(backend: Path):
    caller = "from app.services.database import get_db_connection\nconn = get_db_connection()\n"
    (backend / "app/export.py").write_text(caller)
    before = (backend / DATA_LAYER).read_text()
    result = invoke("apply", backend)
    assert (backend / DATA_LAYER).read_text() == before, "its source is left as it is"
    assert "POOL001" in result.stdout and "POOL002" in result.stdout
    checked = invoke("check", backend)
    assert checked.exit_code == 1
    assert "app/export.py:2" in checked.stdout


def test_json_report_lists_the_changed_files_edits_and_each_finding(
    backend: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (backend / "app/export.py").write_text(CALLER)
    monkeypatch.chdir(backend.parent)
    report = json.loads(invoke("check", "--format", "json", "backend").stdout)
    services = "backend/app/services/"
    assert [(f["file"], f["created"]) for f in report["files_changed"]] == [
        ("backend/app/models/database.py", False),
        ("backend/app/routes/library.py", False),
        ("backend/app/routes/reviews.py", False),
        (services + "database.py", False),
        (services + "library_db.py", False),
        (services + "library_links.py", False),
        (services + "review_store.py", False),
        (services + "db_pool.py", True),
        (services + "db_rows.py", True),
        (services + "db_sqlite.py", True),
    ]
    assert report["codemods"] == ["pool-connections"]
    assert set(report["edits"]) == {"pool-connections"} and report["edits"]["pool-connections"] > 0
    assert [(f["file"], f["line"], f["code"]) for f in report["findings"]] == [
        ("backend/app/export.py", 3, "POOL003"),
        ("backend/app.py", 158, "POOL004"),  # an UPDATE built with an f-string
    ]
    assert report["findings"][:1] == [
        {
            "file": "backend/app/export.py",
            "codemod": "pool-connections",
            "line": 3,
            "column": 8,
            "code": "POOL003",
            "message": "psycopg2's SimpleConnectionPool is not thread-safe: under a threaded "
            "server two threads can get one connection, and it overshoots maxconn",
            "suggestion": "use the shipped pool (replace the hand-made pool with psycopg2.connect "
            "and run claun-migrate) or psycopg2.pool.ThreadedConnectionPool",
            "pending": False,
        }
    ]
    assert report["errors"] == [] and report["suppressed"] == 0 and report["written"] is False


def test_json_diff_carries_the_patch_per_file(backend: Path) -> None:
    report = json.loads(invoke("diff", "--format", "json", backend).stdout)
    assert all(
        entry["diff"].startswith(("--- a/", "--- /dev/null")) for entry in report["files_changed"]
    )


@pytest.mark.parametrize("fmt", ["github", "sarif"])
def test_ci_formats_name_the_pending_files(backend: Path, fmt: str) -> None:
    result = invoke("check", "--format", fmt, backend)
    assert result.exit_code == 1
    assert DATA_LAYER in result.stdout


def test_select_limits_the_codemods_and_pulls_in_required_ones(backend: Path) -> None:
    report = json.loads(
        invoke("check", "--select", "sqlite-per-request", "--format", "json", backend).stdout
    )
    assert report["codemods"] == ["pool-connections", "sqlite-per-request"]


@pytest.mark.parametrize(
    "args",
    [
        ["--select", "no-such-codemod"],
        ["--select", "sqlite-per-request", "--ignore", "pool-connections"],
        ["--format", "xml"],
    ],
)
def test_usage_errors_exit_2(backend: Path, args: list[str]) -> None:
    assert invoke("check", *args, backend).exit_code == 2


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    assert invoke("check", tmp_path / "nowhere").exit_code == 2


def test_unparsable_file_exits_2_at_pythons_position_and_the_rest_is_applied(
    backend: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = backend / "app/routes/broken.py"
    broken.write_text("from app.services.database import get_db_connection\n\nx = (1,\ndef f(:\n")
    with pytest.raises(SyntaxError) as python:
        compile(broken.read_text(), str(broken), "exec")
    monkeypatch.chdir(backend.parent)
    result = invoke("apply", "backend")
    assert result.exit_code == 2
    where = f"backend/app/routes/broken.py:{python.value.lineno}:{python.value.offset}"
    assert f"{where}: error: cannot parse: SyntaxError: {python.value.msg}\n" in result.output
    assert "from .db_pool import getconn, putconn" in (backend / DATA_LAYER).read_text()


def test_internal_error_exits_2_not_1(backend: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("engine bug")

    monkeypatch.setattr("claun_migrate.cli.migrate.migrate", broken)
    result = invoke("check", backend)
    assert result.exit_code == 2
    assert "internal error: RuntimeError: engine bug" in result.output
