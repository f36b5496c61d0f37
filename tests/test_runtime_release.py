"""The module-level pool API the codemods write: getconn(**connect args), putconn, borrowed,
and what SQLite needs (get_db options, sql_for)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import psycopg2
import psycopg2.errors
import pytest
from flask import Flask

from claun_migrate.runtime import db_pool
from claun_migrate.runtime.db_rows import Row, RowCursor
from claun_migrate.runtime.db_sqlite import get_db, init_app, sql_for


@pytest.fixture
def pools() -> Iterator[None]:
    yield
    db_pool.close_pool()


@pytest.mark.postgres
def test_keyword_arguments_and_a_dsn_for_the_same_server_share_nothing_but_both_work(
    postgres_url: str, pools: None
) -> None:
    params = psycopg2.extensions.parse_dsn(postgres_url)
    by_keywords = db_pool.getconn(**params, cursor_factory=RowCursor)
    by_dsn = db_pool.getconn(postgres_url)
    try:
        cur = by_keywords.cursor()
        cur.execute("SELECT 1 AS one")
        row = cur.fetchone()
        assert isinstance(row, Row) and row["one"] == 1
        cur = by_dsn.cursor()
        cur.execute("SELECT 1")
        assert type(cur.fetchone()) is tuple
    finally:
        db_pool.putconn(by_keywords)
        db_pool.putconn(by_dsn)
    again = db_pool.getconn(**params, cursor_factory=RowCursor)
    assert again is by_keywords, "the same arguments reuse the same pool and its connection"
    db_pool.putconn(again)


@pytest.mark.postgres
def test_borrowed_gives_the_connection_back_on_an_exception(postgres_url: str, pools: None):
    with (
        pytest.raises(psycopg2.errors.DivisionByZero),
        db_pool.borrowed(db_pool.getconn(postgres_url)) as c,
    ):
        c.cursor().execute("SELECT 1 / 0")
    stats = db_pool.get_pool(postgres_url).stats()
    assert stats["in_use"] == 0 and stats["idle"] >= 1


def test_putconn_closes_a_connection_no_pool_knows() -> None:
    conn = sqlite3.connect(":memory:")
    db_pool.putconn(conn)
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")
    db_pool.putconn(None)


def test_putconn_on_a_request_connection_keeps_it_for_the_request(tmp_path) -> None:
    app = Flask(__name__)
    init_app(app)
    path = str(tmp_path / "x.db")
    with app.app_context():
        first = get_db(path, timeout=2, check_same_thread=False)
        db_pool.putconn(first)
        second = get_db(path)
        assert second is first
        assert second.execute("SELECT 1").fetchone()[0] == 1


def test_sql_for_translates_only_for_sqlite() -> None:
    sql = "CREATE TABLE t (id SERIAL PRIMARY KEY, note TEXT DEFAULT 'SERIAL PRIMARY KEY %s')"
    conn = sqlite3.connect(":memory:")
    translated = sql_for(conn, sql)
    assert translated == (
        "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "note TEXT DEFAULT 'SERIAL PRIMARY KEY %s')"
    )
    conn.execute(translated)
    conn.execute(sql_for(conn, "INSERT INTO t (note) VALUES (%s)"), ("a",))
    assert conn.execute("SELECT id, note FROM t").fetchall() == [(1, "a")]
    assert sql_for(object(), sql) is sql


def test_sql_for_leaves_psycopg2_connections_alone() -> None:
    sql = "SELECT %s"
    assert (
        sql_for(psycopg2.extensions.connection.__new__(psycopg2.extensions.connection), sql) == sql
    )


def test_returning_rows_can_be_fetched_after_the_commit_as_on_postgresql(tmp_path) -> None:
    app = Flask(__name__)
    init_app(app)
    path = str(tmp_path / "r.db")
    with app.app_context():
        conn = get_db(path)
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT)")
        cursor = conn.cursor()
        cursor.execute("INSERT INTO t (x) VALUES (?) RETURNING id", ("a",))
        conn.commit()
        assert cursor.fetchall() == [(1,)]
        shortcut = conn.execute("INSERT INTO t (x) VALUES ('b') RETURNING id, x")
        conn.commit()
        row = shortcut.fetchone()
        assert row["id"] == 2 and row["x"] == "b" and shortcut.fetchone() is None
    short_lived = get_db(path)
    assert [tuple(r) for r in short_lived.execute("SELECT id FROM t ORDER BY id")] == [(1,), (2,)]
    short_lived.close()


def test_the_copies_import_in_a_flat_app_without_a_package(tmp_path) -> None:
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    runtime = Path(db_pool.__file__).parent
    for name in ("db_pool.py", "db_rows.py", "db_sqlite.py"):
        shutil.copy(runtime / name, tmp_path / name)
    code = "import db_sqlite, db_pool\nprint(db_sqlite.get_db(':memory:').execute('SELECT 1')"
    code += ".fetchone()[0])"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
