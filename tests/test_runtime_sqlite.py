"""Per-request SQLite connections on a real Flask app, and ``%s`` -> ``?`` translation."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import flask
import psycopg2
import pytest

from claun_migrate.runtime.db_rows import Row
from claun_migrate.runtime.db_sqlite import get_db, init_app, release_db, to_qmark


def execute_sql(path: str, sql: str, params: Any = None, fetch: bool = False, commit: bool = False):
    """The migrated ``execute_sql`` of docs/CONTRACTS.md, SQLite branch."""
    conn = get_db(path)
    try:
        cursor = conn.cursor()
        cursor.execute(to_qmark(sql), params or ())
        if commit:
            conn.commit()
        if fetch:
            return cursor.fetchall()
    except Exception:
        conn.rollback()
        raise
    finally:
        release_db(conn)


@pytest.fixture
def db_path(tmp_path) -> str:
    path = str(tmp_path / "app.db")
    execute_sql(path, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)", commit=True)
    return path


@pytest.fixture
def app() -> flask.Flask:
    app = flask.Flask(__name__)
    init_app(app)
    return app


def test_a_request_uses_one_connection_and_teardown_closes_it(app, db_path):
    with app.app_context():
        conns = {id(get_db(db_path)) for _ in range(3)}
        execute_sql(db_path, "INSERT INTO users (email) VALUES (%s)", ("a@x",), commit=True)
        rows = execute_sql(db_path, "SELECT id, email FROM users", fetch=True)
        conn = get_db(db_path)
        conns.add(id(conn))
    assert len(conns) == 1
    assert rows == [(1, "a@x")] and rows[0]["email"] == "a@x" and isinstance(rows[0], Row)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        conn.execute("SELECT 1")


def test_uncommitted_work_is_discarded_at_the_end_of_the_call(app, db_path):
    with app.app_context():
        execute_sql(db_path, "INSERT INTO users (email) VALUES (%s)", ("lost@x",))
        assert execute_sql(db_path, "SELECT count(*) FROM users", fetch=True) == [(0,)]
        execute_sql(db_path, "INSERT INTO users (email) VALUES (%s)", ("kept@x",), commit=True)
        get_db(db_path).commit()
    assert execute_sql(db_path, "SELECT email FROM users", fetch=True) == [("kept@x",)]


def emails(path: str) -> list[str]:
    """What another process would see: a fresh connection outside any app context."""
    conn = sqlite3.connect(path)
    try:
        return [email for (email,) in conn.execute("SELECT email FROM users ORDER BY id")]
    finally:
        conn.close()


def test_execute_sql_between_a_routes_insert_and_its_commit_keeps_the_insert(app, db_path):
    @app.post("/signup")
    def signup():
        conn = get_db(db_path)  # the older models layer / get_db_connection()
        conn.execute("INSERT INTO users (email) VALUES (?)", ("route@x",))
        seen = execute_sql(db_path, "SELECT count(*) FROM users", fetch=True)
        execute_sql(db_path, "INSERT INTO users (email) VALUES (%s)", ("helper@x",))
        conn.commit()
        conn.close()
        return {"seen": seen[0][0]}

    response = app.test_client().post("/signup")

    assert response.status_code == 200 and response.get_json() == {"seen": 1}
    assert emails(db_path) == ["route@x", "helper@x"]


def test_the_last_user_to_let_go_rolls_back_and_teardown_always_does(app, db_path):
    @app.post("/abandon")
    def abandon():
        first, second = get_db(db_path), get_db(db_path)
        first.execute("INSERT INTO users (email) VALUES (?)", ("lost@x",))
        second.close()
        first.close()  # the last user: rolled back, as closing a connection did
        first.close()  # one close too many: harmless
        first.commit()
        get_db(db_path).execute("INSERT INTO users (email) VALUES (?)", ("never@x",))
        return {}  # still one user: teardown rolls back and closes

    assert app.test_client().post("/abandon").status_code == 200
    assert emails(db_path) == []


def test_failed_statement_leaves_the_request_connection_usable(app, db_path):
    with app.app_context():
        with pytest.raises(sqlite3.OperationalError):
            execute_sql(db_path, "SELECT nope FROM users", fetch=True)
        assert execute_sql(db_path, "SELECT count(*) FROM users", fetch=True) == [(0,)]


def test_threads_get_their_own_request_connection(app, db_path):
    seen: list[int] = []
    barrier = threading.Barrier(4)

    def request() -> None:
        with app.app_context():
            conn = get_db(db_path)
            barrier.wait()
            execute_sql(db_path, "SELECT count(*) FROM users", fetch=True)
            seen.append(id(conn))
            barrier.wait()

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 4


def test_outside_an_app_context_each_call_gets_a_short_lived_connection(db_path):
    conn = get_db(db_path)
    assert conn is not get_db(db_path)
    release_db(conn)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        conn.execute("SELECT 1")


def test_init_app_registers_the_teardown_once(app):
    before = list(app.teardown_appcontext_funcs)
    init_app(app)
    assert app.teardown_appcontext_funcs == before and len(before) == 1


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM users WHERE email = %s", "SELECT * FROM users WHERE email = ?"),
        ("INSERT INTO t VALUES (%s, %s)", "INSERT INTO t VALUES (?, ?)"),
        ("SELECT '%s', %s", "SELECT '%s', ?"),
        ("SELECT * FROM t WHERE name LIKE '%smith%' AND id = %s", None),
        ("SELECT 'it''s %s', %s", "SELECT 'it''s %s', ?"),
        ("SELECT E'a\\' %s', %s", "SELECT E'a\\' %s', ?"),
        ('SELECT "col%s" FROM t WHERE x = %s', 'SELECT "col%s" FROM t WHERE x = ?'),
        ("SELECT 1 -- where %s\n, %s", "SELECT 1 -- where %s\n, ?"),
        ("SELECT /* %s */ %s", "SELECT /* %s */ ?"),
        ("SELECT $$ %s $$, $q$ %s $q$, %s", "SELECT $$ %s $$, $q$ %s $q$, ?"),
        ("SELECT a$b$c, %s, d$b$", "SELECT a$b$c, ?, d$b$"),
        ("SELECT 5 %% 3, %s", "SELECT 5 % 3, ?"),
        (
            "SELECT * FROM t WHERE a LIKE 'x%%' AND b = %s",
            "SELECT * FROM t WHERE a LIKE 'x%' AND b = ?",
        ),
        ("SELECT '%%s'", "SELECT '%s'"),
        ("SELECT %(email)s, %(email)s", "SELECT :email, :email"),
        ("SELECT 'unterminated %s", "SELECT 'unterminated %s"),
    ],
)
def test_to_qmark_rewrites_placeholders_outside_literals_and_comments(sql, expected):
    assert to_qmark(sql) == (sql.replace("= %s", "= ?") if expected is None else expected)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT 'a%%b', %s", ("x",)),
        ("SELECT CASE WHEN 'xy' LIKE 'x%%' THEN 'yes' END, %s", (1,)),
        ("SELECT %(a)s, %(b)s, %(a)s", {"a": 1, "b": "two"}),
        ("SELECT 7 %% 3", ()),
    ],
)
def test_translated_sql_gives_sqlite_what_psycopg2_gives_postgresql(postgres_url, sql, params):
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        on_postgres = cur.fetchall()
    conn.close()
    lite = sqlite3.connect(":memory:")
    on_sqlite = lite.execute(to_qmark(sql), params).fetchall()
    lite.close()
    assert [tuple(map(str, row)) for row in on_sqlite] == [
        tuple(map(str, row)) for row in on_postgres
    ]
