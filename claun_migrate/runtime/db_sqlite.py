"""SQLite for development: one connection per Flask request, and ``%s`` SQL that runs on it.

``get_db(path)`` keeps one connection per database file on ``flask.g``; ``init_app(app)``
closes it when the app context ends. Code written for connect-per-call still calls
``close()`` (or ``release_db``) after each statement: on a request's connection that only
rolls back what was not committed, exactly what closing did, and the connection stays open
for the next call. Outside an app context (scripts) ``get_db`` opens a short-lived connection.

``to_qmark(sql)`` rewrites psycopg2 placeholders for sqlite3 with a small tokenizer, so
``%s`` inside string literals, quoted identifiers and comments is left alone.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from typing import Any

from .db_rows import sqlite_row_factory

_G_KEY = "_claun_sqlite_connections"


class RequestConnection(sqlite3.Connection):
    """A request's connection: ``close()`` rolls back until the app context tears down."""

    def close(self) -> None:
        if self.in_transaction:
            self.rollback()

    def close_for_real(self) -> None:
        """Close the connection; uncommitted work is discarded."""
        sqlite3.Connection.close(self)


def _connect(path: str, factory: type[sqlite3.Connection]) -> sqlite3.Connection:
    conn = sqlite3.connect(path, factory=factory)
    conn.row_factory = sqlite_row_factory
    return conn


def get_db(path: str) -> sqlite3.Connection:
    """The current request's connection to ``path``; a new short-lived one outside a request."""
    try:
        from flask import g, has_app_context
    except ImportError:  # no Flask: always short-lived
        return _connect(path, sqlite3.Connection)
    if not has_app_context():
        return _connect(path, sqlite3.Connection)
    conns: dict[str, RequestConnection] = g.setdefault(_G_KEY, {})
    conn = conns.get(path)
    if conn is None:
        conn = conns[path] = _connect(path, RequestConnection)
    return conn


def release_db(conn: sqlite3.Connection) -> None:
    """End one call's use of ``conn``: roll back uncommitted work; close short-lived ones."""
    conn.close()


def close_db(exc: BaseException | None = None) -> None:
    """Close the app context's connections (registered by ``init_app``)."""
    from flask import g

    for conn in g.pop(_G_KEY, {}).values():
        conn.close_for_real()


def init_app(app: Any) -> None:
    """Close request connections when each app context ends; calling it twice is harmless."""
    if close_db not in app.teardown_appcontext_funcs:
        app.teardown_appcontext(close_db)


_TOKENS = re.compile(
    r"""
    (?P<skip>
        \b[eE]'(?:[^'\\]|\\.|'')*'?       # E'...' string with backslash escapes
      | '(?:[^']|'')*'?                   # '...' string
      | "(?:[^"]|"")*"?                   # "quoted identifier"
      | --[^\n]*                          # line comment
      | /\*.*?(?:\*/|\Z)                  # block comment (not nested, as in SQLite)
      | (?<![\w$])(?P<tag>\$(?:[A-Za-z_]\w*)?\$).*?(?:(?P=tag)|\Z)  # $tag$ string $tag$
    )
    | %\((?P<name>\w+)\)s | %s | %%
    """,
    re.VERBOSE | re.DOTALL,
)


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
    """``sql`` written for psycopg2 (``%s``, ``%(name)s``) rewritten for sqlite3 (``?``, ``:name``).

    ``%%`` becomes ``%`` everywhere, as psycopg2 does whenever parameters are passed (the
    migrated ``execute_sql`` always passes them); other ``%`` signs in literals stay as they are.
    """
    return _TOKENS.sub(_replace, sql)
