"""named-rows: proven positional row accesses become named ones; the rest is reported."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest
from fixture_tools import BACKEND_DIR, DATA_LAYER_PATH, load_sites, site_matches
from libcst.codemod import CodemodContext, TransformSuccess, transform_module

from claun_migrate.codemods._support import findings, stamp
from claun_migrate.codemods.named_rows import (
    NamedRowsCommand,
    plain_rows_reason,
    schema_from_sources,
)
from claun_migrate.engine import migrate

SCHEMA = {"users": ["id", "email", "name"], "profiles": ["id", "user_id", "bio"]}


def run(before: str, schema: dict[str, list[str]] | None = None) -> tuple[str, list[str]]:
    """The transformed code and the findings as ``CODE:line``."""
    context = CodemodContext()
    schema = SCHEMA if schema is None else schema
    command = NamedRowsCommand(context, schema=schema, plain_rows=None)  # rows are shipped Rows
    result = transform_module(command, dedent(before))
    assert isinstance(result, TransformSuccess), result
    return result.code, [f"{f.code}:{f.line}" for f in findings(context)]


def assert_rewrites(before: str, after: str) -> None:
    code, found = run(before)
    assert code == dedent(after)
    assert found == []


def assert_unchanged(before: str, *expected: str) -> None:
    code, found = run(before)
    assert code == dedent(before)
    assert found == list(expected)


def test_index_on_a_row_of_a_literal_select_becomes_the_column_name() -> None:
    assert_rewrites(
        """
        def f():
            rows = execute_sql("SELECT id, name FROM users", fetch=True)
            return rows[0][1]
        """,
        """
        def f():
            rows = execute_sql("SELECT id, name FROM users", fetch=True)
            return rows[0]["name"]
        """,
    )


def test_returning_id_is_named() -> None:
    assert_rewrites(
        """
        def f(e):
            result = execute_sql("INSERT INTO users (email) VALUES (%s) RETURNING id", e, True)
            return result[0][0]
        """,
        """
        def f(e):
            result = execute_sql("INSERT INTO users (email) VALUES (%s) RETURNING id", e, True)
            return result[0]["id"]
        """,
    )


def test_alias_gives_the_name() -> None:
    assert_rewrites(
        """
        def f():
            n = execute_sql("SELECT COUNT(*) AS n FROM users", fetch=True)
            return n[0][0]
        """,
        """
        def f():
            n = execute_sql("SELECT COUNT(*) AS n FROM users", fetch=True)
            return n[0]["n"]
        """,
    )


def test_sql_in_a_name_bound_once_to_a_literal_is_followed() -> None:
    assert_rewrites(
        """
        SQL = "SELECT id, email FROM users"
        def f():
            query = SQL
            row = execute_sql(query, fetch=True)[0]
            return row[1]
        """,
        """
        SQL = "SELECT id, email FROM users"
        def f():
            query = SQL
            row = execute_sql(query, fetch=True)[0]
            return row["email"]
        """,
    )


def test_rows_are_followed_through_for_loops_enumerate_and_comprehensions() -> None:
    assert_rewrites(
        """
        def f():
            rows = execute_sql("SELECT id, name FROM users", fetch=True)
            for row in rows:
                print(row[0])
            for i, row2 in enumerate(rows):
                print(row2[1])
            return {r[0]: r[1] for r in rows}
        """,
        """
        def f():
            rows = execute_sql("SELECT id, name FROM users", fetch=True)
            for row in rows:
                print(row["id"])
            for i, row2 in enumerate(rows):
                print(row2["name"])
            return {r["id"]: r["name"] for r in rows}
        """,
    )


def test_row_chosen_with_a_conditional_expression_is_followed() -> None:
    assert_rewrites(
        """
        def f():
            rows = execute_sql("SELECT id, name FROM users", fetch=True)
            user = rows[0] if rows else None
            return user[1]
        """,
        """
        def f():
            rows = execute_sql("SELECT id, name FROM users", fetch=True)
            user = rows[0] if rows else None
            return user["name"]
        """,
    )


def test_star_is_expanded_from_the_schema_and_negative_indexes_count_from_the_end() -> None:
    assert_rewrites(
        """
        def f():
            rows = execute_sql("SELECT u.email, p.* FROM users u JOIN profiles p", fetch=True)
            return rows[0][0], rows[0][2], rows[0][-1]
        """,
        """
        def f():
            rows = execute_sql("SELECT u.email, p.* FROM users u JOIN profiles p", fetch=True)
            return rows[0]["email"], rows[0]["user_id"], rows[0]["bio"]
        """,
    )


def test_a_name_rebound_in_straight_line_code_follows_the_latest_query() -> None:
    assert_rewrites(
        """
        def f():
            result = execute_sql("SELECT id FROM users", fetch=True)
            a = result[0][0]
            result = execute_sql("SELECT email, name FROM users", fetch=True)
            return a, result[0][1]
        """,
        """
        def f():
            result = execute_sql("SELECT id FROM users", fetch=True)
            a = result[0]["id"]
            result = execute_sql("SELECT email, name FROM users", fetch=True)
            return a, result[0]["name"]
        """,
    )


def test_picking_a_row_from_the_result_list_is_not_a_column() -> None:
    assert_unchanged(
        """
        def f():
            rows = execute_sql("SELECT id, name FROM users", fetch=True)
            return rows[0], rows[-1]
        """
    )


def test_noop_without_fetch() -> None:
    assert_unchanged(
        """
        def f():
            result = execute_sql("SELECT id FROM users")
            return result[0][0]
        """
    )


def test_row_read_straight_from_a_cursor_is_reported() -> None:
    assert_unchanged(
        """
        def f(cursor):
            rows = cursor.fetchall()
            return rows[0][0], cursor.fetchone()[0]
        """,
        "CM110:4",
        "CM110:4",
    )


def test_sql_grown_by_literal_where_clauses_keeps_its_columns_and_is_named() -> None:
    assert_rewrites(
        """
        def f(name):
            query = "SELECT id, name FROM users WHERE 1 = 1"
            if name:
                query += " AND name = %s"
            query += " ORDER BY id"
            rows = execute_sql(query, (name,), fetch=True)
            return [r[1] for r in rows]
        """,
        """
        def f(name):
            query = "SELECT id, name FROM users WHERE 1 = 1"
            if name:
                query += " AND name = %s"
            query += " ORDER BY id"
            rows = execute_sql(query, (name,), fetch=True)
            return [r["name"] for r in rows]
        """,
    )


def test_sql_grown_by_what_may_change_the_columns_is_left_and_reported() -> None:
    for growth in ('", email"', '" JOIN profiles p ON p.user_id = users.id"', "order"):
        assert_unchanged(
            f"""
            def f(order):
                query = "SELECT id, name FROM users"
                if order:
                    query += {growth}
                rows = execute_sql(query, fetch=True)
                return [r[1] for r in rows]
            """,
            "CM101:7",
        )


def test_unsafe_fixes_alias_the_sql_then_name_the_read() -> None:
    before = """
        def f():
            total = execute_sql("SELECT COUNT(*) FROM users", fetch=True)
            both = execute_sql("SELECT u.id, p.id FROM users u, profiles p", fetch=True)
            return total[0][0], both[0][1]
        """
    context = CodemodContext()
    command = NamedRowsCommand(context, schema=SCHEMA, plain_rows=None, unsafe_fixes=True)
    result = transform_module(command, dedent(before))
    assert isinstance(result, TransformSuccess)
    assert '"SELECT COUNT(*) AS count FROM users"' in result.code
    assert "p.id AS profiles_id FROM" in result.code
    assert 'total[0]["count"], both[0]["profiles_id"]' in result.code
    assert findings(context) == []
    code, found = run(before)
    assert code == dedent(before)
    assert found == ["CM102:5", "CM103:5"]


def test_dynamic_sql_finding_suggests_the_name_from_the_first_literal() -> None:
    context = CodemodContext()
    source = """
        def f(order):
            query = "SELECT id, name FROM users"
            query += order
            return execute_sql(query, fetch=True)[0][1], execute_sql(query, fetch=True)[0][-9]
        """
    transform_module(NamedRowsCommand(context, schema=SCHEMA), dedent(source))
    finding, out_of_range = findings(context)
    assert "grows on line 4" in finding.message
    assert "<column>" in out_of_range.suggestion
    assert 'execute_sql(query, fetch=True)[0]["name"]' in finding.suggestion


def test_noop_when_sql_is_an_f_string() -> None:
    assert_unchanged(
        """
        def f(table):
            rows = execute_sql(f"SELECT id FROM {table}", fetch=True)
            return rows[0][0]
        """,
        "CM101:4",
    )


def test_noop_when_a_column_has_no_alias() -> None:
    assert_unchanged(
        """
        def f():
            users = execute_sql("SELECT COUNT(*) FROM users", fetch=True)
            return users[0][0]
        """,
        "CM102:4",
    )


def test_duplicate_names_are_reported_and_unique_ones_named() -> None:
    code, found = run(
        """
        def f():
            rows = execute_sql("SELECT u.id, p.id, p.bio FROM users u JOIN profiles p", fetch=True)
            return rows[0][0], rows[0][1], rows[0][2]
        """
    )
    assert 'rows[0][0], rows[0][1], rows[0]["bio"]' in code
    assert found == ["CM103:4", "CM103:4"]


def test_a_helper_whose_every_caller_passes_rows_of_one_query_reads_them_by_name() -> None:
    assert_rewrites(
        """
        def show(row):
            return {"id": row[0]}

        def f():
            rows = execute_sql("SELECT id, name FROM users", fetch=True)
            return show(rows[0])
        """,
        """
        def show(row):
            return {"id": row["id"]}

        def f():
            rows = execute_sql("SELECT id, name FROM users", fetch=True)
            return show(rows[0])
        """,
    )


def test_a_helper_whose_callers_pass_rows_of_different_queries_is_reported() -> None:
    assert_unchanged(
        """
        def show(row):
            return {"id": row[0]}

        def f():
            return show(execute_sql("SELECT id, name FROM users", fetch=True)[0])

        def g():
            return show(execute_sql("SELECT name, id FROM users", fetch=True)[0])
        """,
        "CM104:3",
    )


def test_a_helper_also_called_with_other_values_or_passed_as_a_value_is_reported() -> None:
    for other in ("show((1, 'x'))", "list(map(show, rows))"):
        assert_unchanged(
            f"""
            def show(row):
                return row[0]

            def f():
                rows = execute_sql("SELECT id, name FROM users", fetch=True)
                return show(rows[0]), {other}
            """,
            "CM104:3",
        )


def test_rows_passed_to_an_unseen_function_need_no_review() -> None:
    """Whatever it does with them by position keeps working with the shipped row type."""
    assert_unchanged(
        """
        from helpers import render
        def f():
            rows = execute_sql("SELECT id, name FROM users", fetch=True)
            return render(rows), len(rows)
        """,
    )


def test_jsonify_of_raw_rows_is_reported_as_a_json_shape_change() -> None:
    assert_unchanged(
        """
        def f():
            rows = execute_sql("SELECT id, name FROM users", fetch=True)
            return jsonify({"users": rows, "first": rows[0]})
        """,
        "CM105:4",
        "CM105:4",
    )
    context = CodemodContext()
    transform_module(NamedRowsCommand(context), 'jsonify(execute_sql("SELECT 1", fetch=True))')
    assert "[dict(r) for r in" in findings(context)[0].suggestion
    assert "changes the API" in findings(context)[0].suggestion


def test_unpacking_whose_arity_matches_is_kept_and_not_reported() -> None:
    assert_unchanged(
        """
        def f():
            rows = execute_sql("SELECT id, COUNT(*) FROM users GROUP BY id", fetch=True)
            a, b = rows[0]
            for c, d in rows:
                pass
            for i, (e, g) in enumerate(rows):
                pass
            return {k: v for k, v in rows}
        """
    )


def test_unpacking_whose_arity_differs_is_reported() -> None:
    assert_unchanged(
        """
        def f():
            rows = execute_sql("SELECT id, email, name FROM users", fetch=True)
            a, b = rows[0]
            for c, d in rows:
                pass
        """,
        "CM106:4",
        "CM106:5",
    )


def test_unpacking_of_dynamic_sql_needs_no_review() -> None:
    """Unpacking works unchanged with the shipped row type, whatever the columns."""
    assert_unchanged(
        """
        def f(sql):
            a, b = execute_sql(sql, fetch=True)[0]
        """,
    )


def test_index_out_of_range_is_reported() -> None:
    assert_unchanged(
        """
        def f():
            return execute_sql("SELECT id FROM users", fetch=True)[0][1]
        """,
        "CM107:3",
    )


def test_star_over_an_undeclared_table_is_reported() -> None:
    assert_unchanged(
        """
        def f():
            return execute_sql("SELECT * FROM jobs", fetch=True)[0][1]
        """,
        "CM108:3",
    )


def test_a_name_bound_in_two_branches_is_reported() -> None:
    assert_unchanged(
        """
        def f(x):
            if x:
                rows = execute_sql("SELECT id FROM users", fetch=True)
            else:
                rows = execute_sql("SELECT name FROM users", fetch=True)
            return rows[0][0]
        """,
        "CM109:7",
    )


def test_a_name_rebound_later_in_the_same_loop_is_reported() -> None:
    assert_unchanged(
        """
        def f(ids):
            rows = execute_sql("SELECT id FROM users", fetch=True)
            for i in ids:
                print(rows[0][0])
                rows = execute_sql("SELECT name FROM users", fetch=True)
        """,
        "CM109:5",
    )


SAMPLE = """
def show(row):
    return row[1]

def f(q):
    rows = execute_sql("SELECT u.email, p.* FROM users u JOIN profiles p", fetch=True)
    total = execute_sql("SELECT COUNT(*) FROM users", fetch=True)[0][0]
    query = "SELECT id, name FROM users"
    query += q
    names = [r[1] for r in execute_sql(query, fetch=True)]
    email, pid, uid, bio = rows[0]
    return jsonify([rows[0][0], rows[0][3], show(rows[0]), total, names])
"""


def test_second_run_changes_nothing_and_reports_the_same() -> None:
    once, found_once = run(SAMPLE)
    twice, found_twice = run(once)
    assert once != SAMPLE
    assert twice == once
    assert found_twice == found_once


def test_gather_reads_create_table_literals_and_drops_conflicting_tables() -> None:
    sources = {
        "db.py": 'TABLES = ["CREATE TABLE IF NOT EXISTS users (id SERIAL, email TEXT)"]',
        "old.py": 'SQL = "CREATE TABLE jobs (id INT)"\nOTHER = "create table jobs (id INT, x INT)"',
        "notes.txt": "CREATE TABLE ignored (a INT)",
        "schema.sql": "CREATE TABLE plans (id INT, name TEXT);",
    }
    assert schema_from_sources(sources) == {
        "users": ["id", "email"],
        "plans": ["id", "name"],
    }
    assert schema_from_sources({"a.py": "x = 1"}) == {}


def test_altered_table_is_not_trusted() -> None:
    sources = {
        "db.py": 'A = "CREATE TABLE users (id INT)"\nB = "ALTER TABLE users ADD COLUMN x INT"'
    }
    assert schema_from_sources(sources) == {}


def test_runs_through_libcst_tool_with_the_schema_and_data_layer_options(tmp_path: Path) -> None:
    """Alone, it rewrites only when ``--data-layer`` names a migrated data layer."""
    (tmp_path / ".libcst.codemod.yaml").write_text(
        "generated_code_marker: '@generated'\nformatter: ['cat']\nblacklist_patterns: []\n"
        "modules: ['claun_migrate.codemods']\nrepo_root: '.'\n"
    )
    (tmp_path / "schema.sql").write_text("CREATE TABLE jobs (id INT, title TEXT);")
    (tmp_path / "legacy.py").write_text(DATA_LAYER_PATH.read_text())
    (tmp_path / "migrated.py").write_text(MIGRATED_LAYER)
    target = tmp_path / "routes.py"
    before = 'def f():\n    return execute_sql("SELECT * FROM jobs", fetch=True)[0][1]\n'
    target.write_text(before)

    def tool(*layer: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "libcst.tool", "codemod", "--no-format"]
            + ["named_rows.NamedRowsCommand", "--schema", "schema.sql", *layer, "routes.py"],
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stderr

    for layer in [(), ("--data-layer", "legacy.py")]:
        assert "CM111" in tool(*layer)
        assert target.read_text() == before
    tool("--data-layer", "migrated.py")
    assert '[0]["title"]' in target.read_text()


@pytest.mark.parametrize("unsafe_fixes", [False, True], ids=["default", "unsafe-fixes"])
def test_fixture_sites_get_the_verdicts_of_patterns_md(unsafe_fixes: bool) -> None:
    """Named sites are rewritten, review sites reported, kept sites and all else untouched;
    `unsafe` sites are reported by default and named with --unsafe-fixes (the only other
    lines it changes are the SQL literals it aliases)."""
    sources = {
        str(p): p.read_text() for p in sorted(BACKEND_DIR.rglob("*.py")) if "tests" not in p.parts
    }
    gathered = NamedRowsCommand.gather(sources, unsafe_fixes=unsafe_fixes)
    unsafe = "named" if unsafe_fixes else "review"
    expected: dict[tuple[str, int], str] = {}
    for site in load_sites():
        source = (BACKEND_DIR / site.file).read_text()
        (match,) = site_matches(source, site)
        verdict = unsafe if site.verdict == "unsafe" else site.verdict
        expected[(site.file, source.count("\n", 0, match.start()) + 1)] = verdict
    actual: dict[tuple[str, int], str] = {}
    aliased: set[tuple[str, int]] = set()
    for path, before in sources.items():
        context = CodemodContext(filename=path)
        result = transform_module(NamedRowsCommand(context, **gathered), before)
        assert isinstance(result, TransformSuccess), path
        name = Path(path).relative_to(BACKEND_DIR).as_posix()
        pairs = zip(before.splitlines(), result.code.splitlines(), strict=True)
        for line, (old, new) in enumerate(pairs, start=1):
            if old != new:
                actual[(name, line)] = "named"
                if " AS " in new and " AS " not in old or new.count(" AS ") > old.count(" AS "):
                    aliased.add((name, line))
        for finding in findings(context):
            actual.setdefault((name, finding.line), "review")
    wanted = {site: v for site, v in expected.items() if v != "kept"}
    extra = {site for site in actual if site not in wanted}
    assert {site: actual.get(site) for site in wanted} == wanted
    assert extra <= aliased if unsafe_fixes else not extra, sorted(extra)


def test_rows_returned_by_a_function_are_named_where_its_callers_read_them() -> None:
    assert_rewrites(
        """
        def user(i):
            rows = execute_sql("SELECT id, name FROM users WHERE id = %s", (i,), fetch=True)
            return rows[0] if rows else None

        def name(i):
            return user(i)[1]
        """,
        """
        def user(i):
            rows = execute_sql("SELECT id, name FROM users WHERE id = %s", (i,), fetch=True)
            return rows[0] if rows else None

        def name(i):
            return user(i)["name"]
        """,
    )


def test_rows_changed_in_place_are_not_proven() -> None:
    assert_unchanged(
        """
        def f():
            rows = execute_sql("SELECT id, name FROM users", fetch=True)
            rows.append((0, "nobody"))
            return rows[-1][1]
        """,
        "CM108:5",
    )


def test_a_row_handed_on_from_helper_to_helper_is_named_in_both() -> None:
    code, found = run(
        """
        def inner(row):
            return row[1]

        def outer(rows):
            return inner(rows[0]), rows[0][0]

        def f():
            return outer(execute_sql("SELECT id, name FROM users", fetch=True))
        """
    )
    assert found == []
    assert 'return row["name"]' in code and 'rows[0]["id"]' in code


def test_raw_row_in_a_returned_dict_or_json_dumps_is_a_json_shape_change() -> None:
    assert_unchanged(
        """
        def f():
            rows = execute_sql("SELECT id, name FROM users", fetch=True)
            print(json.dumps(rows))
            return {"user": rows[0]}
        """,
        "CM105:4",
        "CM105:5",
    )


def test_rows_are_followed_through_unpacking_of_the_result_list() -> None:
    assert_rewrites(
        """
        def f():
            (user,) = execute_sql("SELECT id, name FROM users LIMIT 1", fetch=True)
            first, *others = execute_sql("SELECT id, name FROM users", fetch=True)
            return user[1], first[0], others[0][1]
        """,
        """
        def f():
            (user,) = execute_sql("SELECT id, name FROM users LIMIT 1", fetch=True)
            first, *others = execute_sql("SELECT id, name FROM users", fetch=True)
            return user["name"], first["id"], others[0]["name"]
        """,
    )


MIGRATED_LAYER = """\
from .db_pool import get_pool
from .db_rows import RowCursor
from .db_sqlite import get_db, release_db, to_qmark


def get_db_connection():
    return get_pool(DATABASE_URL, cursor_factory=RowCursor).getconn()


def execute_sql(sql, params=None, fetch=False, commit=False):
    conn = get_db_connection()
    try:
        cursor = conn.cursor()
        cursor.execute(sql, params or ())
        return cursor.fetchall() if fetch else None
    finally:
        get_pool(DATABASE_URL).putconn(conn)
"""


def _copy_backend(tmp_path: Path) -> Path:
    return Path(shutil.copytree(BACKEND_DIR, tmp_path / "backend"))


def _named_lines(folder: str) -> set[tuple[str, int]]:
    """(file, line) of the PATTERNS.md sites under ``folder`` that the full run names."""
    lines = set()
    for site in load_sites():
        if site.verdict == "named" and site.file.startswith(folder):
            source = (BACKEND_DIR / site.file).read_text()
            (match,) = site_matches(source, site)
            lines.add((site.file, source.count("\n", 0, match.start()) + 1))
    return lines


def test_routes_without_their_data_layer_are_reported_not_rewritten(tmp_path: Path) -> None:
    """``apply backend/app/routes``: database.py is not migrated, rows stay plain tuples and
    ``row["id"]`` would raise TypeError, so every ``execute_sql`` site that would be named is
    reported (CM111, or CM108 for ``SELECT *``, whose CREATE TABLE is in database.py, outside
    the run). Rows read through review_store's helpers, outside the run too, are not known to
    be rows at all: nothing is changed there either."""
    backend = _copy_backend(tmp_path)
    result = migrate([backend / "app" / "routes"], jobs=1)
    assert (result.changes, result.errors) == ([], [])
    found = {
        (f.path.relative_to(backend).as_posix(), f.finding.line): f.finding.code
        for f in result.findings
    }
    named = {site for site in _named_lines("app/routes/") if "reviews" not in site[0]}
    assert {site: found.get(site) for site in named} == {
        site: "CM108" if found.get(site) == "CM108" else "CM111" for site in named
    }
    assert [found[site] for site in named].count("CM111") == len(named) - 5 == 41
    sample = next(f.finding for f in result.findings if f.finding.code == "CM111")
    assert "plain tuples" in sample.message and "TypeError" in sample.message
    assert "same run" in sample.suggestion


def test_routes_with_a_migrated_data_layer_are_rewritten(tmp_path: Path) -> None:
    backend = _copy_backend(tmp_path)
    full = migrate([backend], write=True, jobs=1)
    assert full.errors == [] and any("routes" in c.path.parts for c in full.changes)
    assert not any(f.finding.code == "CM111" for f in full.findings)
    assert migrate([backend / "app" / "routes"], jobs=1).changes == []
    (backend / "app" / "routes" / "x.py").write_text(
        'def f():\n    return execute_sql("SELECT id FROM users", fetch=True)[0][0]\n'
    )
    layer = backend / "app" / "services" / "database.py"
    changes = migrate([backend / "app" / "routes", layer], jobs=1).changes
    assert [c.path.name for c in changes] == ["x.py"], [(c.path, c.codemods) for c in changes]
    changed = changes[0]
    assert changed.after.endswith('fetch=True)[0]["id"]\n')


def test_no_rewrite_when_the_data_layer_cannot_be_migrated_in_the_run(tmp_path: Path) -> None:
    """A runtime copy edited by hand keeps pool-connections off the layer: rows stay tuples."""
    backend = _copy_backend(tmp_path)
    services = backend / "app" / "services"
    (services / "db_rows.py").write_text(stamp("db_rows.py", "0.1", "Row = tuple\n") + "# mine\n")
    result = migrate([backend], jobs=1)
    assert not any("routes" in c.path.parts for c in result.changes)
    assert any(f.finding.code == "CM111" for f in result.findings)


def test_gather_knows_whether_execute_sql_returns_the_shipped_row_type() -> None:
    def plain(sources: dict[str, str]) -> str | None:
        return plain_rows_reason(sources)

    legacy = DATA_LAYER_PATH.read_text()
    assert plain({"svc/database.py": legacy}) is None
    assert plain({"svc/database.py": MIGRATED_LAYER}) is None
    assert "no module" in str(plain({"routes.py": "execute_sql('SELECT 1', fetch=True)"}))
    keyword = legacy.replace("psycopg2.connect(DATABASE_URL)", "psycopg2.connect(dsn=DATABASE_URL)")
    assert plain({"svc/database.py": keyword}) is None, "keyword arguments migrate too"
    factory = legacy.replace("connect(DATABASE_URL)", "connect(DATABASE_URL, cursor_factory=C)")
    assert "svc/database.py" in str(plain({"svc/database.py": factory}))
    sqlite_only = MIGRATED_LAYER.replace(
        "from .db_pool import get_pool\nfrom .db_rows import RowCursor\n", ""
    )
    assert plain({"svc/database.py": sqlite_only.replace("get_pool", "pool")}) is None
    no_row_type = MIGRATED_LAYER.replace("from .db_rows import RowCursor\n", "")
    assert "svc/database.py" in str(plain({"svc/database.py": no_row_type}))
    other = "def execute_sql(sql):\n    return run(sql)\n"
    assert "other.py" in str(plain({"svc/database.py": MIGRATED_LAYER, "other.py": other}))


def test_a_run_reads_the_schema_from_sql_files_beside_the_code(tmp_path: Path) -> None:
    (tmp_path / "schema.sql").write_text("CREATE TABLE jobs (id INT, title TEXT);\n")
    (tmp_path / "db.py").write_text(
        "import psycopg2\n\n\ndef first_title():\n"
        '    conn = psycopg2.connect("dbname=x")\n    try:\n        cur = conn.cursor()\n'
        '        cur.execute("SELECT * FROM jobs")\n        return cur.fetchone()[1]\n'
        "    finally:\n        conn.close()\n"
    )
    result = migrate([tmp_path / "db.py"], select=["named-rows"])
    (change,) = [c for c in result.changes if c.path.name == "db.py"]
    assert 'cur.fetchone()["title"]' in change.after
