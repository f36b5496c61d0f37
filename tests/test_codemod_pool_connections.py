"""pool-connections: every connection the data-layer model finds is borrowed and given back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

from libcst.codemod import CodemodContext, TransformSuccess, transform_module

from claun_migrate.codemods._support import (
    ENGINE,
    Finding,
    companions,
    findings,
    is_pristine,
    reliances,
    requirements,
)
from claun_migrate.codemods.pool_connections import PoolConnectionsCommand, runtime_copies


def migrate(tmp_path: Path, files: dict[str, str]) -> dict[str, tuple[str, CodemodContext]]:
    """Run the codemod over ``files`` (written under ``tmp_path``) as the engine does: one
    model gathered from all of them, then each file transformed."""
    sources = {}
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text))
        sources[str(path)] = dedent(text)
    gathered = PoolConnectionsCommand.gather(sources)
    out = {}
    for path, text in sources.items():
        context = CodemodContext(filename=path, scratch={ENGINE: True})
        result = transform_module(PoolConnectionsCommand(context, **gathered), text)
        assert isinstance(result, TransformSuccess), result
        out[str(Path(path).relative_to(tmp_path))] = (result.code, context)
    return out


def migrate_one(tmp_path: Path, text: str) -> tuple[str, list[Finding]]:
    code, context = migrate(tmp_path, {"layer.py": text})["layer.py"]
    return code, findings(context)


def assert_second_run_changes_nothing(tmp_path: Path, files: dict[str, str]) -> None:
    first = {name: code for name, (code, _) in migrate(tmp_path / "1", files).items()}
    second = {name: code for name, (code, _) in migrate(tmp_path / "2", first).items()}
    assert second == first


CLAUN_LAYER = """\
import os
import psycopg2
import sqlite3

DATABASE_URL = os.environ.get('DATABASE_URL')
DATABASE_PATH = os.path.join(os.path.dirname(__file__), 'app.db')

def get_db_connection():
    if DATABASE_URL:
        return psycopg2.connect(DATABASE_URL)
    else:
        return sqlite3.connect(DATABASE_PATH)

def execute_sql(sql, params=None, fetch=False, commit=False):
    conn = None
    try:
        conn = get_db_connection()
        cursor = conn.cursor()
        cursor.execute(sql, params or ())
        if commit:
            conn.commit()
        if fetch:
            return cursor.fetchall()
    except Exception as e:
        if conn:
            conn.rollback()
        raise
    finally:
        if conn:
            conn.close()
"""

CLAUN_MIGRATED = """\
import os

from db_pool import getconn, putconn
from db_rows import RowCursor
from db_sqlite import get_db, sql_for

DATABASE_URL = os.environ.get('DATABASE_URL')
DATABASE_PATH = os.path.join(os.path.dirname(__file__), 'app.db')

def get_db_connection():
    if DATABASE_URL:
        return getconn(DATABASE_URL, cursor_factory=RowCursor)
    else:
        return get_db(DATABASE_PATH)

def execute_sql(sql, params=None, fetch=False, commit=False):
    conn = None
    try:
        conn = get_db_connection()
        cursor = conn.cursor()
        cursor.execute(sql_for(conn, sql), params or ())
        if commit:
            conn.commit()
        if fetch:
            return cursor.fetchall()
    except Exception as e:
        if conn:
            conn.rollback()
        raise
    finally:
        if conn:
            putconn(conn)
"""


def test_dual_driver_layer_with_a_guarded_finally_close_puts_the_connection_back(tmp_path):
    code, found = migrate_one(tmp_path, CLAUN_LAYER)
    assert code == CLAUN_MIGRATED
    assert found == []


def test_second_run_changes_nothing_on_the_dual_driver_layer(tmp_path):
    assert_second_run_changes_nothing(tmp_path, {"layer.py": CLAUN_LAYER})


def test_runtime_copies_are_requested_in_the_layers_folder_with_a_version_header(tmp_path):
    _, context = migrate(tmp_path, {"layer.py": CLAUN_LAYER})["layer.py"]
    copies = companions(context)
    assert set(copies) == {"db_pool.py", "db_rows.py", "db_sqlite.py"}
    assert all(is_pristine(text) for text in copies.values())
    assert set(requirements(context)) == {"psycopg2", "flask"}


STRAIGHT = """\
import psycopg2

def get_conn():
    return psycopg2.connect(host="db", dbname="shop")

def list_items():
    conn = get_conn()
    cur = conn.cursor()
    cur.execute("SELECT id FROM items")
    rows = cur.fetchall()
    if not rows:
        conn.close()
        return []
    conn.close()
    return rows

def count_items():
    conn = get_conn()
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) FROM items")
    return cur.fetchone()
"""

STRAIGHT_MIGRATED = """\
from db_pool import getconn, putconn
from db_rows import RowCursor

def get_conn():
    return getconn(host="db", dbname="shop", cursor_factory=RowCursor)

def list_items():
    conn = get_conn()
    try:
        cur = conn.cursor()
        cur.execute("SELECT id FROM items")
        rows = cur.fetchall()
        if not rows:
            return []
    finally:
        putconn(conn)
    return rows

def count_items():
    conn = get_conn()
    try:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM items")
        return cur.fetchone()
    finally:
        putconn(conn)
"""


def test_straight_closes_and_a_connection_never_closed_are_given_back_on_every_path(tmp_path):
    code, found = migrate_one(tmp_path, STRAIGHT)
    assert code == STRAIGHT_MIGRATED
    assert found == []


def test_second_run_changes_nothing_after_wrapping(tmp_path):
    assert_second_run_changes_nothing(tmp_path, {"layer.py": STRAIGHT})


def test_with_blocks_borrow_the_connection(tmp_path):
    code, _ = migrate_one(
        tmp_path,
        """\
        from contextlib import closing
        import psycopg2 as dbapi2

        def read(dsn):
            with closing(dbapi2.connect(dsn)) as conn:
                return conn.cursor().execute("SELECT 1")

        def write(dsn):
            with dbapi2.connect(dsn) as conn:
                conn.cursor().execute("UPDATE t SET x = 1")
            conn.close()
        """,
    )
    assert code == dedent(
        """\
        from db_pool import borrowed, getconn
        from db_rows import RowCursor

        def read(dsn):
            with borrowed(getconn(dsn, cursor_factory=RowCursor)) as conn:
                return conn.cursor().execute("SELECT 1")

        def write(dsn):
            with borrowed(getconn(dsn, cursor_factory=RowCursor)) as conn, conn:
                conn.cursor().execute("UPDATE t SET x = 1")
        """
    )


def test_bare_connect_import_and_a_config_dict_keep_their_arguments(tmp_path):
    code, _ = migrate_one(
        tmp_path,
        """\
        from psycopg2 import connect

        DB_CONFIG = {"dbname": "shop"}

        def run(sql):
            conn = None
            try:
                conn = connect(**DB_CONFIG, cursor_factory=None)
                conn.cursor().execute(sql)
                conn.commit()
            finally:
                if conn is not None:
                    conn.close()
        """,
    )
    assert "from psycopg2 import connect" not in code
    assert "conn = getconn(**DB_CONFIG, cursor_factory=None)" in code
    assert "RowCursor" not in code, "a cursor_factory the code chose is kept"
    assert "if conn is not None:\n            putconn(conn)" in code


def test_a_close_helper_gives_the_connection_back_and_its_sites_release_on_every_path(tmp_path):
    code, found = migrate_one(
        tmp_path,
        """\
        import psycopg2

        def db_open():
            return psycopg2.connect("dbname=shop")

        def db_close(cur, conn):
            cur.close()
            conn.close()

        def names():
            conn = db_open()
            cur = conn.cursor()
            cur.execute("SELECT name FROM items")
            rows = cur.fetchall()
            db_close(cur, conn)
            return rows
        """,
    )
    assert found == []
    assert "def db_close(cur, conn):\n    cur.close()\n    putconn(conn)" in code
    assert (
        "        rows = cur.fetchall()\n    finally:\n        putconn(conn)\n    return rows"
        in code
    )


def test_two_open_close_pairs_in_one_function_are_two_sites(tmp_path):
    code, found = migrate_one(
        tmp_path,
        """\
        import psycopg2

        def register(name):
            conn = psycopg2.connect("dbname=shop")
            taken = conn.cursor().execute("SELECT 1")
            conn.close()
            if taken:
                return False
            else:
                conn = psycopg2.connect("dbname=shop")
                conn.cursor().execute("INSERT INTO users VALUES (%s)", (name,))
                conn.commit()
                conn.close()
            return True
        """,
    )
    assert found == []
    assert code.count("putconn(conn)") == 2
    assert ".close()" not in code


def test_a_connection_that_leaves_the_function_blocks_its_source_and_changes_nothing(tmp_path):
    before = """\
    import psycopg2

    def get_conn():
        return psycopg2.connect("dbname=shop")

    def cursor_for_caller():
        conn = get_conn()
        cur = conn.cursor()
        return cur

    def ok():
        conn = get_conn()
        try:
            conn.cursor().execute("SELECT 1")
        finally:
            conn.close()
    """
    code, found = migrate_one(tmp_path, before)
    assert code == dedent(before), "a source with one blocked site is not migrated at all"
    codes = sorted((f.code, f.line, f.pending) for f in found)
    assert codes == [("POOL001", 9, True), ("POOL002", 3, True)]


def test_connections_kept_in_a_tuple_or_passed_away_are_reported_not_edited(tmp_path):
    before = """\
    import psycopg2

    def open_pair():
        conn = psycopg2.connect("dbname=shop")
        return conn, conn.cursor()

    def use():
        pair = open_pair()
        pair[1].execute("SELECT 1")

    def hand_over(worker):
        conn = psycopg2.connect("dbname=shop")
        worker(conn)
    """
    code, found = migrate_one(tmp_path, before)
    assert code == dedent(before)
    assert {f.code for f in found} == {"POOL001", "POOL002"}
    assert all(f.pending for f in found)


def test_sqlite_only_connector_takes_the_request_connection_and_sites_stay(tmp_path):
    code, found = migrate_one(
        tmp_path,
        """\
        import sqlite3
        from flask import current_app

        def get_db():
            conn = sqlite3.connect(current_app.config["DATABASE"], check_same_thread=False)
            conn.row_factory = sqlite3.Row
            return conn

        def names():
            conn = get_db()
            rows = conn.execute("SELECT name FROM t").fetchall()
            conn.close()
            return rows
        """,
    )
    assert found == []
    assert code == dedent(
        """\
        from flask import current_app

        from db_sqlite import get_db as db_sqlite_get_db

        def get_db():
            conn = db_sqlite_get_db(current_app.config["DATABASE"], check_same_thread=False)
            return conn

        def names():
            conn = get_db()
            rows = conn.execute("SELECT name FROM t").fetchall()
            conn.close()
            return rows
        """
    )


def test_a_hand_made_pool_is_kept_and_reported_and_its_sqlite_branch_migrated(tmp_path):
    before = """\
    import os
    import sqlite3
    from psycopg2.pool import SimpleConnectionPool

    URL = os.environ.get("DATABASE_URL")
    pool = None

    def get_conn():
        global pool
        if URL:
            if pool is None:
                pool = SimpleConnectionPool(1, 5, URL)
            return pool.getconn()
        return sqlite3.connect("app.db")

    def put_conn(conn):
        if URL:
            pool.putconn(conn)
        else:
            conn.close()

    def run(sql):
        conn = get_conn()
        try:
            conn.cursor().execute(sql)
        finally:
            put_conn(conn)
    """
    code, found = migrate_one(tmp_path, before)
    assert "SimpleConnectionPool(1, 5, URL)" in code and "return pool.getconn()" in code
    assert 'return get_db("app.db")' in code
    assert "conn.cursor().execute(sql_for(conn, sql))" in code
    assert [(f.code, f.pending) for f in found] == [("POOL003", False)]


def test_connector_and_sites_in_other_modules_are_migrated_together(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "routes").mkdir()
    (tmp_path / "app" / "routes" / "__init__.py").write_text("")
    out = migrate(
        tmp_path,
        {
            "app/db.py": """\
            import psycopg2

            def get_connection():
                return psycopg2.connect("dbname=shop")
            """,
            "app/routes/items.py": """\
            from app.db import get_connection

            def items():
                conn = get_connection()
                rows = conn.cursor().fetchall()
                conn.close()
                return rows
            """,
        },
    )
    db, db_context = out["app/db.py"]
    items, _ = out["app/routes/items.py"]
    assert "from .db_pool import getconn" in db
    assert "from app.db_pool import putconn" in items  # as the module imports its package
    assert "    putconn(conn)\n    return rows" in items
    assert reliances(db_context) == {str(tmp_path / "app/routes/items.py")}


def test_test_code_is_never_migrated(tmp_path):
    before = (
        'import sqlite3\n\ndef test_x():\n    conn = sqlite3.connect("x.db")\n    conn.close()\n'
    )
    out = migrate(tmp_path, {"tests/test_x.py": before})
    assert out["tests/test_x.py"][0] == before


def test_standalone_run_writes_the_runtime_copies_itself(tmp_path):
    layer = tmp_path / "layer.py"
    layer.write_text(CLAUN_LAYER)
    context = CodemodContext(filename=str(layer))
    result = transform_module(PoolConnectionsCommand(context), CLAUN_LAYER)
    assert isinstance(result, TransformSuccess)
    assert result.code == CLAUN_MIGRATED
    assert is_pristine((tmp_path / "db_pool.py").read_text())


def test_same_named_connectors_in_two_modules_are_told_apart(tmp_path):
    connector = 'import psycopg2\n\ndef db_connect():\n    return psycopg2.connect("dbname=x")\n'
    route = "\ndef page():\n    conn = db_connect()\n    rows = conn.cursor().fetchall()\n"
    route += "    conn.close()\n    return rows\n"
    out = migrate(tmp_path, {"lab1.py": connector + route, "lab2.py": connector + route})
    for name in ("lab1.py", "lab2.py"):
        code, context = out[name]
        assert findings(context) == []
        assert "return getconn(" in code and "    putconn(conn)\n    return rows" in code


def test_a_returned_cursor_call_keeps_its_connection_out_of_the_pool(tmp_path):
    before = 'import psycopg2\n\ndef open_cursor():\n    conn = psycopg2.connect("x")\n'
    before += "    return conn.cursor()\n"
    code, found = migrate_one(tmp_path, before)
    assert code == before
    assert sorted(f.code for f in found) == ["POOL001", "POOL002"]


REOPENED_IN_TRY = """\
import psycopg2

def connect():
    return psycopg2.connect("dbname=x")

def move(a, b):
    conn = connect()
    try:
        conn.cursor().execute("UPDATE t SET x = 1 WHERE id = %s", (a,))
        conn.close()
        conn = connect()
        conn.cursor().execute("UPDATE t SET x = 2 WHERE id = %s", (b,))
    finally:
        conn.close()
"""


def test_a_connection_opened_again_under_its_name_inside_its_try_is_left_and_reported(tmp_path):
    code, found = migrate_one(tmp_path, REOPENED_IN_TRY)
    assert code == REOPENED_IN_TRY
    assert {(f.line, f.code) for f in found} == {(11, "POOL001"), (3, "POOL002")}


def test_added_imports_are_relative_in_a_module_that_imports_its_package_relatively(tmp_path):
    for folder in ("app", "app/routes"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    sources = {
        "app/db.py": 'import psycopg2\n\ndef get_connection():\n    return psycopg2.connect("")\n',
        "app/routes/items.py": (
            "from ..db import get_connection\n\ndef items():\n    conn = get_connection()\n"
            "    rows = conn.cursor().fetchall()\n    conn.close()\n    return rows\n"
        ),
    }
    items, _ = migrate(tmp_path, sources)["app/routes/items.py"]
    assert items.startswith("from ..db import get_connection\nfrom ..db_pool import putconn\n")


def test_a_data_layer_in_a_namespace_folder_of_a_package_imports_the_runtime_relatively(tmp_path):
    (tmp_path / "shop" / "utils").mkdir(parents=True)
    (tmp_path / "shop" / "__init__.py").write_text("from shop.utils.db import count\n")
    layer = (
        "import psycopg2\n\ndef count():\n    conn = psycopg2.connect('')\n"
        "    n = conn.cursor().fetchone()\n    conn.close()\n    return n\n"
    )
    code, _ = migrate(tmp_path, {"shop/utils/db.py": layer})["shop/utils/db.py"]
    assert code.startswith("from .db_pool import getconn, putconn\n")  # not `from db_pool`


DUAL_DRIVER = """\
import os
import sqlite3

import psycopg2

def connect():
    if os.environ.get("DATABASE_URL"):
        return psycopg2.connect(os.environ["DATABASE_URL"])
    return sqlite3.connect("app.db")

"""


def test_sql_continued_over_lines_gets_one_argument_per_line_in_sql_for(tmp_path):
    code, _ = migrate_one(
        tmp_path,
        DUAL_DRIVER
        + dedent(
            """\
        def loans(isbn):
            conn = connect()
            try:
                cur = conn.cursor()
                cur.execute(
                    "SELECT l.id FROM loans l "
                    "WHERE l.isbn = %s",
                    (isbn,),
                )
                return cur.fetchall()
            finally:
                conn.close()
        """
        ),
    )
    assert (
        "        cur.execute(\n"
        "            sql_for(\n"
        "                conn,\n"
        '                "SELECT l.id FROM loans l "\n'
        '                "WHERE l.isbn = %s",\n'
        "            ),\n"
        "            (isbn,),\n"
        "        )\n"
    ) in code


def test_sql_that_sqlite_runs_as_written_is_not_wrapped_in_sql_for(tmp_path):
    code, _ = migrate_one(
        tmp_path,
        DUAL_DRIVER
        + dedent(
            """\
        def setup(name):
            conn = connect()
            try:
                cur = conn.cursor()
                cur.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)")
                cur.execute("CREATE TABLE IF NOT EXISTS u (id SERIAL PRIMARY KEY)")
                cur.execute("SELECT COUNT(*) FROM t WHERE name = %s", (name,))
                cur.execute("SELECT 1 WHERE 'a' LIKE '%'")
            finally:
                conn.close()
        """
        ),
    )
    assert 'cur.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)")' in code
    assert 'sql_for(conn, "CREATE TABLE IF NOT EXISTS u (id SERIAL PRIMARY KEY)")' in code
    assert 'sql_for(conn, "SELECT COUNT(*) FROM t WHERE name = %s")' in code
    assert "sql_for(conn, \"SELECT 1 WHERE 'a' LIKE '%'\")" in code


REOPENED_IN_A_BRANCH = """\
import os

import psycopg2

def connect():
    return psycopg2.connect(os.environ["DATABASE_URL"])

def verify(email, staff):
    conn = connect()
    cur = conn.cursor()
    cur.execute("SELECT id FROM members WHERE email = %s", (email,))
    row = cur.fetchone()
    if row:
        conn.close()
        if staff:
            conn = connect()
            conn.cursor().execute("UPDATE members SET verified = TRUE WHERE id = 1")
            conn.commit()
            conn.close()
        return "ok"
    conn.close()
    return "unknown"
"""

REOPENED_IN_A_BRANCH_MIGRATED = """\
import os

from db_pool import getconn, putconn
from db_rows import RowCursor

def connect():
    return getconn(os.environ["DATABASE_URL"], cursor_factory=RowCursor)

def verify(email, staff):
    conn = connect()
    try:
        cur = conn.cursor()
        cur.execute("SELECT id FROM members WHERE email = %s", (email,))
        row = cur.fetchone()
        if row:
            if staff:
                conn_2 = connect()
                try:
                    conn_2.cursor().execute("UPDATE members SET verified = TRUE WHERE id = 1")
                    conn_2.commit()
                finally:
                    putconn(conn_2)
            return "ok"
    finally:
        putconn(conn)
    return "unknown"
"""


def test_a_connection_opened_again_in_a_branch_that_ends_the_function_gets_its_own_name(
    tmp_path,
):
    code, found = migrate_one(tmp_path, REOPENED_IN_A_BRANCH)
    assert code == REOPENED_IN_A_BRANCH_MIGRATED
    assert found == []


def test_second_run_changes_nothing_after_renaming(tmp_path):
    assert_second_run_changes_nothing(tmp_path, {"layer.py": REOPENED_IN_A_BRANCH})


def test_a_reopened_name_read_after_its_branch_is_left_and_reported(tmp_path):
    read_after = REOPENED_IN_A_BRANCH.replace(
        '            conn.close()\n        return "ok"', '        conn.close()\n        return "ok"'
    )
    code, found = migrate_one(tmp_path, read_after)
    assert code == read_after
    assert "POOL001" in {f.code for f in found}


def test_the_renamed_migration_gives_each_connection_back_once_on_postgres(tmp_path, postgres_url):
    code, _ = migrate_one(tmp_path, REOPENED_IN_A_BRANCH)
    assert "conn_2 = connect()" in code
    (tmp_path / "layer.py").write_text(code)
    for name, text in runtime_copies().items():
        (tmp_path / name).write_text(text)
    script = dedent(
        """\
        import layer, db_pool
        conn = layer.connect()
        cur = conn.cursor()
        cur.execute("CREATE TABLE IF NOT EXISTS members (id INT, email TEXT, verified BOOL)")
        cur.execute("INSERT INTO members VALUES (1, 'a@x', FALSE)")
        conn.commit()
        db_pool.putconn(conn)
        verdicts = [layer.verify("a@x", True), layer.verify("a@x", False), layer.verify("b", 1)]
        print(*verdicts, db_pool.get_pool().stats()["in_use"])
        """
    )
    env = {**os.environ, "DATABASE_URL": postgres_url, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "ok", "unknown", "0"]  # every connection given back
