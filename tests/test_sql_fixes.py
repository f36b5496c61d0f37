"""SQL grown at run time is proven clause by clause; the unsafe fixes name every column in the
SQL text as written, and both drivers report the names proven for the fixed SQL."""

from __future__ import annotations

import ast
import sqlite3
from typing import Any

import psycopg2
import pytest

from claun_migrate.codemods._sql import create_tables, grown_columns, output_columns
from claun_migrate.codemods._sql_fixes import fix_sql, python_literal

DDL = [
    "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT)",
    "CREATE TABLE profiles (id INTEGER PRIMARY KEY, user_id INTEGER, bio TEXT)",
    "CREATE TABLE jobs (id INTEGER PRIMARY KEY, title TEXT, company_id INTEGER)",
    "CREATE TABLE company_profiles (id INTEGER PRIMARY KEY, name TEXT)",
    "CREATE TABLE accounts (id INTEGER PRIMARY KEY, userName TEXT)",
]
SCHEMA = {table: columns for sql in DDL for table, columns in create_tables(sql).items()}
JOBS = "FROM jobs j JOIN company_profiles c ON c.id = j.company_id"


def grown(base: str, *fragments: str, always: tuple[int, ...] = ()) -> list[str | None] | str:
    result = grown_columns(base, fragments, SCHEMA, always=always)
    return result.problem if result.columns is None else [c.name for c in result.columns]


def fixed(sql: str, positions: list[int] | None = None) -> str | None:
    fix = fix_sql(sql, SCHEMA, positions=positions)
    return None if fix is None else fix.sql


# grown_columns


def test_optional_and_clauses_after_where_keep_the_base_columns() -> None:
    base = "SELECT id, email FROM users WHERE 1=1"
    assert grown(base, " AND email = %s", " AND name LIKE ?", " ORDER BY id") == ["id", "email"]


def test_limit_and_offset_fragments_keep_the_columns() -> None:
    assert grown("SELECT id FROM users", " ORDER BY id", " LIMIT %s", " OFFSET %s") == ["id"]


def test_where_fragment_appended_to_sql_without_where_is_proven() -> None:
    assert grown("SELECT id FROM users", " WHERE email = %s", always=(0,)) == ["id"]


def test_and_fragment_that_may_follow_no_where_is_refused() -> None:
    problem = grown("SELECT id FROM users", " WHERE email = %s", " AND name = %s")
    assert "`AND name = %s`" in problem
    assert "no WHERE" in problem


def test_base_ending_in_where_is_refused() -> None:
    assert "ends with `WHERE`" in grown("SELECT id FROM users WHERE", " AND email = %s")


def test_where_after_a_where_clause_is_refused() -> None:
    assert "`WHERE id = 1`" in grown("SELECT id FROM users WHERE 1=1", " WHERE id = 1")


def test_clause_out_of_order_is_refused() -> None:
    assert "puts `WHERE`" in grown("SELECT id FROM users", " ORDER BY id", " WHERE id = 1")


@pytest.mark.parametrize(
    "fragment",
    [", email", " UNION SELECT 2", " JOIN profiles p ON p.id = id", " FROM profiles", "; DROP"],
)
def test_fragment_that_could_change_the_select_list_is_refused(fragment: str) -> None:
    problem = grown("SELECT id FROM users WHERE 1=1", fragment)
    assert isinstance(problem, str)
    assert fragment.strip()[:8] in problem


def test_top_level_union_inside_a_condition_fragment_is_refused() -> None:
    assert "`UNION`" in grown("SELECT id FROM users WHERE 1=1", " AND 1=1 UNION SELECT 2")


def test_subquery_and_is_distinct_from_inside_a_condition_are_fine() -> None:
    fragments = (" AND id IN (SELECT user_id FROM profiles)", " AND name IS DISTINCT FROM %s")
    assert grown("SELECT id FROM users WHERE 1=1", *fragments) == ["id"]


def test_group_by_and_having_keep_the_names() -> None:
    base = "SELECT name, COUNT(*) AS n FROM users WHERE 1=1"
    fragments = (" GROUP BY name", " HAVING COUNT(*) > %s", " AND name <> ''")
    assert grown(base, *fragments, always=(0, 1)) == ["name", "n"]


def test_and_after_optional_having_is_refused() -> None:
    base = "SELECT name FROM users"
    assert "no WHERE or HAVING" in grown(base, " GROUP BY name", " HAVING 1=1", " AND 2=2")


def test_fragment_glued_to_the_base_is_refused() -> None:
    assert "without a space" in grown("SELECT id FROM users WHERE 1=1", "AND id = 1")


def test_fragment_glued_to_a_base_ending_in_space_is_fine() -> None:
    assert grown("SELECT id FROM users WHERE 1=1 ", "AND id = 1") == ["id"]


def test_line_comment_that_would_swallow_later_fragments_is_refused() -> None:
    base = "SELECT id FROM users WHERE 1=1"
    assert "line comment" in grown(base, " AND id = 1 -- mine", " ORDER BY id")


def test_unbalanced_fragment_is_refused() -> None:
    assert "does not tokenize" in grown("SELECT id FROM users WHERE 1=1", " AND (id = 1")


def test_fragment_ending_in_and_is_refused() -> None:
    assert "ends with `AND`" in grown("SELECT id FROM users WHERE 1=1", " AND id = 1 AND")


def test_base_without_known_columns_gives_its_problem() -> None:
    assert "no CREATE TABLE" in grown("SELECT * FROM nowhere WHERE 1=1", " AND x = 1")


# fix_sql


def test_count_star_gets_the_name_postgres_gives_it() -> None:
    assert fixed("SELECT COUNT(*) FROM users") == "SELECT COUNT(*) AS count FROM users"


def test_function_gets_its_name_and_argument() -> None:
    assert (
        fixed("SELECT lower(email) FROM users") == "SELECT lower(email) AS lower_email FROM users"
    )


def test_count_of_a_column_is_a_count_and_a_second_one_says_of_what() -> None:
    assert fixed("SELECT COUNT(j.id), COUNT(DISTINCT j.title) FROM jobs j") == (
        "SELECT COUNT(j.id) AS count, COUNT(DISTINCT j.title) AS count_title FROM jobs j"
    )


def test_literal_and_parenthesised_column_are_named() -> None:
    assert fixed("SELECT 1, (u.email) FROM users u") == (
        "SELECT 1 AS value, (u.email) AS email FROM users u"
    )


def test_comments_spacing_case_and_placeholders_are_kept() -> None:
    sql = "select count(*) /* all */ ,\n  u.name  FROM users u -- who\nWHERE u.id = %s AND x = ?"
    assert fixed(sql) == (
        "select count(*) AS count /* all */ ,\n  u.name  FROM users u -- who\n"
        "WHERE u.id = %s AND x = ?"
    )


def test_second_duplicate_is_named_after_its_table() -> None:
    sql = f"SELECT j.id, j.title, c.id, c.name {JOBS}"
    assert fixed(sql) == f"SELECT j.id, j.title, c.id AS company_profiles_id, c.name {JOBS}"


def test_duplicate_of_a_star_column_is_the_one_renamed() -> None:
    sql = "SELECT u.*, p.id FROM users u JOIN profiles p ON p.user_id = u.id"
    fix = fix_sql(sql, SCHEMA)
    assert fix is not None
    assert (
        fix.sql
        == "SELECT u.*, p.id AS profiles_id FROM users u JOIN profiles p ON p.user_id = u.id"
    )
    assert dict(fix.names) == {3: "profiles_id"}


def test_duplicates_inside_a_star_cannot_be_fixed() -> None:
    assert fixed("SELECT * FROM users u JOIN profiles p ON p.user_id = u.id") is None


def test_new_names_never_clash_with_other_columns() -> None:
    sql = "SELECT COUNT(*), COUNT(email), name AS count_email FROM users"
    assert fixed(sql) == (
        "SELECT COUNT(*) AS count, COUNT(email) AS count_2, name AS count_email FROM users"
    )


def test_mixed_case_alias_is_lowercased_in_place() -> None:
    assert fixed("SELECT name AS userName FROM users") == "SELECT name AS username FROM users"


def test_reference_to_a_mixed_case_column_gets_a_lowercase_alias() -> None:
    assert fixed("SELECT userName FROM accounts") == "SELECT userName AS username FROM accounts"


def test_keyword_names_get_a_suffix_sqlite_accepts() -> None:
    assert fixed("SELECT 'order' FROM users") == "SELECT 'order' AS order_value FROM users"


def test_returning_list_is_fixed() -> None:
    sql = "INSERT INTO users (email) VALUES (%s) RETURNING id, lower(email)"
    assert (
        fixed(sql)
        == "INSERT INTO users (email) VALUES (%s) RETURNING id, lower(email) AS lower_email"
    )


def test_distinct_on_and_is_distinct_from_stay_out_of_the_select_list_spans() -> None:
    sql = "SELECT DISTINCT ON (name) COUNT(*), name IS DISTINCT FROM email FROM users GROUP BY name"
    assert fixed(sql) == (
        "SELECT DISTINCT ON (name) COUNT(*) AS count, name IS DISTINCT FROM email AS name_email "
        "FROM users GROUP BY name"
    )


def test_positions_limit_the_edits() -> None:
    assert fixed("SELECT COUNT(*), lower(email) FROM users", positions=[1]) == (
        "SELECT COUNT(*), lower(email) AS lower_email FROM users"
    )


def test_position_read_among_duplicates_is_the_one_renamed() -> None:
    assert (
        fixed(f"SELECT j.id, c.id {JOBS}", positions=[0]) == f"SELECT j.id AS jobs_id, c.id {JOBS}"
    )


def test_alias_for_a_limited_position_avoids_the_postgres_name_of_the_others() -> None:
    sql = "SELECT COUNT(*), COUNT(email) FROM users"
    assert fixed(sql, positions=[1]) == "SELECT COUNT(*), COUNT(email) AS count_email FROM users"
    assert fixed("SELECT lower(name), max(id) AS lower_name FROM users", positions=[0]) == (
        "SELECT lower(name) AS lower_name_2, max(id) AS lower_name FROM users"
    )


def test_duplicates_the_code_does_not_read_are_left_alone() -> None:
    assert fixed(f"SELECT j.id, c.id, COUNT(*) {JOBS}", positions=[2]) == (
        f"SELECT j.id, c.id, COUNT(*) AS count {JOBS}"
    )


def test_duplicate_read_inside_a_star_with_the_other_not_read_gives_no_fix() -> None:
    assert fixed("SELECT u.*, p.id FROM users u JOIN profiles p ON p.user_id = u.id", [0]) is None


def test_position_out_of_range_gives_no_fix() -> None:
    assert fixed("SELECT id FROM users", positions=[3]) is None


def test_statement_without_rows_gives_no_fix() -> None:
    assert fixed("UPDATE users SET name = %s") is None


FIXABLE = [
    "SELECT COUNT(*) FROM users",
    "SELECT COUNT(*) /* all */, lower(email) , 1, (u.email), u.name FROM users u GROUP BY u.id",
    f"SELECT j.id, j.title, c.id, c.name {JOBS}",
    "SELECT u.*, p.id, COUNT(*) OVER () FROM users u JOIN profiles p ON p.user_id = u.id",
    "SELECT COUNT(*), COUNT(DISTINCT email), MAX(id), 'x', 2 + 3 FROM users",
    "SELECT id AS accountId, userName, id AS ID FROM accounts",
    "SELECT 'order', CASE WHEN id > 1 THEN 'big' ELSE 'small' END, CAST(id AS TEXT) FROM users",
    "WITH t AS (SELECT id, email FROM users) SELECT t.id, upper(t.email) FROM t",
    "SELECT id, lower(name) FROM users UNION SELECT id, bio FROM profiles",
]


@pytest.mark.parametrize("sql", FIXABLE)
def test_fixing_a_fixed_sql_changes_nothing(sql: str) -> None:
    once = fix_sql(sql, SCHEMA)
    assert once is not None
    assert once.sql != sql
    again = fix_sql(once.sql, SCHEMA)
    assert again is not None
    assert (again.sql, dict(again.names)) == (once.sql, {})


@pytest.mark.parametrize("sql", FIXABLE)
def test_every_column_of_a_fixed_sql_is_named_once(sql: str) -> None:
    fix = fix_sql(sql, SCHEMA)
    assert fix is not None and fix.columns.columns is not None
    names = [column.name for column in fix.columns.columns]
    assert None not in names
    assert len({name.lower() for name in names if name}) == len(names)


def reported_names_are_proven(cursor: Any) -> None:
    """Each fixed query runs and the driver reports exactly the names proven for it."""
    for statement in DDL:
        cursor.execute(statement)
    for sql in FIXABLE:
        fix = fix_sql(sql, SCHEMA)
        assert fix is not None and fix.columns.columns is not None
        cursor.execute(fix.sql)
        reported = [d[0] for d in cursor.description]
        assert reported == [column.name for column in fix.columns.columns], fix.sql


def test_fixed_names_are_what_sqlite3_reports() -> None:
    reported_names_are_proven(sqlite3.connect(":memory:").cursor())


@pytest.mark.postgres
def test_fixed_names_are_what_psycopg2_reports(postgres_url: str) -> None:
    connection = psycopg2.connect(postgres_url)
    try:
        reported_names_are_proven(connection.cursor())
    finally:
        connection.rollback()
        connection.close()


GROWN = [
    ("SELECT id, email FROM users WHERE 1=1", [" AND email = 'a'", " ORDER BY id", " LIMIT 5"]),
    ("SELECT name, COUNT(*) AS n FROM users", [" WHERE id > 0", " GROUP BY name", " HAVING 1=1"]),
]


def grown_sql_runs_with_the_proven_names(cursor: Any) -> None:
    for statement in DDL:
        cursor.execute(statement)
    for base, fragments in GROWN:
        columns = grown_columns(base, fragments, SCHEMA, always=range(len(fragments))).columns
        assert columns is not None
        cursor.execute(base + "".join(fragments))
        assert [d[0] for d in cursor.description] == [column.name for column in columns]


def test_grown_sql_runs_on_sqlite3_with_the_proven_names() -> None:
    grown_sql_runs_with_the_proven_names(sqlite3.connect(":memory:").cursor())


@pytest.mark.postgres
def test_grown_sql_runs_on_psycopg2_with_the_proven_names(postgres_url: str) -> None:
    connection = psycopg2.connect(postgres_url)
    try:
        grown_sql_runs_with_the_proven_names(connection.cursor())
    finally:
        connection.rollback()
        connection.close()


# python_literal


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('"SELECT COUNT(*) FROM t"', '"SELECT COUNT(*) AS count FROM t"'),
        ("'SELECT COUNT(*) FROM t'", "'SELECT COUNT(*) AS count FROM t'"),
        ('r"SELECT COUNT(*) FROM t"', 'r"SELECT COUNT(*) AS count FROM t"'),
        ('"""\n  SELECT COUNT(*)\n  FROM t"""', '"""\n  SELECT COUNT(*) AS count\n  FROM t"""'),
        ('"SELECT COUNT(*)\\n  FROM t"', '"SELECT COUNT(*) AS count\\n  FROM t"'),
        ('"SELECT COUNT(*) "  # n\n    "FROM t"', '"SELECT COUNT(*) AS count "  # n\n    "FROM t"'),
    ],
    ids=["double", "single", "raw", "triple", "escape", "concatenated"],
)
def test_literal_is_edited_where_the_sql_changed(source: str, expected: str) -> None:
    new_sql = ast.literal_eval(f"({expected})")
    assert python_literal(source, new_sql) == expected


@pytest.mark.parametrize(
    "source", ['f"SELECT COUNT(*) FROM {t}"', 'b"SELECT COUNT(*) FROM t"', "name", '"a" + "b"']
)
def test_literal_that_cannot_be_edited_safely_gives_none(source: str) -> None:
    assert python_literal(source, "SELECT COUNT(*) AS count FROM t") is None


def test_quote_in_the_new_text_is_escaped_for_the_literal() -> None:
    edited = python_literal("'SELECT 1'", 'SELECT 1 AS "it\'s"')
    assert edited is not None
    assert ast.literal_eval(edited) == 'SELECT 1 AS "it\'s"'
    assert edited.startswith("'")


def test_raw_literal_that_cannot_hold_a_backslash_gives_none() -> None:
    assert python_literal("r'SELECT 1'", "SELECT '\\' AS slash") is None


def test_fixed_sql_round_trips_through_the_literal() -> None:
    source = '"SELECT lower(email), COUNT(*) FROM users"'
    fix = fix_sql(ast.literal_eval(source), SCHEMA)
    assert fix is not None
    edited = python_literal(source, fix.sql)
    assert edited == '"SELECT lower(email) AS lower_email, COUNT(*) AS count FROM users"'
    assert output_columns(ast.literal_eval(edited), SCHEMA) == fix.columns
