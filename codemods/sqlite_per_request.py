"""SQLite per request: wire ``init_app(app)`` where the Flask app is made, reuse one connection.

- After ``app = Flask(...)`` (at module level or inside a factory such as ``create_app()``)
  add ``init_app(app)`` from the runtime copy beside the data layer, which closes the
  request's connection at teardown.
- An older ``get_db()`` layer (``conn = sqlite3.connect(PATH)`` + ``conn.row_factory =
  sqlite3.Row``) takes the request's connection instead: ``conn = get_db(PATH)``; the shipped
  row type answers ``row["name"]`` like ``sqlite3.Row``.

The import is relative inside the data layer's package (``from .services.db_sqlite import
init_app``) and absolute from the package root outside it (``from app.services.db_sqlite ...``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import PositionProvider

from claun_migrate.codemods import _support as support

FLASK_APP = m.Assign(
    targets=[m.AssignTarget(m.Name())],
    value=m.Call(func=m.Name("Flask") | m.Attribute(m.Name("flask"), m.Name("Flask"))),
)
SQLITE_CONNECT = m.Call(
    func=m.Attribute(m.Name("sqlite3"), m.Name("connect")), args=[m.Arg(keyword=None)]
)
ROW_FACTORY = m.Assign(
    targets=[m.AssignTarget(m.Attribute(attr=m.Name("row_factory")))],
    value=m.Attribute(m.Name("sqlite3"), m.Name("Row")),
)


def _is_package(folder: Path) -> bool:
    return (folder / "__init__.py").is_file()


def _package_root(folder: Path) -> Path:
    while _is_package(folder):
        folder = folder.parent
    return folder


def runtime_import(filename: str, layer_dir: str) -> tuple[str, int]:
    """(module, relative level) importing ``db_sqlite`` beside ``layer_dir`` from ``filename``."""
    here, there = Path(filename).resolve().parent, Path(layer_dir).resolve()
    root = _package_root(there)
    if _is_package(here) and _package_root(here) == root:
        common = Path(os.path.commonpath([here, there]))
        level = len(here.relative_to(common).parts) + 1
        return ".".join([*there.relative_to(common).parts, "db_sqlite"]), level
    return ".".join([*there.relative_to(root).parts, "db_sqlite"]), 0


def _nearest_layer(filename: str, layers: Sequence[str]) -> str | None:
    here = Path(filename).resolve().parent
    if not layers:
        for folder in [here, *here.parents][:4]:
            layers = [str(p) for p in folder.glob("*/services/database.py")]
            layers += [str(p) for p in folder.glob("services/database.py")]
            if layers:
                break

    def shared(layer: str) -> int:
        return len(os.path.commonpath([here, Path(layer).resolve()]))

    return os.path.dirname(os.path.abspath(max(layers, key=shared))) if layers else None


class SqlitePerRequestCommand(VisitorBasedCodemodCommand):
    """Wire the request-scoped SQLite connection into the app and the older ``get_db()``."""

    DESCRIPTION = "Give SQLite one connection per request: init_app(app) and a per-request get_db."
    TRIGGERS = ("Flask(", "sqlite3.connect")
    REQUIRES = ("pool-connections",)
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, context: CodemodContext, data_layers: Sequence[str] = ()) -> None:
        super().__init__(context)
        self.data_layers = data_layers
        self.generated = False
        self.defined: set[str] = set()

    @classmethod
    def gather(cls, sources: Mapping[str, str]) -> dict[str, object]:
        """The data-layer modules (where the runtime copies go), found by content."""
        layers = [p for p, text in sources.items() if "def get_db_connection" in text]
        return {"data_layers": [p for p in layers if "def execute_sql" in sources[p]]}

    def _import(self, node: cst.CSTNode, name: str, asname: str | None = None) -> bool:
        filename = self.context.filename or "."
        layer = _nearest_layer(filename, self.data_layers)
        if layer is None:
            message = "no data layer (services/database.py) found to import the runtime from"
            support.report(self.context, node, "SQLITE001", message, f"add {name} by hand")
            return False
        module, level = runtime_import(filename, layer)
        AddImportsVisitor.add_needed_import(self.context, module, name, asname, level)
        return True

    def visit_Module(self, node: cst.Module) -> bool:
        self.generated = any(support.GENERATED in line.comment.value for line in node.header)
        self.defined = {s.name.value for s in node.body if isinstance(s, cst.FunctionDef)}
        return not self.generated

    def _wire(
        self, body: Sequence[cst.BaseStatement], original: Sequence[cst.BaseStatement]
    ) -> list[cst.BaseStatement]:
        """``body`` with ``init_app(app)`` after each ``app = Flask(...)`` not yet wired."""
        statements = list(body)
        for index in reversed(range(len(statements))):
            line = statements[index]
            if not m.matches(line, m.SimpleStatementLine([FLASK_APP])):
                continue
            app = line.body[0].targets[0].target.value  # type: ignore[attr-defined]
            wired = m.SimpleStatementLine(
                [m.Expr(m.Call(m.Name("init_app"), [m.Arg(m.Name(app))]))]
            )
            if any(m.matches(s, wired) for s in statements):
                continue
            if self._import(original[index] if len(original) == len(body) else line, "init_app"):
                statements.insert(index + 1, cst.parse_statement(f"init_app({app})"))
        return statements

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        if self.generated:
            return updated_node
        return updated_node.with_changes(body=self._wire(updated_node.body, original_node.body))

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        if not isinstance(updated_node.body, cst.IndentedBlock):
            return updated_node
        body = self._wire(updated_node.body.body, original_node.body.body)
        if self._is_factory(original_node):
            asname = "request_db" if "get_db" in self.defined else None
            if self._import(original_node, "get_db", asname):
                body = [s for s in body if not m.matches(s, m.SimpleStatementLine([ROW_FACTORY]))]
                body = [self._per_request(s, asname or "get_db") for s in body]
        return updated_node.with_changes(body=updated_node.body.with_changes(body=body))

    @staticmethod
    def _is_factory(node: cst.FunctionDef) -> bool:
        """A ``get_db()``-style function: connect, set ``sqlite3.Row``, return the connection."""
        for assign in m.findall(node, m.Assign([m.AssignTarget(m.Name())], SQLITE_CONNECT)):
            conn = assign.targets[0].target.value  # type: ignore[attr-defined]
            row_factory = m.Assign([m.AssignTarget(m.Attribute(m.Name(conn)))], ROW_FACTORY.value)
            returned = m.findall(node, m.Return(m.Name(conn)))
            if returned and m.findall(node, row_factory):
                return True
        return False

    @staticmethod
    def _per_request(statement: cst.BaseStatement, name: str) -> cst.BaseStatement:
        return m.replace(
            statement, SQLITE_CONNECT, lambda call, _: call.with_changes(func=cst.Name(name))
        )
