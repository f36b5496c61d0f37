"""pool-connections: the connect-per-call data layer takes its connections from the pool."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

from libcst.codemod import CodemodContext, TransformSuccess, transform_module

from claun_migrate.codemods._support import ENGINE, companions, findings, is_pristine, requirements
from claun_migrate.codemods.pool_connections import PoolConnectionsCommand

LEGACY = '''\
import os
import sqlite3

import psycopg2

DATABASE_URL = os.environ.get("DATABASE_URL")


def get_db_connection():
    """Get database connection"""
    if DATABASE_URL:
        return psycopg2.connect(DATABASE_URL)
    else:
        return sqlite3.connect(DATABASE_PATH)


def execute_sql(sql, params=None, fetch=False, commit=False):
    conn = get_db_connection()
    try:
        cursor = conn.cursor()
        cursor.execute(sql, params or ())

        if commit:
            conn.commit()

        if fetch:
            return cursor.fetchall()

        return None
    except Exception as e:
        print(f"Database error: {e}")
        conn.rollback()
        raise
    finally:
        conn.close()
'''

MIGRATED = '''\
import os
import sqlite3

import psycopg2
from .db_pool import get_pool
from .db_rows import RowCursor
from .db_sqlite import get_db, release_db, to_qmark

DATABASE_URL = os.environ.get("DATABASE_URL")


def get_db_connection():
    """Get database connection"""
    if DATABASE_URL:
        return get_pool(DATABASE_URL, cursor_factory=RowCursor).getconn()
    else:
        return get_db(DATABASE_PATH)


def execute_sql(sql, params=None, fetch=False, commit=False):
    conn = get_db_connection()
    try:
        cursor = conn.cursor()
        cursor.execute(sql if DATABASE_URL else to_qmark(sql), params or ())

        rows = cursor.fetchall() if fetch else None
        if commit:
            conn.commit()

        if fetch:
            return rows

        return None
    except Exception as e:
        print(f"Database error: {e}")
        conn.rollback()
        raise
    finally:
        if DATABASE_URL:
            get_pool(DATABASE_URL).putconn(conn)
        else:
            release_db(conn)
'''


def run(before: str) -> tuple[str, CodemodContext]:
    context = CodemodContext(filename="app/services/database.py", scratch={ENGINE: True})
    result = transform_module(PoolConnectionsCommand(context), dedent(before))
    assert isinstance(result, TransformSuccess), result
    return result.code, context


def test_legacy_data_layer_becomes_the_pooled_shape_of_the_contract() -> None:
    assert run(LEGACY)[0] == MIGRATED


def test_second_run_changes_nothing() -> None:
    assert run(run(LEGACY)[0])[0] == MIGRATED


def test_runtime_copies_are_requested_beside_the_data_layer_with_a_version_header() -> None:
    copies = companions(run(LEGACY)[1])
    assert sorted(copies) == ["db_pool.py", "db_rows.py", "db_sqlite.py"]
    assert all(is_pristine(text) for text in copies.values())
    assert all("claun_migrate" not in text.split("\n", 2)[2] for text in copies.values())


def test_migrated_data_layer_still_requests_the_copies_so_apply_upgrades_them() -> None:
    assert sorted(companions(run(MIGRATED)[1])) == ["db_pool.py", "db_rows.py", "db_sqlite.py"]


def test_runtime_needs_psycopg2_and_flask_in_requirements() -> None:
    assert requirements(run(LEGACY)[1]) == {
        "psycopg2": ("psycopg2", "psycopg2-binary"),
        "flask": ("flask",),
    }


def test_postgres_only_layer_puts_connections_back_without_a_sqlite_branch() -> None:
    code, _ = run(
        """\
        def get_db_connection():
            return psycopg2.connect(DSN, connect_timeout=5)

        def execute_sql(sql):
            db = get_db_connection()
            try:
                db.cursor().execute(sql)
            finally:
                db.close()
        """
    )
    assert "return get_pool(DSN, connect_timeout=5, cursor_factory=RowCursor).getconn()" in code
    assert "db.cursor().execute(sql)" in code
    assert "        get_pool(DSN).putconn(db)\n" in code


def test_sqlite_only_layer_uses_the_request_connection_and_translates_placeholders() -> None:
    code, _ = run(
        """\
        def get_db_connection():
            return sqlite3.connect(PATH)

        def execute_sql(sql, params=()):
            conn = get_db_connection()
            try:
                conn.cursor().execute(sql, params)
            finally:
                conn.close()
        """
    )
    assert "return get_db(PATH)" in code
    assert "conn.cursor().execute(to_qmark(sql), params)" in code
    assert "        release_db(conn)\n" in code


def test_module_that_only_shares_the_names_is_left_alone() -> None:
    before = """\
    def get_db_connection():
        return make_connection()

    def execute_sql(sql):
        conn = get_db_connection()
        conn.execute(sql)
    """
    code, context = run(before)
    assert code == dedent(before)
    assert companions(context) == {}


def test_direct_caller_of_get_db_connection_is_reported_not_edited() -> None:
    before = """\
    from app.services.database import get_db_connection

    def export():
        conn = get_db_connection()
        try:
            return conn.cursor().fetchall()
        finally:
            conn.close()
    """
    code, context = run(before)
    assert code == dedent(before)
    assert [(f.code, f.line) for f in findings(context)] == [("POOL001", 4)]


def test_standalone_run_writes_the_runtime_copies_itself(tmp_path: Path) -> None:
    """Under ``python -m libcst.tool codemod`` there is no engine to write the companions."""
    (tmp_path / "db_rows.py").write_text("# my own module\n")
    context = CodemodContext(filename=str(tmp_path / "database.py"))
    transform_module(PoolConnectionsCommand(context), LEGACY)
    assert is_pristine((tmp_path / "db_pool.py").read_text())
    assert is_pristine((tmp_path / "db_sqlite.py").read_text())
    assert (tmp_path / "db_rows.py").read_text() == "# my own module\n"
    assert context.warnings and "db_rows.py" in context.warnings[0]


KEYWORD_LAYER = """\
def get_db_connection():
    if DATABASE_URL:
        return psycopg2.connect(host=os.environ["DB_HOST"], dbname="app")
    else:
        return sqlite3.connect(DATABASE_PATH)

def execute_sql(sql):
    conn = get_db_connection()
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()
"""


def test_keyword_style_psycopg2_connect_is_reported_and_the_layer_left_alone() -> None:
    """No single positional DSN: ``get_pool(host=...)`` / ``get_pool(os.environ[...])`` would
    break, so nothing of the layer is rewritten."""
    for connect in [
        'psycopg2.connect(host=os.environ["DB_HOST"], dbname="app")',
        "psycopg2.connect(**DB_CONFIG)",
        "psycopg2.connect()",
        "psycopg2.connect(DSN, DSN2)",
    ]:
        before = KEYWORD_LAYER.replace(
            'psycopg2.connect(host=os.environ["DB_HOST"], dbname="app")', connect
        )
        code, context = run(before)
        assert code == before, connect
        assert companions(context) == {} and requirements(context) == {}
        (finding,) = findings(context)
        assert (finding.code, finding.line) == ("POOL002", 3)
        assert "single positional DSN" in finding.message
        assert "psycopg2.connect(DSN)" in finding.suggestion


def test_sqlite_connect_with_options_is_reported_and_the_layer_left_alone() -> None:
    """``db_sqlite.get_db(path)`` takes only the path: ``get_db(PATH, timeout=30)`` would fail."""
    for connect in [
        "sqlite3.connect(DATABASE_PATH, timeout=30)",
        "sqlite3.connect(DATABASE_PATH, 30)",
        "sqlite3.connect(database=DATABASE_PATH)",
        "sqlite3.connect(*ARGS)",
    ]:
        before = KEYWORD_LAYER.replace(
            'psycopg2.connect(host=os.environ["DB_HOST"], dbname="app")', "psycopg2.connect(DSN)"
        ).replace("sqlite3.connect(DATABASE_PATH)", connect)
        code, context = run(before)
        assert code == before, connect
        assert companions(context) == {}
        (finding,) = findings(context)
        assert (finding.code, finding.line) == ("POOL002", 5)
        assert "only the database path" in finding.message
        assert "sqlite3.connect(PATH)" in finding.suggestion
