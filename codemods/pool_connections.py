"""connect-per-call -> pool: every connection the data-layer model finds is borrowed and given back.

The data-layer model (``data_layer.py``) finds, over the whole run, every function that hands
out new ``psycopg2``/``sqlite3`` connections and every site that opens and releases one; this
codemod makes the edits of its plan:

- ``psycopg2.connect(ARGS)`` -> ``getconn(ARGS, cursor_factory=RowCursor)`` (the process-wide
  pool for those arguments; a ``cursor_factory`` already given is kept);
- ``sqlite3.connect(ARGS)`` -> ``get_db(ARGS)`` (the request's connection; its ``close()`` ends
  one use), and ``conn.row_factory = sqlite3.Row`` goes (the shipped Row answers names too);
- at each site of a PostgreSQL connection, the close that runs on every path becomes
  ``putconn(conn)`` and the others go; where no ``finally`` closes it, the rest of the block is
  wrapped in ``try``/``finally: putconn(conn)``; ``with closing(c)`` becomes ``with
  borrowed(c)`` and ``with c as conn`` becomes ``with borrowed(c) as conn, conn``;
- where one connection may be PostgreSQL or SQLite, ``cursor.execute(sql, ...)`` gets
  ``sql_for(conn, sql)``, so ``%s`` SQL also runs on SQLite.

The runtime modules are copied to one folder (the model's ``home``) and imported from there.
A source whose connections cannot be given back on every path is left as it is: POOL001 at the
site, POOL002 at the source; both make ``check`` fail, since connect-per-call is still there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import PositionProvider

from claun_migrate.codemods import _support as support
from claun_migrate.codemods._imports import without_unused_imports
from claun_migrate.codemods.data_layer import (
    DRIVERS,
    RUNTIME_FILES,
    RUNTIME_MODULES,
    Edit,
    Problem,
    analyse,
)


def runtime_copies() -> dict[str, str]:
    """The shipped runtime modules, stamped with the claun-migrate version."""
    from claun_migrate import __version__

    folder = resources.files("claun_migrate.runtime")
    return {
        name: support.stamp(name, __version__, folder.joinpath(name).read_text("utf-8"))
        for name in RUNTIME_FILES
    }


def ask_for_runtime_copies(context: CodemodContext, home: str) -> None:
    """The file being transformed imports the runtime from ``home``: the copies go there."""
    folder = os.path.dirname(os.path.abspath(context.filename or "."))
    for name, text in runtime_copies().items():
        target = os.path.relpath(os.path.join(os.path.abspath(home), name), folder)
        support.add_companion(context, target, text)


def runtime_import(
    filename: str, home: str, module: str, *, absolute: bool = False
) -> tuple[str, int]:
    """(module path, relative level) that imports runtime ``module`` in ``home`` from
    ``filename``: relative inside the same package tree (absolute from its root with
    ``absolute``, for modules that import their own package that way), else absolute from the
    package root of ``home``."""
    here, there = Path(filename).resolve().parent, Path(home).resolve()
    root = support.package_root(there)
    if support.package_root(here) == root != here and not absolute:
        common = Path(os.path.commonpath([here, there]))
        level = len(here.relative_to(common).parts) + 1
        return ".".join([*there.relative_to(common).parts, module]), level
    return ".".join([*there.relative_to(root).parts, module]), 0


def imports_absolutely(module: cst.Module, home: str) -> bool:
    """Whether ``module`` imports the package holding ``home`` by absolute imports only
    (``from app.services.auth import x``, no ``from .auth import x``): added imports follow."""
    there = Path(home).resolve()
    parts = there.relative_to(support.package_root(there)).parts
    code = cst.Module([]).code_for_node
    absolute = False
    lines = [s for s in module.body if isinstance(s, cst.SimpleStatementLine)]
    for node in (n for line in lines for n in line.body if isinstance(n, cst.ImportFrom)):
        if node.relative:
            return False
        if parts and node.module is not None and code(node.module).split(".")[0] == parts[0]:
            absolute = True
    return absolute


class PoolConnectionsCommand(support.Command):
    """Borrow every connection from the shipped pool (or the request) and give it back."""

    DESCRIPTION = "Take PostgreSQL connections from a pool and SQLite ones per request."
    TRIGGERS = ("psycopg2", "sqlite3", "db_pool", ".close(", "closing(", "connect")
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(
        self,
        context: CodemodContext,
        plan: Mapping[str, Sequence[Edit]] | None = None,
        problems: Mapping[str, Sequence[Problem]] | None = None,
        relies: Mapping[str, Sequence[str]] | None = None,
        home: str | None = None,
    ) -> None:
        super().__init__(context)
        if plan is None:  # alone (libcst's runner): the model of this one file
            filename = context.filename or "module.py"
            text = Path(filename).read_text("utf-8") if os.path.exists(filename) else ""
            model = analyse({filename: text}).as_kwargs()
            plan, problems, relies, home = (
                model["plan"],  # type: ignore[assignment]
                model["problems"],  # type: ignore[assignment]
                model["relies"],  # type: ignore[assignment]
                model["home"],  # type: ignore[assignment]
            )
        filename = context.filename or ""
        self.edits = {(e.at, e.kind): e for e in (plan or {}).get(filename, ())}
        self.problems = tuple((problems or {}).get(filename, ()))
        self.relies = tuple((relies or {}).get(filename, ()))
        self.home = home
        self.dropped: dict[int, cst.SimpleStatementLine] = {}  # kept alive: ids stay unique
        self.used_runtime = False
        self.unused: set[str] = set()  # names an edit may have left unused
        self.drivers: set[str] = set()  # names the module's driver imports bind
        self.absolute = False  # added imports absolute, as the module's own
        self.bound: set[str] = set()

    @classmethod
    def gather(cls, sources: Mapping[str, str]) -> dict[str, object]:
        """The whole run's data-layer model, as plain constructor arguments."""
        return analyse(sources).as_kwargs()

    @classmethod
    def targets(cls, gathered: Mapping[str, object]) -> set[str]:
        """Files to transform whatever words they contain: the model edits or reports them."""
        plan, problems = gathered.get("plan") or {}, gathered.get("problems") or {}
        return set(plan) | set(problems)  # type: ignore[arg-type]

    # helpers

    def _edit(self, node: cst.CSTNode, kind: str) -> Edit | None:
        position = self.get_metadata(PositionProvider, node).start
        return self.edits.get(((position.line, position.column), kind))

    def _runtime(self, module: str, name: str) -> str:
        """Import ``name`` from runtime ``module``; the local name (aliased if the file binds
        ``name`` itself, as a ``get_db`` connector does)."""
        assert self.home is not None
        path, level = runtime_import(
            self.context.filename or ".", self.home, module, absolute=self.absolute
        )
        alias = f"{module}_{name}" if name in self.bound else None
        AddImportsVisitor.add_needed_import(self.context, path, name, alias, relative=level)
        self.used_runtime = True
        return alias or name

    def _drop(self) -> cst.SimpleStatementLine:
        placeholder = cst.SimpleStatementLine([cst.Pass()])
        self.dropped[id(placeholder)] = placeholder
        return placeholder

    # the module

    def skip(self, tree: cst.Module) -> bool:
        """Report the model's problems and reliances; walk only a file the model edits."""
        for problem in self.problems:
            support.report_at(
                self.context,
                *problem.at,
                problem.code,
                problem.message,
                problem.hint,
                pending=problem.pending,
            )
        for path in self.relies:
            support.rely_on(self.context, os.path.abspath(path))
        return not self.edits

    def visit_Module(self, node: cst.Module) -> bool:
        self.bound = _module_names(node)
        self.absolute = self.home is not None and imports_absolutely(node, self.home)
        self.drivers = {
            name
            for statement in node.body
            if isinstance(statement, cst.SimpleStatementLine) and _imports_driver(statement.body[0])
            for name in _bound_names(statement.body[0])
        }
        return True

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        connect = self._edit(original_node, "connect")
        if connect is not None:
            self.unused |= self.drivers | _names(original_node.func)
        if connect is not None and connect.arg == "postgres":
            getconn = self._runtime("db_pool", "getconn")
            args = list(updated_node.args)
            if not any(a.keyword and a.keyword.value == "cursor_factory" for a in args):
                row_cursor = self._runtime("db_rows", "RowCursor")
                if args and args[-1].comma is cst.MaybeSentinel.DEFAULT:
                    args[-1] = args[-1].with_changes(comma=_comma())
                factory = cst.Arg(cst.Name(row_cursor), keyword=cst.Name("cursor_factory"))
                args.append(factory.with_changes(equal=_equal()))
            return updated_node.with_changes(func=cst.Name(getconn), args=args)
        if connect is not None:
            return updated_node.with_changes(func=cst.Name(self._runtime("db_sqlite", "get_db")))
        if self._edit(original_node, "release") is not None:
            conn = updated_node.func.value  # type: ignore[attr-defined]
            return cst.Call(cst.Name(self._runtime("db_pool", "putconn")), [cst.Arg(conn)])
        borrow = self._edit(original_node, "borrow")
        if borrow is not None and borrow.arg == "closing":  # closing(x) -> borrowed(x)
            self.unused |= _names(original_node.func)
            return updated_node.with_changes(func=cst.Name(self._runtime("db_pool", "borrowed")))
        return updated_node

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        rename = self._edit(original_node, "rename")
        return updated_node if rename is None else updated_node.with_changes(value=rename.arg)

    def leave_Arg(self, original_node: cst.Arg, updated_node: cst.Arg) -> cst.Arg:
        sql = self._edit(original_node.value, "sql")
        if sql is None:
            return updated_node
        func = cst.Name(self._runtime("db_sqlite", "sql_for"))
        sql_value = updated_node.value
        breaks = _line_breaks(sql_value)
        if not breaks:
            args = [cst.Arg(cst.Name(sql.arg), comma=_comma()), cst.Arg(sql_value)]
            return updated_node.with_changes(value=cst.Call(func, args))
        # SQL continued over lines: one argument per line, the pieces one level deeper
        outer = breaks[0].last_line.value
        inner = outer + _INDENT
        args = [
            cst.Arg(cst.Name(sql.arg), comma=cst.Comma(whitespace_after=_break(breaks[0], inner))),
            cst.Arg(
                _indented(sql_value), comma=cst.Comma(whitespace_after=_break(breaks[0], outer))
            ),
        ]
        call = cst.Call(func, args, whitespace_before_args=_break(breaks[0], inner))
        return updated_node.with_changes(value=call)

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.With:
        items: list[cst.WithItem] = []
        for original, item in zip(original_node.items, updated_node.items, strict=True):
            borrow = self._edit(original.item, "borrow")
            if borrow is None or borrow.arg != "with" or item.asname is None:
                items.append(item)
                continue
            borrowed = cst.Call(
                cst.Name(self._runtime("db_pool", "borrowed")), [cst.Arg(item.item)]
            )
            conn = item.asname.name
            items += [
                item.with_changes(item=borrowed, comma=_comma()),
                cst.WithItem(conn, comma=item.comma),  # type: ignore[arg-type]
            ]
        return updated_node.with_changes(items=items)

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.BaseStatement:
        first = original_node.body[0]
        if self._edit(first, "row-factory") is not None:
            return self._drop()
        if isinstance(first, cst.Expr) and self._edit(first.value, "drop") is not None:
            self.unused |= _names(first.value)
            return self._drop()
        return updated_node

    def leave_If(self, original_node: cst.If, updated_node: cst.If) -> cst.BaseStatement:
        body = updated_node.body.body
        if (
            updated_node.orelse is None
            and body
            and all(id(statement) in self.dropped for statement in body)
        ):
            return self._drop()  # `if conn: conn.close()` whose close went
        return updated_node

    def leave_IndentedBlock(
        self, original_node: cst.IndentedBlock, updated_node: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body = self._rewrite(original_node.body, updated_node.body)
        return updated_node.with_changes(body=body or [cst.SimpleStatementLine([cst.Pass()])])

    def _rewrite(
        self, original: Sequence[cst.BaseStatement], updated: Sequence[cst.BaseStatement]
    ) -> list[cst.BaseStatement]:
        """``updated`` with each ``wrap`` made and dropped statements gone."""
        body = list(updated)
        for index in reversed(range(len(original))):
            wrap = self._edit(original[index], "wrap")
            if wrap is None:
                continue
            end = len(body)
            if wrap.end is not None:
                end = next(
                    i
                    for i in range(index + 1, len(body))
                    if self._position(original[i]) == wrap.end
                )
            release = cst.parse_statement(f"{self._runtime('db_pool', 'putconn')}({wrap.arg})")
            inner = body[index + 1 : end] or [cst.SimpleStatementLine([cst.Pass()])]
            statement = cst.Try(
                body=cst.IndentedBlock(inner),
                finalbody=cst.Finally(cst.IndentedBlock([release])),
            )
            body[index + 1 : end + (wrap.end is not None)] = [statement]
        return [s for s in body if id(s) not in self.dropped]

    def _position(self, node: cst.CSTNode) -> tuple[int, int]:
        position = self.get_metadata(PositionProvider, node).start
        return position.line, position.column

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if self.edits:
            updated_node = updated_node.with_changes(
                body=self._rewrite(original_node.body, updated_node.body)
            )
        updated_node = without_unused_imports(updated_node, self.unused)
        if self.used_runtime and self.home is not None:
            ask_for_runtime_copies(self.context, self.home)
            support.require(self.context, "psycopg2", "psycopg2-binary")
            support.require(self.context, "flask")
            for path in support.write_companions_if_standalone(self.context):
                self.warn(f"{path} was edited or is not ours: left as is")
        return updated_node


def _names(node: cst.CSTNode) -> set[str]:
    """The names ``node`` reads."""
    return {n.value for n in m.findall(node, m.Name()) if isinstance(n, cst.Name)}


def _bound_names(node: cst.CSTNode) -> set[str]:
    code = cst.Module([]).code_for_node
    assert isinstance(node, cst.Import | cst.ImportFrom)
    if isinstance(node.names, cst.ImportStar):
        return {"*"}
    return {
        code(alias.asname.name) if alias.asname else code(alias.name).split(".")[0]
        for alias in node.names
    }


def _imports_driver(node: cst.CSTNode) -> bool:
    """``import psycopg2``/``import sqlite3 as x``/``from psycopg2 import connect``."""
    code = cst.Module([]).code_for_node
    if isinstance(node, cst.Import):
        return all(code(alias.name) in DRIVERS for alias in node.names)
    if isinstance(node, cst.ImportFrom) and node.module is not None and not node.relative:
        return code(node.module) in DRIVERS
    return False


def _module_names(module: cst.Module) -> set[str]:
    """Names the module binds at its top level, other than by importing our runtime."""
    names: set[str] = set()
    for statement in module.body:
        if isinstance(statement, cst.FunctionDef | cst.ClassDef):
            names.add(statement.name.value)
        elif isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Assign):
                    for target in small.targets:
                        if isinstance(target.target, cst.Name):
                            names.add(target.target.value)
                elif isinstance(small, cst.ImportFrom) and not isinstance(
                    small.names, cst.ImportStar
                ):
                    module_name = cst.Module([]).code_for_node(small.module) if small.module else ""
                    if module_name.rsplit(".", 1)[-1] in RUNTIME_MODULES:
                        continue
                    for alias in small.names:
                        bound = alias.asname.name if alias.asname else alias.name
                        if isinstance(bound, cst.Name):
                            names.add(bound.value)
    return names


_INDENT = "    "


def _line_breaks(node: cst.BaseExpression) -> list[cst.ParenthesizedWhitespace]:
    """The line breaks between the pieces of an implicitly concatenated string."""
    if not isinstance(node, cst.ConcatenatedString):
        return []
    here = node.whitespace_between
    found = [here] if isinstance(here, cst.ParenthesizedWhitespace) else []
    return [*_line_breaks(node.left), *found, *_line_breaks(node.right)]


def _break(like: cst.ParenthesizedWhitespace, last_line: str) -> cst.ParenthesizedWhitespace:
    """A line break as ``like``, continuing at ``last_line`` (a new node)."""
    return cst.ParenthesizedWhitespace(
        first_line=cst.TrailingWhitespace(),
        indent=like.indent,
        last_line=cst.SimpleWhitespace(last_line),
    )


def _indented(node: cst.BaseExpression) -> cst.BaseExpression:
    """``node`` with each line break of its concatenation one level deeper."""
    if not isinstance(node, cst.ConcatenatedString):
        return node
    between = node.whitespace_between
    if isinstance(between, cst.ParenthesizedWhitespace):
        between = between.with_changes(
            last_line=cst.SimpleWhitespace(between.last_line.value + _INDENT)
        )
    return node.with_changes(
        left=_indented(node.left), right=_indented(node.right), whitespace_between=between
    )


def _comma() -> cst.Comma:
    """``, `` (a new node each time: a tree must not hold one node twice)."""
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def _equal() -> cst.AssignEqual:
    """``=`` of a keyword argument, without spaces (a new node each time)."""
    return cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))
