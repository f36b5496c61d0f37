"""connect-per-call -> pool: ``get_db_connection`` takes connections from the shipped pool.

Finds the data-layer module by content (``get_db_connection`` calling ``psycopg2.connect``
and/or ``sqlite3.connect``, and ``execute_sql`` closing that connection in ``finally``), then:

- ``psycopg2.connect(DSN)`` -> ``get_pool(DSN, cursor_factory=RowCursor).getconn()``;
- ``sqlite3.connect(PATH)`` -> ``get_db(PATH)`` (the request's connection);
- ``conn.close()`` in ``execute_sql``'s ``finally`` -> ``putconn``/``release_db``;
- the SQL passed to ``cursor.execute`` -> ``to_qmark(sql)`` on SQLite, so ``%s`` SQL runs there.

``execute_sql`` keeps its signature, per-call commit and error handling. The runtime modules
are copied beside the data layer with a version header; other callers of
``get_db_connection()`` are reported, since their connections must now be given back (POOL001).

Only ``psycopg2.connect(DSN)`` with one positional DSN (keyword options after it are kept) and
``sqlite3.connect(PATH)`` alone are taken over; a layer connecting otherwise, or whose
PostgreSQL and SQLite branches cannot be told apart, is left as it is and reported (POOL002).
``detect_layer`` and ``rows_are_shipped`` let other codemods (named-rows) ask the same question.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import PositionProvider

from claun_migrate.codemods import _support as support

RUNTIME_FILES = ("db_pool.py", "db_rows.py", "db_sqlite.py")
PG_CONNECT = m.Call(func=m.Attribute(value=m.Name("psycopg2"), attr=m.Name("connect")))
SQLITE_CONNECT = m.Call(func=m.Attribute(value=m.Name("sqlite3"), attr=m.Name("connect")))
GET_CONN = m.Call(func=m.Name("get_db_connection"))
EXECUTE = m.Call(func=m.Attribute(attr=m.Name("execute") | m.Name("executemany")))


def runtime_copies() -> dict[str, str]:
    """The shipped runtime modules, stamped with the claun-migrate version."""
    from claun_migrate import __version__

    folder = resources.files("claun_migrate.runtime")
    return {
        name: support.stamp(name, __version__, folder.joinpath(name).read_text("utf-8"))
        for name in RUNTIME_FILES
    }


def _function(module: cst.Module, name: str) -> cst.FunctionDef | None:
    return next(
        (s for s in module.body if isinstance(s, cst.FunctionDef) and s.name.value == name), None
    )


def _connect_branch(function: cst.FunctionDef, call: m.Call) -> cst.BaseExpression | None:
    """The ``if`` test under which ``function`` makes ``call`` (negated for the else branch)."""
    for node in m.findall(function, m.If()):
        assert isinstance(node, cst.If)
        if m.findall(node.body, call):
            return node.test
        if node.orelse is not None and m.findall(node.orelse, call):
            return cst.UnaryOperation(cst.Not(), cst.parse_expression(f"({_code(node.test)})"))
    return None


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def _single_positional(call: cst.Call) -> bool:
    """``f(x)`` or ``f(x, key=value, ...)``: exactly one positional argument, first, no stars."""
    positional = [a for a in call.args if a.keyword is None]
    return (
        len(positional) == 1
        and call.args[0] is positional[0]
        and all(a.star == "" for a in call.args)
    )


@dataclass(frozen=True)
class Layer:
    """What this codemod makes of a module.

    ``state`` is ``"legacy"`` (a connect-per-call layer it migrates), ``"migrated"`` (it imports
    the shipped pool: only the runtime copies are refreshed), ``"blocked"`` (a data layer it
    cannot migrate: ``problem`` says why, reported as POOL002) or ``""`` (not a data layer).
    """

    state: str = ""
    conn: str = "conn"
    pg_dsn: str | None = None
    pg_test: str | None = None
    sqlite: bool = False
    problem: tuple[cst.CSTNode, str, str] | None = None


def detect_layer(module: cst.Module) -> Layer:
    """Recognise the data layer by content: ``get_db_connection`` calling ``psycopg2.connect``
    and/or ``sqlite3.connect``, and ``execute_sql`` closing that connection in ``finally``."""
    get_conn, execute = _function(module, "get_db_connection"), _function(module, "execute_sql")
    if get_conn is None or execute is None:
        return Layer()
    if m.findall(module, m.ImportFrom(module=m.Name("db_pool"))):
        return Layer("migrated")
    pg, sqlite = m.findall(get_conn, PG_CONNECT), m.findall(get_conn, SQLITE_CONNECT)
    if not (pg or sqlite):
        return Layer()
    assigned = m.findall(execute, m.Assign(value=GET_CONN))
    if not assigned:
        return Layer()
    target = assigned[0].targets[0].target  # type: ignore[attr-defined]
    conn = target.value if isinstance(target, cst.Name) else "conn"
    close = m.SimpleStatementLine([m.Expr(m.Call(m.Attribute(m.Name(conn), m.Name("close"))))])
    if not m.findall(execute, m.Finally(m.IndentedBlock([m.ZeroOrMore(), close, m.ZeroOrMore()]))):
        return Layer()
    for call in pg:
        assert isinstance(call, cst.Call)
        if not _single_positional(call):
            message = (
                f"`{_code(call)}` has no single positional DSN for the pool to take over: "
                "the data layer is left as it is"
            )
            hint = (
                "build one DSN string and call psycopg2.connect(DSN) (other options as keyword "
                "arguments after it), then run again"
            )
            return Layer("blocked", problem=(call, message, hint))
    for call in sqlite:
        assert isinstance(call, cst.Call)
        if len(call.args) != 1 or not _single_positional(call):
            message = (
                f"`{_code(call)}` passes more than the database path; the per-request "
                "connection (db_sqlite.get_db) takes only the database path: the data layer "
                "is left as it is"
            )
            hint = "call sqlite3.connect(PATH) (set options on the connection), then run again"
            return Layer("blocked", problem=(call, message, hint))
    pg_dsn = pg_test = None
    if pg:
        pg_dsn = _code(pg[0].args[0].value)  # type: ignore[attr-defined]
        test = _connect_branch(get_conn, PG_CONNECT)
        if sqlite and test is None:
            message = "cannot tell PostgreSQL from SQLite here: the data layer is left as it is"
            hint = "connect in the two branches of one `if`: `if DATABASE_URL: ... else: ...`"
            return Layer("blocked", problem=(get_conn, message, hint))
        pg_test = _code(test) if test is not None and sqlite else None
    return Layer("legacy", conn, pg_dsn, pg_test, bool(sqlite))


def runtime_copies_blocked(layer_path: str) -> list[str]:
    """The runtime copies beside ``layer_path`` that cannot be written: edited by hand since
    claun-migrate generated them, or files of the same name that are not ours."""
    folder = Path(layer_path).parent
    blocked = []
    for name, text in runtime_copies().items():
        try:
            existing = (folder / name).read_bytes().decode("utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError):
            blocked.append(name)
            continue
        if existing != text and not support.is_pristine(existing):
            blocked.append(name)
    return blocked


_ROW_IMPORT = m.ImportFrom(module=m.Name("db_rows") | m.Attribute(attr=m.Name("db_rows")))
_SQLITE_IMPORT = m.ImportFrom(module=m.Name("db_sqlite") | m.Attribute(attr=m.Name("db_sqlite")))


def rows_are_shipped(path: str, text: str, *, pending: bool = True) -> bool:
    """Whether the ``execute_sql`` defined in ``text`` returns the shipped ``Row``.

    True for a layer already migrated (it imports ``db_rows``/``RowCursor``, or it is a
    SQLite-only layer on ``db_sqlite``) and, with ``pending``, for a legacy layer this codemod
    migrates in the same run (its runtime copies beside ``path`` can be written).
    """
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError:
        return False
    if m.findall(module, _ROW_IMPORT):
        return True
    if m.findall(module, _SQLITE_IMPORT) and "psycopg2" not in text and "db_pool" not in text:
        return True
    return pending and detect_layer(module).state == "legacy" and not runtime_copies_blocked(path)


class PoolConnectionsCommand(VisitorBasedCodemodCommand):
    """Move a connect-per-call ``get_db_connection``/``execute_sql`` pair to the shipped pool."""

    DESCRIPTION = "Take PostgreSQL connections from a pool and SQLite ones per request."
    TRIGGERS = ("get_db_connection",)
    REQUIRES = ("sqlite-per-request",)
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, context: CodemodContext) -> None:
        super().__init__(context)
        self.layer = False
        self.pg_test: str | None = None
        self.pg_dsn: str | None = None
        self.sqlite = False
        self.conn = "conn"
        self.function: str | None = None
        self.blocked = False

    def visit_Module(self, node: cst.Module) -> bool:
        layer = detect_layer(node)
        if layer.problem is not None:
            support.report(self.context, layer.problem[0], "POOL002", *layer.problem[1:])
        self.blocked = layer.state == "blocked"
        self.layer = layer.state in ("legacy", "migrated")
        self.conn, self.pg_dsn, self.pg_test = layer.conn, layer.pg_dsn, layer.pg_test
        self.sqlite = layer.sqlite
        return True

    def _close(self) -> m.SimpleStatementLine:
        close = m.Attribute(m.Name(self.conn), m.Name("close"))
        return m.SimpleStatementLine([m.Expr(m.Call(func=close))])

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if self.function is None:
            self.function = node.name.value

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        if self.function == original_node.name.value:
            self.function = None
        return updated_node

    def visit_Call(self, node: cst.Call) -> None:
        inside = self.function in ("get_db_connection", "execute_sql")
        outside = not inside or not (self.layer or self.blocked)
        if outside and m.matches(node, GET_CONN):
            support.report(
                self.context,
                node,
                "POOL001",
                "get_db_connection() outside execute_sql: this connection now comes from the "
                "pool and must be given back, not closed",
                "use execute_sql(), or return it with get_pool(DATABASE_URL).putconn(conn) "
                "(release_db(conn) on SQLite) in a finally block",
            )

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if not self.layer or self.pg_dsn is None and not self.sqlite:
            return updated_node
        if self.function == "get_db_connection":
            if m.matches(updated_node, PG_CONNECT):
                AddImportsVisitor.add_needed_import(self.context, "db_pool", "get_pool", relative=1)
                AddImportsVisitor.add_needed_import(
                    self.context, "db_rows", "RowCursor", relative=1
                )
                factory = cst.parse_expression("f(cursor_factory=RowCursor)").args  # type: ignore[attr-defined]
                pool = cst.Call(cst.Name("get_pool"), [*updated_node.args, *factory])
                return cst.Call(cst.Attribute(pool, cst.Name("getconn")))
            if m.matches(updated_node, SQLITE_CONNECT):
                AddImportsVisitor.add_needed_import(self.context, "db_sqlite", "get_db", relative=1)
                return updated_node.with_changes(func=cst.Name("get_db"))
        if self.function == "execute_sql" and m.matches(updated_node, EXECUTE) and self.sqlite:
            sql = updated_node.args[0].value
            if m.matches(sql, m.Call(func=m.Name("to_qmark")) | m.IfExp()):
                return updated_node
            AddImportsVisitor.add_needed_import(self.context, "db_sqlite", "to_qmark", relative=1)
            qmark = f"to_qmark({_code(sql)})"
            new = f"{_code(sql)} if {self.pg_test} else {qmark}" if self.pg_test else qmark
            args = [updated_node.args[0].with_changes(value=cst.parse_expression(new))]
            return updated_node.with_changes(args=[*args, *updated_node.args[1:]])
        return updated_node

    def leave_Try(self, original_node: cst.Try, updated_node: cst.Try) -> cst.Try:
        """Fetch before committing: SQLite refuses to commit while ``RETURNING`` rows are unread."""
        if self.function != "execute_sql" or not self.sqlite:
            return updated_node
        commit = m.Call(func=m.Attribute(m.Name(self.conn), m.Name("commit")))
        commit_if = m.If(body=m.IndentedBlock([m.SimpleStatementLine([m.Expr(commit)])]))
        fetchall = m.Call(func=m.Attribute(m.Name(), m.Name("fetchall")), args=[])
        fetch_if = m.If(
            test=m.Name(), body=m.IndentedBlock([m.SimpleStatementLine([m.Return(fetchall)])])
        )
        body = list(updated_node.body.body)
        commits = [i for i, s in enumerate(body) if m.matches(s, commit_if)]
        fetches = [i for i, s in enumerate(body) if m.matches(s, fetch_if)]
        if not commits or not fetches or commits[0] > fetches[0]:
            return updated_node
        first, last = commits[0], fetches[0]
        fetch = body[last]
        assert isinstance(fetch, cst.If) and isinstance(fetch.body, cst.IndentedBlock)
        read = _code(fetch.body.body[0].body[0].value)  # type: ignore[attr-defined]
        rows = cst.parse_statement(f"rows = {read} if {_code(fetch.test)} else None")
        body[last] = fetch.with_deep_changes(fetch.body.body[0].body[0], value=cst.Name("rows"))
        body.insert(first, rows.with_changes(leading_lines=body[first].leading_lines))
        body[first + 1] = body[first + 1].with_changes(leading_lines=())
        return updated_node.with_changes(body=updated_node.body.with_changes(body=body))

    def leave_Finally(self, original_node: cst.Finally, updated_node: cst.Finally) -> cst.Finally:
        if self.function != "execute_sql" or not (self.pg_dsn or self.sqlite):
            return updated_node
        putconn = f"get_pool({self.pg_dsn}).putconn({self.conn})"
        release = f"release_db({self.conn})"
        if self.pg_dsn and self.sqlite:
            code = f"if {self.pg_test}:\n    {putconn}\nelse:\n    {release}\n"
        else:
            code = putconn if self.pg_dsn else release
        if self.sqlite:
            AddImportsVisitor.add_needed_import(self.context, "db_sqlite", "release_db", relative=1)
        if self.pg_dsn:
            AddImportsVisitor.add_needed_import(self.context, "db_pool", "get_pool", relative=1)
        body = [
            cst.parse_statement(code) if m.matches(s, self._close()) else s
            for s in updated_node.body.body
        ]
        return updated_node.with_changes(body=updated_node.body.with_changes(body=body))

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if self.layer:
            for name, text in runtime_copies().items():
                support.add_companion(self.context, name, text)
            support.require(self.context, "psycopg2", "psycopg2-binary")
            support.require(self.context, "flask")
            for path in support.write_companions_if_standalone(self.context):
                self.warn(f"{path} was edited or is not ours: left as is")
        return updated_node
