"""SQLite per request: ``init_app(app)`` after every ``app = Flask(...)``.

When the data-layer model moves SQLite connections to the request's connection
(``get_db``), the app must close that connection when each app context ends: this codemod adds
``init_app(app)`` (imported from the runtime copy ``db_sqlite``, relative inside the package,
absolute from the package root outside it) after each ``app = Flask(...)``, at module level or
in a factory such as ``create_app()``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from claun_migrate.codemods import _support as support
from claun_migrate.codemods.data_layer import analyse
from claun_migrate.codemods.pool_connections import (
    ask_for_runtime_copies,
    imports_absolutely,
    runtime_import,
)

FLASK_APP = m.Assign(
    targets=[m.AssignTarget(m.Name())],
    value=m.Call(func=m.Name("Flask") | m.Attribute(m.Name("flask"), m.Name("Flask"))),
)


class SqlitePerRequestCommand(support.Command):
    """Close the request's SQLite connection at teardown: ``init_app(app)`` where apps are made."""

    DESCRIPTION = "Give SQLite one connection per request: init_app(app) where the app is made."
    TRIGGERS = ("Flask(",)
    REQUIRES = ("pool-connections",)

    def __init__(self, context: CodemodContext, home: str | None = None) -> None:
        super().__init__(context)
        self.home = home
        self.wired = False
        self.absolute = False

    @classmethod
    def gather(cls, sources: Mapping[str, str]) -> dict[str, object]:
        """Where the runtime copies are, if the run gives SQLite request connections."""
        model = analyse(sources)
        uses = model.sqlite or any(
            os.path.basename(p) == "db_sqlite.py" and t.startswith(support.GENERATED)
            for p, t in sources.items()
        )
        return {"home": model.home if uses else None}

    def skip(self, tree: cst.Module) -> bool:
        """Nothing to wire without SQLite request connections, nor in a runtime copy."""
        generated = any(
            line.comment is not None and support.GENERATED in line.comment.value
            for line in tree.header
        )
        return self.home is None or generated

    def _wire(self, body: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement]:
        """``body`` with ``init_app(app)`` after each ``app = Flask(...)`` not yet wired."""
        statements = list(body)
        for index in reversed(range(len(statements))):
            line = statements[index]
            if not m.matches(line, m.SimpleStatementLine([FLASK_APP])):
                continue
            app = line.body[0].targets[0].target.value  # type: ignore[attr-defined]
            call = m.Call(m.Name("init_app"), [m.Arg(m.Name(app))])
            if any(m.matches(s, m.SimpleStatementLine([m.Expr(call)])) for s in statements):
                continue
            assert self.home is not None
            module, level = runtime_import(
                self.context.filename or ".", self.home, "db_sqlite", absolute=self.absolute
            )
            AddImportsVisitor.add_needed_import(self.context, module, "init_app", relative=level)
            statements.insert(index + 1, cst.parse_statement(f"init_app({app})"))
            self.wired = True
        return statements

    def visit_Module(self, node: cst.Module) -> bool:
        self.absolute = self.home is not None and imports_absolutely(node, self.home)
        return True

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        updated = updated_node.with_changes(body=self._wire(updated_node.body))
        if self.wired:
            ask_for_runtime_copies(self.context, self.home)
        return updated

    def leave_FunctionDef(
        self, original_node: cst.FunctionDef, updated_node: cst.FunctionDef
    ) -> cst.FunctionDef:
        if not isinstance(updated_node.body, cst.IndentedBlock):
            return updated_node
        body = self._wire(updated_node.body.body)
        return updated_node.with_changes(body=updated_node.body.with_changes(body=body))
