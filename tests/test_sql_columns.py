"""The column names sqlglot proves are the ones psycopg2 and sqlite3 report."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg2
import pytest

from claun_migrate.codemods._sql import create_tables, output_columns

SCHEMA = {
    "users": ["id", "email", "name"],
    "profiles": ["id", "user_id", "bio"],
}


def names(sql: str) -> list[str | None] | None:
    columns = output_columns(sql, SCHEMA).columns
    return None if columns is None else [column.name for column in columns]


def test_qualified_column_is_named_by_its_column() -> None:
    assert names("SELECT u.email, u.name FROM users u WHERE u.id = %s") == ["email", "name"]


def test_alias_names_the_column() -> None:
    assert names("SELECT COUNT(*) AS n, u.id AS user_id FROM users u") == ["n", "user_id"]


def test_function_without_alias_is_unnamed() -> None:
    assert names("SELECT COUNT(*), lower(name) FROM users") == [None, None]


def test_literal_without_alias_is_unnamed() -> None:
    assert names("SELECT 1 FROM users") == [None]


def test_mixed_case_unquoted_name_is_unnamed_because_postgres_folds_it() -> None:
    assert names("SELECT Email, id AS userId FROM users") == [None, None]


def test_reference_to_a_column_declared_in_mixed_case_is_unnamed() -> None:
    schema = {"t": ["userId", "x"]}
    result = output_columns("SELECT userid, x FROM t", schema).columns
    assert result is not None
    assert [column.name for column in result] == [None, "x"]


def test_quoted_name_keeps_its_case() -> None:
    assert names('SELECT "Email", id AS "userId" FROM users') == ["Email", "userId"]


def test_star_expands_every_from_and_join_table_in_order() -> None:
    assert names("SELECT * FROM users u JOIN profiles p ON p.user_id = u.id") == [
        *SCHEMA["users"],
        *SCHEMA["profiles"],
    ]


def test_qualified_star_expands_only_its_table() -> None:
    sql = "SELECT u.email, u.name, p.* FROM users u JOIN profiles p ON p.user_id = u.id"
    assert names(sql) == ["email", "name", "id", "user_id", "bio"]


def test_star_over_a_table_no_create_table_declares_is_unknown() -> None:
    result = output_columns("SELECT u.id, x.* FROM users u JOIN extra x ON x.id = u.id", SCHEMA)
    assert result.columns is None
    assert "no CREATE TABLE declares" in result.problem


def test_star_over_a_join_with_using_is_unknown() -> None:
    assert names("SELECT * FROM users JOIN profiles USING (id)") is None


def test_star_over_a_subquery_is_unknown() -> None:
    assert names("SELECT * FROM (SELECT id FROM users) t") is None


def test_returning_names_the_returned_columns() -> None:
    assert names("INSERT INTO users (email) VALUES (%s) RETURNING id") == ["id"]


def test_returning_star_expands_the_target_table() -> None:
    assert names("UPDATE users SET name = %s WHERE id = %s RETURNING *") == SCHEMA["users"]


def test_statement_without_rows_has_no_columns() -> None:
    result = output_columns("UPDATE users SET name = %s", SCHEMA)
    assert result.columns is None
    assert "UPDATE" in result.problem


def test_union_takes_the_names_of_its_first_select() -> None:
    assert names("SELECT id FROM users UNION SELECT user_id FROM profiles") == ["id"]


def test_two_statements_are_unknown() -> None:
    assert names("SELECT id FROM users; SELECT id FROM profiles") is None


def test_create_tables_reads_column_names_not_constraints() -> None:
    sql = """CREATE TABLE IF NOT EXISTS jobs (
        id SERIAL PRIMARY KEY, company_id INTEGER REFERENCES users(id), title TEXT NOT NULL,
        FOREIGN KEY (company_id) REFERENCES users (id), UNIQUE (company_id, title))"""
    assert create_tables(sql) == {"jobs": ["id", "company_id", "title"]}


def test_create_tables_reads_sqlite_syntax_and_several_statements() -> None:
    sql = "CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT); CREATE TABLE B (y INT)"
    assert create_tables(sql) == {"a": ["id", "x"], "b": ["y"]}


DDL = [
    "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT)",
    "CREATE TABLE profiles (id INTEGER PRIMARY KEY, user_id INTEGER, bio TEXT, webSite TEXT)",
]
QUERIES = [
    "SELECT u.email, u.name, p.* FROM users u JOIN profiles p ON p.user_id = u.id",
    "SELECT * FROM users u JOIN profiles p ON p.user_id = u.id",
    'SELECT COUNT(*) AS n, u.id AS user_id, "name", (u.email) FROM users u GROUP BY u.id',
    "SELECT id FROM users UNION SELECT user_id FROM profiles",
    "SELECT website, p.bio, p.website AS site FROM profiles p",
]


def proven_names_agree_with(cursor: Any, queries: list[str]) -> None:
    """Each name proven for ``queries`` is unnamed or what the driver's cursor reports."""
    schema: dict[str, list[str]] = {}
    for statement in DDL:
        schema.update(create_tables(statement))
        cursor.execute(statement)
    for sql in queries:
        cursor.execute(sql)
        reported = [d[0] for d in cursor.description]
        columns = output_columns(sql, schema).columns
        assert columns is not None
        proven = [column.name for column in columns]
        assert len(proven) == len(reported)
        for name, actual in zip(proven, reported, strict=True):
            assert name in (None, actual), sql


def test_proven_names_are_what_sqlite3_reports() -> None:
    connection = sqlite3.connect(":memory:")
    proven_names_agree_with(connection.cursor(), QUERIES)


@pytest.mark.postgres
def test_proven_names_are_what_psycopg2_reports(postgres_url: str) -> None:
    connection = psycopg2.connect(postgres_url)
    try:
        proven_names_agree_with(connection.cursor(), QUERIES)
    finally:
        connection.rollback()
        connection.close()
