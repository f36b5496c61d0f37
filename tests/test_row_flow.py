"""row_flow: where rows come from, followed by what the code does, across the files of a run."""

from __future__ import annotations

import ast
from textwrap import dedent

from claun_migrate.codemods.data_layer import Rows, _Lines
from claun_migrate.codemods.row_flow import plan_for

SCHEMA = {"reviews": ["id", "title", "rating", "body"], "users": ["id", "email", "name"]}

PG_LAYER = """\
import psycopg2

def connect():
    return psycopg2.connect("dbname=x")
"""


def plan(files: dict[str, str], fallback: Rows | None = None) -> tuple[dict, dict]:
    """Names by file as {line: name} and findings by file as [CODE:line]."""
    sources = {path: dedent(text) for path, text in files.items()}
    result = plan_for(sources, SCHEMA, fallback_rows=fallback)
    names = {
        path: sorted((span[0], name) for span, name in spans.items())
        for path, spans in result.names.items()
    }
    found = {path: sorted(f"{f[2]}:{f[0]}" for f in fs) for path, fs in result.findings.items()}
    return names, found


def test_a_cursor_fetch_is_followed_to_the_execute_that_reaches_it() -> None:
    names, found = plan(
        {
            "db.py": PG_LAYER,
            "routes.py": """\
            from db import connect

            def titles():
                conn = connect()
                try:
                    cur = conn.cursor()
                    cur.execute("SELECT id, title FROM reviews")
                    first = cur.fetchone()[1]
                    cur.execute("SELECT rating FROM reviews")
                    rows = cur.fetchall()
                    return first, [r[0] for r in rows], cur.fetchmany(2)[0][0]
                finally:
                    conn.close()
            """,
        }
    )
    assert names == {"routes.py": [(8, "title"), (11, "rating"), (11, "rating")]}
    assert found == {}


def test_an_execute_in_one_branch_only_leaves_the_fetch_unproven() -> None:
    _, found = plan(
        {
            "db.py": PG_LAYER,
            "routes.py": """\
            from db import connect

            def f(flag):
                conn = connect()
                cur = conn.cursor()
                cur.execute("SELECT id, title FROM reviews")
                if flag:
                    cur.execute("SELECT rating FROM reviews")
                row = cur.fetchone()
                conn.close()
                return row[0]
            """,
        }
    )
    assert found == {"routes.py": ["CM110:11"]}


def test_a_helper_returning_fetch_results_binds_its_sql_parameter_at_each_call() -> None:
    names, found = plan(
        {
            "db.py": PG_LAYER
            + dedent("""
            def fetch_one(query, params=()):
                conn = connect()
                try:
                    cur = conn.cursor()
                    cur.execute(query, params)
                    return cur.fetchone()
                finally:
                    conn.close()

            def fetch_all(query, params=()):
                conn = connect()
                try:
                    cur = conn.cursor()
                    cur.execute(query, params)
                    return cur.fetchall()
                finally:
                    conn.close()
            """),
            "routes.py": """\
            from db import fetch_all, fetch_one

            BY_ID = "SELECT title, rating FROM reviews WHERE id = %s"

            def one(i):
                return fetch_one(BY_ID, (i,))[1]

            def many():
                return [r[2] for r in fetch_all("SELECT * FROM reviews")]
            """,
        }
    )
    assert names == {"routes.py": [(6, "rating"), (9, "rating")]}
    assert found == {}


def test_from_row_gets_the_columns_every_caller_passes() -> None:
    names, found = plan(
        {
            "db.py": PG_LAYER
            + dedent("""
            def fetch_all(query):
                conn = connect()
                try:
                    cur = conn.cursor()
                    cur.execute(query)
                    return cur.fetchall()
                finally:
                    conn.close()
            """),
            "models.py": """\
            from db import fetch_all

            class Review:
                def __init__(self, id, title):
                    self.id, self.title = id, title

                @classmethod
                def from_row(cls, row):
                    return cls(id=row[0], title=row[1])

                @classmethod
                def all(cls):
                    return [cls.from_row(r) for r in fetch_all("SELECT * FROM reviews")]

            def latest():
                rows = fetch_all("SELECT * FROM reviews ORDER BY id DESC")
                return Review.from_row(rows[0])
            """,
        }
    )
    assert names == {"models.py": [(9, "id"), (9, "title")]}
    assert found == {}


def test_a_flag_the_caller_passes_picks_the_helpers_branch() -> None:
    layer = PG_LAYER + dedent("""
    def execute_sql(sql, params=None, fetch=False):
        conn = connect()
        try:
            cur = conn.cursor()
            cur.execute(sql, params)
            if fetch:
                return cur.fetchall()
            return cur.rowcount
        finally:
            conn.close()
    """)
    names, found = plan(
        {
            "db.py": layer,
            "routes.py": """\
            from db import execute_sql

            def f():
                return execute_sql("SELECT id, email FROM users", fetch=True)[0][1]
            """,
        }
    )
    assert names == {"routes.py": [(4, "email")]}
    assert found == {}


def test_dict_rows_are_read_by_name_and_a_positional_read_of_one_is_a_bug_fixed() -> None:
    layer = """\
    import psycopg2
    from psycopg2.extras import RealDictCursor

    def connect():
        return psycopg2.connect("dbname=x", cursor_factory=RealDictCursor)

    def fetch_all(query):
        conn = connect()
        try:
            cur = conn.cursor()
            cur.execute(query)
            return cur.fetchall()
        finally:
            conn.close()
    """
    names, found = plan(
        {
            "db.py": layer,
            "routes.py": """\
            from flask import jsonify
            from db import fetch_all

            def f():
                rows = fetch_all("INSERT INTO users (email) VALUES ('a') RETURNING id")
                return rows[0][0]

            def g(sql):
                rows = fetch_all(sql)
                a, b = rows[0]
                return jsonify(rows), rows[0][1]
            """,
        }
    )
    assert names == {"routes.py": [(6, "id")]}
    assert found == {"routes.py": ["CM112:10", "CM112:11"]}


def test_rows_of_a_connection_the_run_does_not_migrate_stay_positional() -> None:
    _, found = plan(
        {
            "routes.py": """\
            def f(conn):
                cur = conn.cursor()
                cur.execute("SELECT id, email FROM users")
                return cur.fetchone()[1]
            """,
        }
    )
    assert found == {"routes.py": ["CM111:4"]}


def test_test_files_are_callers_but_never_edited() -> None:
    files = {
        "db.py": PG_LAYER
        + dedent("""
        def first(query):
            conn = connect()
            try:
                cur = conn.cursor()
                cur.execute(query)
                return cur.fetchone()
            finally:
                conn.close()

        def label(row):
            return row[1]

        def page():
            return label(first("SELECT id, title FROM reviews"))
        """),
        "tests/test_db.py": """\
        from db import label

        def test_label():
            assert label((1, "x")) == "x"
        """,
    }
    names, found = plan(files)
    assert names == {}
    assert found == {"db.py": ["CM104:16"]}
    del files["tests/test_db.py"]
    names, found = plan(files)
    assert names == {"db.py": [(16, "title")]}


def test_the_same_name_bound_in_two_branches_to_different_queries_is_ambiguous() -> None:
    fallback = Rows(True, True)
    _, found = plan(
        {
            "routes.py": """\
            def f(flag):
                if flag:
                    rows = execute_sql("SELECT id FROM users", fetch=True)
                else:
                    rows = execute_sql("SELECT email FROM users", fetch=True)
                return rows[0][0]
            """,
        },
        fallback,
    )
    assert found == {"routes.py": ["CM109:6"]}


def test_a_constructor_whose_every_caller_passes_one_query_reads_it_by_name() -> None:
    names, found = plan(
        {
            "db.py": PG_LAYER,
            "models.py": """\
            from db import connect

            class User:
                def __init__(self, data):
                    self.id, self.email = data[0], data[1]

            def load(i):
                conn = connect()
                try:
                    cur = conn.cursor()
                    cur.execute("SELECT * FROM users WHERE id = %s", (i,))
                    return User(cur.fetchone())
                finally:
                    conn.close()
            """,
        }
    )
    assert names == {"models.py": [(5, "email"), (5, "id")]}
    assert found == {}


def test_source_segments_are_ast_s_on_non_ascii_crlf_and_form_feed_lines():
    source = "x = 1\ny = 'é' + f(a,\n  b)\r\nz = [\n  1,\n]\x0c\nw = 'ü'; v = g(1)\n"
    lines = _Lines(source)
    nodes = [n for n in ast.walk(ast.parse(source)) if hasattr(n, "lineno")]
    assert len(nodes) > 20
    assert [lines.segment(n) for n in nodes] == [ast.get_source_segment(source, n) for n in nodes]


def test_sql_quoted_in_a_message_is_one_line_and_says_when_it_is_cut():
    from claun_migrate.codemods.row_flow import _shortened

    assert _shortened("SELECT a,\n       b FROM t") == "SELECT a, b FROM t"
    long = "SELECT " + ", ".join(f"column_{i}" for i in range(40)) + " FROM t"
    assert len(_shortened(long)) == 160 and _shortened(long).endswith("…")
