"""Row: a tuple that also answers by column name, from psycopg2 and from sqlite3."""

from __future__ import annotations

import copy
import gc
import json
import pickle
import sqlite3
from collections.abc import Callable, Iterator

import flask
import psycopg2
import pytest

from claun_migrate.runtime.db_rows import Row, RowCursor, sqlite_row_factory

QUERY = "SELECT 7 AS id, 'ann@example.com' AS email, 'Ann' AS name"
DUPLICATES = "SELECT 1 AS id, 2 AS id, 'x' AS name"


@pytest.fixture
def sqlite_fetch(tmp_path) -> Iterator[Callable[[str], list]]:
    conn = sqlite3.connect(tmp_path / "rows.db")
    conn.row_factory = sqlite_row_factory
    yield lambda sql: conn.execute(sql).fetchall()
    conn.close()


@pytest.fixture
def pg_conn(postgres_url: str) -> Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect(postgres_url, cursor_factory=RowCursor)
    yield conn
    conn.close()


@pytest.fixture
def postgres_fetch(pg_conn) -> Callable[[str], list]:
    def fetch(sql: str) -> list:
        with pg_conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()

    return fetch


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fetch(request) -> Callable[[str], list]:
    return request.getfixturevalue(f"{request.param}_fetch")


def test_row_reads_by_position_and_by_name(fetch):
    (row,) = fetch(QUERY)
    assert isinstance(row, Row)
    assert (row[0], row[-1], row[1:]) == (7, "Ann", ("ann@example.com", "Ann"))
    assert (row["id"], row["email"], row["name"]) == (7, "ann@example.com", "Ann")


def test_row_unpacks_and_equals_the_tuple_it_replaces(fetch):
    (row,) = fetch(QUERY)
    user_id, email, name = row
    assert (user_id, email, name) == (7, "ann@example.com", "Ann")
    assert row == (7, "ann@example.com", "Ann") and hash(row) == hash(tuple(row))
    assert len(row) == 3 and bool(row)


def test_row_serialises_to_the_same_json_array_as_the_tuple(fetch):
    (row,) = fetch(QUERY)
    assert json.dumps(row) == json.dumps(tuple(row)) == '[7, "ann@example.com", "Ann"]'
    with flask.Flask(__name__).app_context():
        as_tuple = flask.jsonify({"profile": tuple(row)}).get_data()
        assert flask.jsonify({"profile": row}).get_data() == as_tuple
        assert flask.json.loads(as_tuple) == {"profile": [7, "ann@example.com", "Ann"]}


def test_dict_of_a_row_maps_names_to_values(fetch):
    (row,) = fetch(QUERY)
    assert row.keys() == ("id", "email", "name")
    assert dict(row) == {"id": 7, "email": "ann@example.com", "name": "Ann"}


def test_unknown_name_raises_key_error_listing_the_columns(fetch):
    (row,) = fetch(QUERY)
    with pytest.raises(KeyError, match="no column 'mail'.*'email'"):
        row["mail"]


def test_duplicate_names_are_reachable_by_position_only(fetch):
    (row,) = fetch(DUPLICATES)
    assert row == (1, 2, "x") and row["name"] == "x"
    with pytest.raises(KeyError, match="'id' appears more than once"):
        row["id"]
    with pytest.raises(KeyError, match="'id' appears more than once"):
        dict(row)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_rows_pickle_with_their_names(fetch, protocol):
    rows = fetch(QUERY + " UNION ALL SELECT 8, 'bo@example.com', 'Bo'")
    loaded = pickle.loads(pickle.dumps(rows, protocol))
    assert loaded == rows and [type(row) for row in loaded] == [type(row) for row in rows]
    assert [row["email"] for row in loaded] == ["ann@example.com", "bo@example.com"]
    assert dict(loaded[0]) == {"id": 7, "email": "ann@example.com", "name": "Ann"}


def test_rows_copy_and_deepcopy_keep_their_names(fetch):
    (row,) = fetch(DUPLICATES)
    for clone in (copy.copy(row), copy.deepcopy(row)):
        assert clone == (1, 2, "x") and clone["name"] == "x" and type(clone) is type(row)
        with pytest.raises(KeyError, match="'id' appears more than once"):
            clone["id"]


def test_a_bare_row_pickles_too():
    row = Row((1, "a"))
    assert pickle.loads(pickle.dumps(row)) == (1, "a")
    assert type(pickle.loads(pickle.dumps(row))) is Row


def test_rows_of_one_query_share_one_class(fetch):
    rows = fetch("SELECT 1 AS a UNION ALL SELECT 2")
    assert type(rows[0]) is type(rows[1])
    assert [row["a"] for row in rows] == [1, 2]


def test_empty_result_is_an_empty_list(fetch):
    assert fetch("SELECT 1 AS a WHERE 1 = 0") == []


@pytest.mark.postgres
def test_every_psycopg2_fetch_method_returns_rows(pg_conn):
    with pg_conn.cursor() as cur:
        cur.execute("SELECT g AS n FROM generate_series(1, 5) AS g")
        one = cur.fetchone()
        many = cur.fetchmany(2)
        rest = list(cur)
        assert cur.fetchone() is None and cur.fetchall() == []
    assert [row["n"] for row in [one, *many, *rest]] == [1, 2, 3, 4, 5]
    assert all(isinstance(row, Row) for row in [one, *many, *rest])


@pytest.mark.postgres
@pytest.mark.parametrize("enabled", [True, False])
def test_a_big_fetch_leaves_garbage_collection_as_it_was(pg_conn, enabled):
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with pg_conn.cursor() as cur:
            cur.execute("SELECT g AS n FROM generate_series(1, 5000) AS g")
            rows = cur.fetchall()
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
    assert len(rows) == 5000 and rows[-1]["n"] == 5000
