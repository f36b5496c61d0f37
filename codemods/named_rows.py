"""Positional row access to named access (``row[1]`` -> ``row["name"]``) where the SQL proves it.

Where rows come from is the whole run's flow analysis (``row_flow``: cursor fetches, helpers
that return fetch results such as ``execute_sql`` or ``fetch_one``, parameters whose every
caller passes rows of one query); their columns come from the SQL (``_sql``: ``*`` and ``t.*``
expanded from the ``CREATE TABLE`` statements of the code). This module applies the plan: only
literal int indexes are rewritten, and only on rows that answer names once the run is done
(the shipped row type answers both ``row[1]`` and ``row["name"]``, dict rows only names).
Positional unpacking whose arity matches the select list is kept. Everything unproven is left
as it is and reported (docs/named-rows.md):

- CM101 sql-not-literal: the SQL is built at run time.
- CM102 unnamed-column: an expression without an alias (``COUNT(*)``), or a name whose case the
  drivers report differently.
- CM103 duplicate-column: two columns share the name (``u.id, j.id``).
- CM104 row-escapes: a function's parameter gets rows of different queries from its callers,
  or other values, or the function is used where its callers cannot be followed.
- CM105 json-shape: raw rows go to ``jsonify``/``json.dumps`` or into a returned dict or list;
  named rows as dicts would change the JSON.
- CM106 arity-mismatch: unpacking whose length differs from the select list.
- CM107 index-out-of-range: the index is past the select list.
- CM108 unknown-columns: the select list is unclear (``*`` over a table no CREATE TABLE
  declares, unparsable SQL, a statement without rows, ``fetch`` not a literal).
- CM109 ambiguous-binding: the name is bound more than once and the reaching one is unclear.
- CM110 cursor-row: a row read from a cursor whose query is not followed (no ``execute``
  found, or which one runs before the fetch is unclear).
- CM111 plain-rows: a site that would be named, left as it is because its rows may still be
  plain tuples (``row["id"]`` raises TypeError on a tuple): the connection is not migrated in
  this run, or is one the data-layer model does not follow. Under libcst's runner an
  ``execute_sql`` the run does not define counts as plain unless ``--data-layer`` names a
  migrated data layer.
- CM112 dict-row-position: a row that only answers names (``RealDictCursor``, ``dict(row)``)
  read or unpacked by position: a KeyError today; rewritten when the column is proven.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import libcst as cst
from libcst.codemod import CodemodContext

from claun_migrate.codemods._sql import create_tables
from claun_migrate.codemods._support import ORIGINAL, Command, moved, rely_on, report_at
from claun_migrate.codemods.data_layer import Rows, parse, rows_are_shipped
from claun_migrate.codemods.row_flow import key_of_code, plan_for

DESCRIPTION = 'Rewrite row[1] to row["name"] where the SQL proves the column; report the rest.'
TRIGGERS = ("execute_sql", "fetchone", "fetchall", "fetchmany", "from_row")
REQUIRES = ("pool-connections",)
GATHER_SUFFIXES = (".sql",)  # schema files: CREATE TABLE statements for `SELECT *`

NO_LAYER_CHECKED = "no data layer was checked (`--data-layer PATH` names a migrated one)"
_DEFINES_EXECUTE_SQL = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+execute_sql\b", re.MULTILINE)
_CREATE_OR_ALTER = re.compile(r"\b(create|alter)\s+table\b", re.IGNORECASE)

Finding = tuple[int, int, str, str, str]


def _merge_tables(texts: Sequence[str]) -> dict[str, list[str]]:
    """Tables declared by ``texts``; a table declared twice differently or altered is dropped."""
    found: dict[str, list[str] | None] = {}
    for text in texts:
        for table, columns in create_tables(text).items():
            previous = found.get(table, columns)
            found[table] = columns if columns is not None and previous == columns else None
    return {table: columns for table, columns in found.items() if columns is not None}


def _sql_literals(source: str) -> list[str]:
    """String literals in Python ``source`` that create or alter a table."""
    try:
        tree = parse(source)
    except (SyntaxError, ValueError):
        return []
    strings = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)]
    return [value for value in strings if isinstance(value, str) and _CREATE_OR_ALTER.search(value)]


def schema_from_sources(sources: Mapping[str, str]) -> dict[str, list[str]]:
    """The schema declared in ``sources``: CREATE TABLE literals in .py files, else plain SQL."""
    texts: list[str] = []
    for path, text in sources.items():
        if not _CREATE_OR_ALTER.search(text):
            continue
        if path.endswith(".py"):
            texts += _sql_literals(text)
        elif path.endswith(".sql"):
            texts.append(text)
    return _merge_tables(texts)


def plain_rows_reason(sources: Mapping[str, str], *, pending: bool = True) -> str | None:
    """None when every ``execute_sql`` defined in ``sources`` (at least one) returns the shipped
    row type, else why rows may be plain tuples (for an ``execute_sql`` the run cannot see).

    With ``pending`` (the engine, which runs pool-connections in the same run) a legacy data
    layer that pool-connections migrates counts as shipped; without it (libcst's runner, one
    codemod at a time) only a layer already migrated does.
    """
    layers = {
        p: t for p, t in sources.items() if p.endswith(".py") and _DEFINES_EXECUTE_SQL.search(t)
    }
    if not layers:
        return "no module in this run defines execute_sql"
    for path in sorted(layers):
        if not rows_are_shipped(path, sources, pending=pending):
            if pending:
                return f"the execute_sql of {path} is not migrated, nor migrated in this run"
            return f"the execute_sql of {path} is not migrated by pool-connections"
    return None


def _sources_under(path: str) -> dict[str, str]:
    root = Path(path)
    files = sorted(root.rglob("*")) if root.is_dir() else [root]
    return {str(f): f.read_text() for f in files if f.suffix in (".py", ".sql")}


def _literal(name: str) -> str:
    """``name`` as a Python string literal, in double quotes when possible."""
    return f'"{name}"' if '"' not in name and "\\" not in name else repr(name)


def _fallback(reason: str | None) -> Rows:
    return Rows(True, True) if reason is None else Rows(False, True, why=reason)


def gathered_plan(
    sources: Mapping[str, str],
    schema: Mapping[str, Sequence[str]],
    plain_rows: str | None,
    *,
    pending: bool = True,
    unsafe_fixes: bool = False,
) -> dict[str, object]:
    """The plan as plain, picklable constructor arguments: names, SQL literal edits,
    findings, relies by file."""
    plan = plan_for(
        sources,
        schema,
        fallback_rows=_fallback(plain_rows),
        pending=pending,
        unsafe_fixes=unsafe_fixes,
    )
    return {
        "sql": {p: tuple(sorted(s.items())) for p, s in sorted(plan.sql.items())},
        "names": {p: tuple(sorted(n.items())) for p, n in sorted(plan.keys.items())},
        "found": {p: tuple(sorted(f)) for p, f in sorted(plan.findings.items())},
        "relies": {p: tuple(sorted(r)) for p, r in sorted(plan.relies.items()) if r},
    }


class NamedRowsCommand(Command):
    """Name proven positional row accesses; report the unproven ones for review."""

    DESCRIPTION = DESCRIPTION
    METADATA_DEPENDENCIES = ()
    UNSAFE_FIXES = True

    def __init__(
        self,
        context: CodemodContext,
        schema: Mapping[str, Sequence[str]] | None = None,
        schema_path: str | None = None,
        plain_rows: str | None = NO_LAYER_CHECKED,
        data_layer: str | None = None,
        names: Mapping[str, Sequence[tuple[tuple[str, int], str]]] | None = None,
        found: Mapping[str, Sequence[Finding]] | None = None,
        relies: Mapping[str, Sequence[str]] | None = None,
        sql: Mapping[str, Sequence[tuple[tuple[str, int], Sequence[tuple[str, str]]]]]
        | None = None,
        unsafe_fixes: bool = False,
    ) -> None:
        """``names``/``found``/``relies``: the run's plan (``gather``); without it (libcst's
        runner, tests) the plan of this one module, with ``schema`` (or ``schema_path``) and
        ``plain_rows``: why an ``execute_sql`` the module does not define may return plain
        tuples, or None when it returns the shipped row type (``data_layer``: a file or folder
        whose ``execute_sql`` is checked instead)."""
        super().__init__(context)
        self.tables = dict(schema or {})
        self.extra: dict[str, str] = {}
        if schema_path:
            self.tables.update(schema_from_sources(_sources_under(schema_path)))
        if data_layer:
            self.extra = _sources_under(data_layer)
            plain_rows = plain_rows_reason(self.extra, pending=False)
        self.plain_rows = plain_rows
        self.unsafe_fixes = unsafe_fixes
        self.plan = None if names is None else (names, found or {}, relies or {}, sql or {})
        self._sql: dict[tuple[str, int], Sequence[tuple[str, str]]] = {}
        self._strings: dict[str, int] = {}
        self._concatenated = 0
        self._names: dict[tuple[str, int], str] = {}
        self._seen: dict[str, int] = {}
        self._rename: dict[cst.CSTNode, str] = {}
        self._pieces: dict[cst.CSTNode, dict[str, str]] = {}
        self._module = cst.Module(body=[])

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        arg_parser.add_argument(
            "--schema",
            dest="schema_path",
            metavar="PATH",
            help="a .sql or .py file, or a folder of them, with the CREATE TABLE statements",
        )
        arg_parser.add_argument(
            "--data-layer",
            dest="data_layer",
            metavar="PATH",
            help="the module (or a folder) defining execute_sql, already migrated by "
            "pool_connections; without it nothing is rewritten (rows may be plain tuples)",
        )
        arg_parser.add_argument(
            "--unsafe-fixes",
            dest="unsafe_fixes",
            action="store_true",
            help="also alias unnamed and duplicate columns in the SQL text, then name them",
        )

    @classmethod
    def gather(cls, sources: dict[str, str], *, unsafe_fixes: bool = False) -> dict[str, object]:
        """The plan of the whole run: where rows come from, their columns (the run's CREATE
        TABLEs) and whether they answer names once the run is done; with ``unsafe_fixes``,
        the SQL edits that name unnamed and duplicate columns too."""
        return gathered_plan(
            sources,
            schema_from_sources(sources),
            plain_rows_reason(sources),
            unsafe_fixes=unsafe_fixes,
        )

    @classmethod
    def targets(cls, gathered: Mapping[str, object]) -> set[str]:
        """Files with sites to rename or report, whatever their words."""
        names, found = gathered.get("names") or {}, gathered.get("found") or {}
        return set(names) | set(found) | set(gathered.get("sql") or {})  # type: ignore[arg-type]

    def skip(self, tree: cst.Module) -> bool:
        """Report this file's findings of the plan; walk only a file with reads or SQL to edit."""
        filename = self.context.filename or "module.py"
        if self.plan is None:  # alone: this module, and the data layer named
            sources = {**self.extra, filename: tree.code}
            schema = self.tables or schema_from_sources(sources)
            plan = gathered_plan(
                sources, schema, self.plain_rows, pending=False, unsafe_fixes=self.unsafe_fixes
            )
            names, found, relies, sql = plan["names"], plan["found"], plan["relies"], plan["sql"]
        else:
            names, found, relies, sql = self.plan
        self._names = dict(names.get(filename, ()))  # type: ignore[union-attr]
        self._sql = dict(sql.get(filename, ()))  # type: ignore[union-attr]
        findings = found.get(filename, ())  # type: ignore[union-attr]
        if findings:
            current = tree.code
            at = moved(self.context.scratch.get(ORIGINAL, current), current)
            for line, column, code, message, suggestion in findings:
                report_at(self.context, *at(line, column), code, message, suggestion)
        if self._names or self._sql:
            for path in relies.get(filename, ()):  # type: ignore[union-attr]
                rely_on(self.context, os.path.abspath(path))
        return not (self._names or self._sql)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        self._seen, self._rename, self._module = {}, {}, tree
        self._strings, self._concatenated = {}, 0
        result = super().transform_module_impl(tree)
        if len(self._pieces) != len(self._sql):  # names read from them would raise KeyError
            raise RuntimeError("an SQL literal planned for an unsafe fix was not found")
        return result

    def visit_Subscript(self, node: cst.Subscript) -> None:
        """Count the row reads like the analysis did (by what they are, in source order)."""
        if not self._names or not _int_index(node):
            return
        key = key_of_code(self._module.code_for_node(node))
        if key is None:
            return
        self._seen[key] = self._seen.get(key, 0) + 1
        name = self._names.get((key, self._seen[key]))
        if name is not None:
            self._rename[node] = name

    def visit_ConcatenatedString(self, node: cst.ConcatenatedString) -> None:
        self._string(node)
        self._concatenated += 1  # its pieces are not literals of their own

    def leave_ConcatenatedString(
        self, original_node: cst.ConcatenatedString, updated_node: cst.ConcatenatedString
    ) -> cst.BaseExpression:
        self._concatenated -= 1
        return self._edited(original_node, updated_node)

    def visit_SimpleString(self, node: cst.SimpleString) -> None:
        if not self._concatenated:
            self._string(node)

    def leave_SimpleString(
        self, original_node: cst.SimpleString, updated_node: cst.SimpleString
    ) -> cst.BaseExpression:
        return self._edited(original_node, updated_node)

    def _string(self, node: cst.SimpleString | cst.ConcatenatedString) -> None:
        """Count SQL literals like the analysis did (by their source, in source order)."""
        if not self._sql:
            return
        value = node.evaluated_value
        if not isinstance(value, str):
            return
        key = repr(value)
        self._strings[key] = self._strings.get(key, 0) + 1
        if (key, self._strings[key]) in self._sql:
            self._pieces[node] = dict(self._sql[(key, self._strings[key])])

    def _edited(self, original: cst.CSTNode, updated: cst.BaseExpression) -> cst.BaseExpression:
        pieces = self._pieces.get(original)
        return updated if pieces is None else _replace_pieces(updated, pieces)

    def leave_Subscript(
        self, original_node: cst.Subscript, updated_node: cst.Subscript
    ) -> cst.BaseExpression:
        name = self._rename.get(original_node)
        if name is None:
            return updated_node
        key = cst.Index(cst.SimpleString(_literal(name)))
        return updated_node.with_changes(slice=[cst.SubscriptElement(key)])


def _replace_pieces(node: cst.BaseExpression, pieces: Mapping[str, str]) -> cst.BaseExpression:
    """``node`` (a string literal, or an implicit concatenation of them) with the pieces
    whose source is a key of ``pieces`` replaced; all else, layout included, kept."""
    if isinstance(node, cst.SimpleString) and node.value in pieces:
        return node.with_changes(value=pieces[node.value])
    if isinstance(node, cst.ConcatenatedString):
        return node.with_changes(
            left=_replace_pieces(node.left, pieces), right=_replace_pieces(node.right, pieces)
        )
    return node


def _int_index(node: cst.Subscript) -> bool:
    """``x[1]`` or ``x[-1]``: one literal int index."""
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return False
    value = node.slice[0].slice.value
    if isinstance(value, cst.UnaryOperation) and isinstance(value.operator, cst.Minus):
        value = value.expression
    return isinstance(value, cst.Integer)
