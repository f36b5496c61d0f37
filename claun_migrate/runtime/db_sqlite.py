"""SQLite for development: one connection per Flask request; ``%s`` SQL runs on it.

``get_db(path)`` keeps one connection per database file on ``flask.g``;
``init_app(app)`` closes it when the app context ends. Code written for connect-per-call
still calls ``close()`` (or ``release_db``) after each statement: on a request's
connection that ends one user's use (each ``get_db`` call is one user) and, when the
last user lets go, rolls back what was not committed, as closing did; the connection
stays open for the next call. So an ``execute_sql`` called between a route's uncommitted
INSERT and its commit does not roll the INSERT back. Outside an app context (scripts)
``get_db`` opens a short-lived connection.

``to_qmark(sql)`` rewrites psycopg2 placeholders for sqlite3 with a small tokenizer, so
``%s`` inside string literals, quoted identifiers and comments is left alone.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from typing import Any

try:
    from .db_rows import sqlite_row_factory
except ImportError:  # copied into a flat app, beside the top-level module db_rows
    from db_rows import sqlite_row_factory  # type: ignore[no-redef]

_G_KEY = "_claun_sqlite_connections"


_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)


class ReturningCursor(sqlite3.Cursor):
    """Reads the rows of ``INSERT/UPDATE/DELETE ... RETURNING`` at once, as psycopg2.

    SQLite refuses to commit while a statement still has rows to give, so the PostgreSQL
    habit of committing before fetching the ``RETURNING`` row would fail without this.
    """

    _buffer: list[Any] | None = None

    def execute(self, sql: str, parameters: Any = ()) -> ReturningCursor:
        super().execute(sql, parameters)
        self._buffer = super().fetchall() if _RETURNING.search(sql) else None
        return self

    def fetchone(self) -> Any:
        if self._buffer is None:
            return super().fetchone()
        return self._buffer.pop(0) if self._buffer else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        if self._buffer is None:
            return super().fetchmany(self.arraysize if size is None else size)
        count = self.arraysize if size is None else size
        rows, self._buffer = self._buffer[:count], self._buffer[count:]
        return rows

    def fetchall(self) -> list[Any]:
        if self._buffer is None:
            return super().fetchall()
        rows, self._buffer = self._buffer, []
        return rows

    def __next__(self) -> Any:
        if self._buffer is None:
            return super().__next__()
        if not self._buffer:
            raise StopIteration
        return self._buffer.pop(0)


class Connection(sqlite3.Connection):
    """A sqlite3 connection whose cursors read ``RETURNING`` rows at once."""

    def cursor(self, factory: Any = ReturningCursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = ()) -> Any:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)


class RequestConnection(Connection):
    """A request's connection, shared by its ``get_db`` callers until the context ends.

    ``get_db`` counts a user; ``close()`` (and ``release_db``) drops one and rolls back
    only when none is left, so one caller's release cannot discard another's uncommitted
    work.
    """

    users = 0
    torn_down = False

    def close(self) -> None:
        if self.torn_down:
            return
        if self.users > 0:
            self.users -= 1
        if self.users == 0 and self.in_transaction:
            self.rollback()

    def close_for_real(self) -> None:
        """Roll back uncommitted work and close the connection, whoever uses it."""
        if self.torn_down:
            return
        self.torn_down = True
        try:
            if self.in_transaction:
                self.rollback()
        except sqlite3.Error:
            pass  # closing discards the transaction anyway
        finally:
            sqlite3.Connection.close(self)


def _connect(
    path: str, factory: type[sqlite3.Connection], **options: Any
) -> sqlite3.Connection:
    conn = sqlite3.connect(path, factory=factory, **options)
    conn.row_factory = sqlite_row_factory
    return conn


def get_db(path: str, **options: Any) -> sqlite3.Connection:
    """The current request's connection to ``path`` (one more user); outside a request a
    new short-lived one. Give it back with ``release_db`` (or its ``close()``).
    ``options`` are ``sqlite3.connect``'s (``timeout``, ``detect_types``...), used when
    the connection opens."""
    options.pop("check_same_thread", None)  # a request's connection stays in its thread
    try:
        from flask import g, has_app_context
    except ImportError:  # no Flask: always short-lived
        return _connect(path, Connection, **options)
    if not has_app_context():
        return _connect(path, Connection, **options)
    conns: dict[str, RequestConnection] = g.setdefault(_G_KEY, {})
    conn = conns.get(path)
    if conn is None:
        conn = conns[path] = _connect(path, RequestConnection, **options)
    conn.users += 1
    return conn


def release_db(conn: sqlite3.Connection) -> None:
    """End one call's use of ``conn``: close a short-lived one; on a request's
    connection drop one user and, if it was the last, roll back uncommitted work
    (teardown closes it)."""
    conn.close()


def close_db(exc: BaseException | None = None) -> None:
    """Close the app context's connections (registered by ``init_app``)."""
    from flask import g

    for conn in g.pop(_G_KEY, {}).values():
        conn.close_for_real()


def init_app(app: Any) -> None:
    """Close request connections when each app context ends; twice is harmless."""
    if close_db not in app.teardown_appcontext_funcs:
        app.teardown_appcontext(close_db)


_SKIP = r"""
    (?P<skip>
        \b[eE]'(?:[^'\\]|\\.|'')*'?       # E'...' string with backslash escapes
      | '(?:[^']|'')*'?                   # '...' string
      | "(?:[^"]|"")*"?                   # "quoted identifier"
      | --[^\n]*                          # line comment
      | /\*.*?(?:\*/|\Z)                  # block comment (not nested, as in SQLite)
      | (?<![\w$])(?P<tag>\$(?:[A-Za-z_]\w*)?\$).*?(?:(?P=tag)|\Z)  # $tag$ string $tag$
    )
"""
_TOKENS = re.compile(_SKIP + r"| %\((?P<name>\w+)\)s | %s | %%", re.VERBOSE | re.DOTALL)
_LITERALS = re.compile(_SKIP, re.VERBOSE | re.DOTALL)


def _replace(match: re.Match[str]) -> str:
    text = match.group()
    if match.group("skip") is not None:
        return text.replace("%%", "%")
    if text == "%%":
        return "%"
    name = match.group("name")
    return f":{name}" if name else "?"


@functools.lru_cache(maxsize=1024)
def to_qmark(sql: str) -> str:
    """``sql`` for psycopg2 (``%s``, ``%(name)s``) made sqlite3's (``?``, ``:name``).

    ``%%`` becomes ``%`` everywhere, as psycopg2 does whenever parameters are passed
    (the migrated ``execute_sql`` always passes them); other ``%`` signs in literals
    stay as they are.
    """
    return _TOKENS.sub(_replace, sql)


_SERIAL = re.compile(r"\b(?:BIG|SMALL)?SERIAL\s+PRIMARY\s+KEY\b", re.IGNORECASE)


def _sqlite_ddl(sql: str) -> str:
    literals = [match.span() for match in _LITERALS.finditer(sql)]

    def replace(match: re.Match[str]) -> str:
        inside = any(start <= match.start() < end for start, end in literals)
        return match.group() if inside else "INTEGER PRIMARY KEY AUTOINCREMENT"

    return _SERIAL.sub(replace, sql)


def sql_for(conn: Any, sql: str) -> str:
    """``sql`` written for PostgreSQL, as ``conn`` needs it: unchanged for psycopg2; for
    sqlite3 with ``?`` placeholders (:func:`to_qmark`) and ``SERIAL PRIMARY KEY``
    columns as SQLite's ``INTEGER PRIMARY KEY AUTOINCREMENT`` (string literals and
    comments untouched)."""
    if not isinstance(conn, sqlite3.Connection) or not isinstance(sql, str):
        return sql
    if "SERIAL" in sql.upper():
        sql = _sqlite_ddl(sql)
    return to_qmark(sql)
