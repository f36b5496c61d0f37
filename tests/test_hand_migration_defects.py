"""The defects of a real hand migration of this plan (DESIGN.md section 3), one test each.

Each test runs the fixture backend migrated by us and shows the check that would have caught
the defect; where cheap, the hand-migrated variant is run too, to show the check fails on it.
The pool's thread-safety under load is also pinned in tests/test_runtime_pool.py
(``test_64_threads_share_8_connections_without_error_or_reconnects``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from fixture_tools import BACKEND_DIR, run_backend_suite

from claun_migrate.engine import migrate
from claun_migrate.proof.pgserver import create_database

pytestmark = pytest.mark.slow
DATA_LAYER = "app/services/database.py"
REGISTER_AND_PROFILE = ["-k", "register_candidate or profile_is_an_array"]


def _copy(tmp: Path, name: str, **options: object) -> Path:
    backend = Path(shutil.copytree(BACKEND_DIR, tmp / name / "backend"))
    result = migrate([backend], write=True, jobs=1, **options)  # type: ignore[arg-type]
    assert not result.errors, result.errors
    return backend


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy(tmp_path_factory.mktemp("defects"), "migrated")


@pytest.fixture(scope="module")
def pool_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pool and row type but no named-rows rewrite: ``result[0][0]`` is still there."""
    return _copy(tmp_path_factory.mktemp("defects"), "pool", ignore=["named-rows"])


def _run(backend: Path, code: str, database_url: str | None, tmp: Path) -> str:
    env = {"DATABASE_PATH": str(tmp / "db.sqlite"), "PYTHONDONTWRITEBYTECODE": "1"}
    if database_url:
        env["DATABASE_URL"] = database_url
    env["DB_POOL_MAX_SIZE"] = "3"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=backend, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.postgres
def test_dict_rows_broke_register_but_our_row_type_still_answers_index_0(
    pool_only: Path, postgres_server_url: str, tmp_path: Path
) -> None:
    assert "result[0][0]" in (pool_only / "app.py").read_text()
    ours = run_backend_suite(pool_only, create_database(postgres_server_url), REGISTER_AND_PROFILE)
    assert ours.ok and len(ours.passed) == 2, ours.output[-2000:]

    hand = Path(shutil.copytree(BACKEND_DIR, tmp_path / "hand" / "backend"))
    layer = hand / DATA_LAYER
    layer.write_text(
        layer.read_text()
        .replace(
            "psycopg2.connect(DATABASE_URL)",
            "psycopg2.connect(DATABASE_URL, cursor_factory=psycopg2.extras.RealDictCursor)",
        )
        .replace("import psycopg2\n", "import psycopg2\nimport psycopg2.extras\n")
    )
    theirs = run_backend_suite(hand, create_database(postgres_server_url), REGISTER_AND_PROFILE)
    assert len(theirs.failed) == 2, "the hand migration's defects must fail these tests"


@pytest.mark.postgres
def test_threads_never_open_more_than_the_pool_size(
    migrated: Path, postgres_server_url: str, tmp_path: Path
) -> None:
    url = create_database(postgres_server_url)
    code = """
import threading
from app.services.database import execute_sql, init_database
init_database()
def work():
    for _ in range(20):
        execute_sql("SELECT pg_sleep(0.001)", fetch=True)
threads = [threading.Thread(target=work) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
"""
    _run(migrated, code, url, tmp_path)
    with psycopg2.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        sessions = cursor.fetchone()[0]
    conn.close()
    assert "SimpleConnectionPool(" not in (migrated / "app/services/db_pool.py").read_text()
    assert sessions <= 3 + 1  # the pool's 3 plus this test's own connection


def test_percent_s_inside_string_literals_survives_on_sqlite(migrated: Path, tmp_path: Path):
    code = """
from app.services.database import execute_sql
print(tuple(execute_sql("SELECT '100%s' AS lit, %s AS val", (7,), fetch=True)[0]))
"""
    assert _run(migrated, code, None, tmp_path) == "('100%s', 7)"


def test_profile_json_stays_an_array_on_sqlite(migrated: Path) -> None:
    only = ["-k", "profile_is_an_array"]
    result = run_backend_suite(migrated, None, only, env={"FIXTURE_RUN_ALL": "1"})
    assert result.ok and len(result.passed) == 1, result.output[-2000:]
