"""End to end on the fixture backend: check, diff, apply through the CLI, then its own suite.

One copy of the fixture is migrated per module; the suite runs before (the fixture itself)
and after, on SQLite and on a fresh PostgreSQL database each time, and PostgreSQL sessions
are counted while it runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
from fixture_tools import (
    BACKEND_DIR,
    function_lines,
    load_sites,
    run_backend_suite,
    site_matches,
)

from claun_migrate.proof.pgserver import create_database

pytestmark = pytest.mark.slow

POOL_MAX = 4
DICT_ROWS_FILE = "app/routes/reviews.py"
POOLS = 2  # DATABASE_URL's, and the one for app/services/library_db.py's keyword arguments
COUNTER = '''\
"""pytest plugin: count psycopg2.connect calls by caller (the suite's conftest or the app)."""
import json, os, sys
import psycopg2

_connect = psycopg2.connect
COUNTS = {"harness": 0, "backend": 0}


def connect(*args, **kwargs):
    caller = sys._getframe(1).f_code.co_filename
    COUNTS["harness" if caller.endswith("conftest.py") else "backend"] += 1
    return _connect(*args, **kwargs)


psycopg2.connect = connect


def pytest_unconfigure(config):
    with open(os.environ["CLAUN_CONNECTIONS_OUT"], "w") as out:
        json.dump(COUNTS, out)
'''


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "claun_migrate", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@dataclass
class Migration:
    backend: Path
    check_before: subprocess.CompletedProcess[str]
    diff_before: subprocess.CompletedProcess[str]
    diff_wrote_nothing: bool
    apply: subprocess.CompletedProcess[str]
    report: dict


@pytest.fixture(scope="module")
def migration(tmp_path_factory: pytest.TempPathFactory) -> Migration:
    backend = Path(shutil.copytree(BACKEND_DIR, tmp_path_factory.mktemp("e2e") / "backend"))
    check = cli("check", backend)
    before = snapshot(backend)
    diff = cli("diff", backend)
    unchanged = snapshot(backend) == before
    applied = cli("apply", "--format", "json", backend)
    report = json.loads(applied.stdout) if applied.returncode == 0 else {}
    return Migration(backend, check, diff, unchanged, applied, report)


def test_check_and_diff_exit_1_on_the_legacy_backend_and_diff_writes_nothing(
    migration: Migration,
) -> None:
    assert migration.check_before.returncode == 1, migration.check_before.stderr
    assert migration.diff_before.returncode == 1, migration.diff_before.stderr
    assert "+++ b/" in migration.diff_before.stdout
    assert migration.diff_wrote_nothing


def test_apply_exits_0_and_then_check_diff_and_a_second_apply_find_nothing(
    migration: Migration,
) -> None:
    assert migration.apply.returncode == 0, migration.apply.stderr
    after = snapshot(migration.backend)
    assert cli("check", migration.backend).returncode == 0
    assert cli("diff", migration.backend).returncode == 0
    again = cli("apply", "--format", "json", migration.backend)
    assert json.loads(again.stdout)["files_changed"] == []
    assert snapshot(migration.backend) == after


def test_migrated_backend_never_imports_claun_migrate(migration: Migration) -> None:
    for path in migration.backend.rglob("*.py"):
        text = path.read_text()
        assert "import claun_migrate" not in text and "from claun_migrate" not in text, path


def assert_sites_have_their_verdicts(backend: Path, report: dict, named: set[str]) -> None:
    """Sites whose verdict is in ``named`` are rewritten; ``kept`` ones untouched; every other
    one (``review``, and ``unsafe`` at the default level) left as is and reported."""
    for site in load_sites():
        source = (backend / site.file).read_text()
        left = site_matches(source, site)
        if site.verdict in named:
            assert left == [], f"#{site.number} {site.site} not rewritten"
            continue
        assert left, f"#{site.number} {site.site} ({site.verdict}) was edited"
        if site.verdict != "kept":
            lines = {source.count("\n", 0, match.start()) + 1 for match in left}
            reported = {f["line"] for f in report["findings"] if f["file"].endswith(site.file)}
            assert lines & reported, f"#{site.number} {site.site} not reported for review"


def test_every_safe_site_is_rewritten_and_no_review_or_kept_site_is_touched(
    migration: Migration,
) -> None:
    assert_sites_have_their_verdicts(migration.backend, migration.report, {"named"})


def test_rows_that_are_already_dicts_get_no_finding(migration: Migration) -> None:
    """``reviews.py:cards`` reads RealDictCursor / sqlite3.Row rows by name and ``dict(row)``."""
    source = (BACKEND_DIR / DICT_ROWS_FILE).read_text()
    first, last = function_lines(source, "cards")
    found = [
        f
        for f in migration.report["findings"]
        if f["file"].endswith(DICT_ROWS_FILE) and first <= f["line"] <= last
    ]
    assert migration.apply.returncode == 0 and found == []


@pytest.mark.postgres
def test_unsafe_fixes_name_the_unsafe_sites_too_and_the_suite_still_passes(
    tmp_path: Path, postgres_server_url: str
) -> None:
    """``apply --unsafe-fixes`` edits the SQL (aliases ``COUNT(*)`` and duplicate ids) and names
    the ``unsafe`` sites as well; the migrated suite passes on SQLite (none skipped) and on
    PostgreSQL."""
    backend = Path(shutil.copytree(BACKEND_DIR, tmp_path / "backend"))
    applied = cli("apply", "--unsafe-fixes", "--format", "json", backend)
    assert applied.returncode == 0, applied.stderr
    assert_sites_have_their_verdicts(backend, json.loads(applied.stdout), {"named", "unsafe"})
    after = run_backend_suite(backend, None, env={"FIXTURE_RUN_ALL": "1"})
    assert after.ok and not after.skipped, after.output[-3000:]
    on_postgres = run_backend_suite(backend, create_database(postgres_server_url))
    assert on_postgres.ok and not on_postgres.skipped, on_postgres.output[-3000:]


def test_migrated_suite_passes_on_sqlite_including_the_postgres_only_tests(
    migration: Migration,
) -> None:
    """The legacy code fails the postgres-only tests here (tests/test_fixture_suite.py pins
    that); the migrated code passes every test, none skipped."""
    after = run_backend_suite(migration.backend, None, env={"FIXTURE_RUN_ALL": "1"})
    assert after.ok and not after.skipped, after.output[-3000:]


def _suite_on_postgres(backend: Path, server_url: str, tmp: Path) -> tuple[object, dict]:
    plugin_dir = tmp / "plugin"
    plugin_dir.mkdir(exist_ok=True)
    (plugin_dir / "count_connections.py").write_text(COUNTER)
    url = create_database(server_url)
    out = tmp / f"{backend.parent.name}-connections.json"
    env = {
        "PYTHONPATH": str(plugin_dir),
        "CLAUN_CONNECTIONS_OUT": str(out),
        "DB_POOL_MAX_SIZE": str(POOL_MAX),
    }
    result = run_backend_suite(backend, url, ["-p", "count_connections"], env=env)
    counts = json.loads(out.read_text())
    with psycopg2.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        counts["server_sessions"] = cursor.fetchone()[0]
    conn.close()
    return result, counts


@pytest.mark.postgres
def test_on_postgres_the_suite_passes_and_the_app_opens_at_most_pool_size_connections(
    migration: Migration, postgres_server_url: str, tmp_path: Path
) -> None:
    before, legacy = _suite_on_postgres(BACKEND_DIR, postgres_server_url, tmp_path)
    after, pooled = _suite_on_postgres(migration.backend, postgres_server_url, tmp_path)
    print(f"\nconnections opened by the app: legacy {legacy}, migrated {pooled}")
    assert before.ok and after.ok, after.output[-3000:]  # type: ignore[attr-defined]
    assert set(after.passed) == set(before.passed)  # type: ignore[attr-defined]
    ceiling = POOLS * POOL_MAX
    assert 1 <= pooled["backend"] <= ceiling
    assert legacy["backend"] > 10 * POOL_MAX
    assert pooled["server_sessions"] >= pooled["harness"] + pooled["backend"]
    assert legacy["server_sessions"] - pooled["server_sessions"] >= legacy["backend"] - ceiling
