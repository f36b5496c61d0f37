"""Positional row access to named access (``row[1]`` -> ``row["name"]``) where the SQL proves it.

A row is proven when it comes from ``execute_sql(<sql>, ..., fetch=True)`` in the same function
(followed through assignments, ``[0]``, ``for`` loops, ``enumerate``, comprehensions and
unpacking of the result list) and ``<sql>`` is a literal, or a name bound to one, whose select
list sqlglot reads; ``*`` and ``t.*`` are expanded from the ``CREATE TABLE`` statements found in
the code. Only literal int indexes are rewritten; the shipped row type answers both ``row[1]``
and ``row["name"]``, so code left alone keeps working. Positional unpacking whose arity matches
the select list is kept. Everything unproven is left as it is and reported (docs/named-rows.md):

- CM101 sql-not-literal: the SQL is built at run time.
- CM102 unnamed-column: an expression without an alias (``COUNT(*)``), or a name whose case the
  drivers report differently.
- CM103 duplicate-column: two columns share the name (``u.id, j.id``).
- CM104 row-escapes: a row is passed to or returned to other code, whose positional reads
  of it are not proven (reported at the call, the return and a local helper's indexes).
- CM105 json-shape: raw rows go to ``jsonify``/``json.dumps`` or into a returned dict or list;
  named rows as dicts would change the JSON.
- CM106 arity-mismatch: unpacking whose length differs from the select list.
- CM107 index-out-of-range: the index is past the select list.
- CM108 unknown-columns: the select list is unclear (``*`` over a table no CREATE TABLE
  declares, unparsable SQL, a statement without rows, ``fetch`` not a literal).
- CM109 ambiguous-binding: the name is bound more than once and the reaching one is unclear.
- CM110 cursor-row: a row read straight from a cursor (``cursor.fetchone()[0]``), whose
  query is not followed.
- CM111 plain-rows: a site that would be named, left as it is because ``execute_sql`` may still
  return plain tuples (``row["id"]`` raises TypeError on a tuple): no module of the run defines
  ``execute_sql``, or one that does is neither migrated nor migrated by pool-connections in the
  same run. Under libcst's runner rows count as plain unless ``--data-layer`` names a migrated
  data layer.
"""

from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.metadata import (
    Assignment,
    ComprehensionScope,
    ParentNodeProvider,
    PositionProvider,
    Scope,
    ScopeProvider,
)

from claun_migrate.codemods._sql import Column, create_tables, output_columns
from claun_migrate.codemods._support import rely_on, report
from claun_migrate.codemods.data_layer import rows_are_shipped

DESCRIPTION = 'Rewrite row[1] to row["name"] where the SQL proves the column; report the rest.'
TRIGGERS = ("execute_sql", "fetchone", "fetchall", "fetchmany")
REQUIRES = ("pool-connections",)

SQL_NOT_LITERAL = "CM101"
UNNAMED_COLUMN = "CM102"
DUPLICATE_COLUMN = "CM103"
ROW_ESCAPES = "CM104"
JSON_SHAPE = "CM105"
ARITY_MISMATCH = "CM106"
INDEX_OUT_OF_RANGE = "CM107"
UNKNOWN_COLUMNS = "CM108"
AMBIGUOUS_BINDING = "CM109"
CURSOR_ROW = "CM110"
PLAIN_ROWS = "CM111"

NO_LAYER_CHECKED = "no data layer was checked (`--data-layer PATH` names a migrated one)"
_DEFINES_EXECUTE_SQL = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+execute_sql\b", re.MULTILINE)

JSON_CALLS = frozenset(("jsonify", "dumps"))
LIST_INSERTS = frozenset(("append", "extend", "insert"))
CURSOR_FETCHES = {"fetchone": "row", "fetchall": "rows", "fetchmany": "rows"}

# Callables that read a row or the result list without indexing it by position.
HARMLESS_CALLS = frozenset(
    ("len", "bool", "list", "tuple", "dict", "str", "repr", "print", "sorted", "reversed")
    + ("enumerate", "iter", "next", "any", "all", "isinstance", "min", "max", "sum", "set", "zip")
)
_CREATE_OR_ALTER = re.compile(r"\b(create|alter)\s+table\b", re.IGNORECASE)
_AMBIGUOUS = object()


@dataclass(frozen=True)
class Origin:
    """A value from a query: the result list (``rows``) or one row, and its proven columns."""

    kind: str
    columns: tuple[Column, ...] | None
    code: str = ""
    reason: str = ""
    guess: tuple[Column, ...] | None = None
    guess_holds: str = ""


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
        tree = ast.parse(source)
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
    row type, else why rows may be plain tuples.

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


def _int_index(node: cst.Subscript) -> int | None:
    """The literal int in ``x[1]`` or ``x[-1]``; None for any other subscript."""
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return None
    value = node.slice[0].slice.value
    if isinstance(value, cst.Integer):
        return int(value.value, 0)
    if m.matches(value, m.UnaryOperation(m.Minus(), m.Integer())):
        return -int(value.expression.value, 0)  # type: ignore[attr-defined]
    return None


def _callee_name(call: cst.Call) -> str:
    """``f`` for ``f(...)`` and ``mod.f(...)``; empty for other callees."""
    if isinstance(call.func, cst.Name):
        return call.func.value
    if isinstance(call.func, cst.Attribute):
        return call.func.attr.value
    return ""


def _argument(call: cst.Call, position: int, keyword: str) -> cst.BaseExpression | None:
    """The argument passed at ``position`` or as ``keyword``."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == keyword:
            return arg.value
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    return positional[position].value if position < len(positional) else None


def _alias_for(sql: str) -> str:
    """A lowercase alias to suggest for an unnamed column: ``COUNT(*)`` -> ``count``."""
    word = re.search(r"[A-Za-z_]\w*", sql)
    return word.group(0).lower() if word else "value"


def _literal(name: str) -> str:
    """``name`` as a Python string literal, in double quotes when possible."""
    return f'"{name}"' if '"' not in name and "\\" not in name else repr(name)


class NamedRowsCommand(VisitorBasedCodemodCommand):
    """Name proven positional row accesses; report the unproven ones for review."""

    DESCRIPTION = DESCRIPTION
    METADATA_DEPENDENCIES = (PositionProvider, ScopeProvider, ParentNodeProvider)

    def __init__(
        self,
        context: CodemodContext,
        schema: Mapping[str, Sequence[str]] | None = None,
        schema_path: str | None = None,
        plain_rows: str | None = NO_LAYER_CHECKED,
        data_layer: str | None = None,
        layers: Sequence[str] = (),
    ) -> None:
        """``plain_rows``: why ``execute_sql`` rows may be plain tuples, or None when they are
        the shipped row type (``gather`` decides); ``data_layer`` (libcst's runner): a file or
        folder whose ``execute_sql`` is checked instead, migrated or not."""
        super().__init__(context)
        tables = dict(schema or {})
        if schema_path:
            tables.update(schema_from_sources(_sources_under(schema_path)))
        if data_layer:
            plain_rows = plain_rows_reason(_sources_under(data_layer), pending=False)
        self.plain_rows = plain_rows
        self.layers = tuple(layers)
        self.schema = {table.lower(): list(columns) for table, columns in tables.items()}
        self._origins: dict[cst.CSTNode, Origin | None] = {}
        self._resolving: set[cst.CSTNode] = set()
        self._escapes: dict[cst.Param, Origin] = {}
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

    @classmethod
    def gather(cls, sources: dict[str, str]) -> dict[str, object]:
        """Constructor arguments from the whole run: the schema its CREATE TABLEs declare, and
        whether ``execute_sql`` returns the shipped row type (else nothing is rewritten)."""
        return {
            "schema": schema_from_sources(sources),
            "plain_rows": plain_rows_reason(sources),
            "layers": sorted(p for p, t in sources.items() if _DEFINES_EXECUTE_SQL.search(t)),
        }

    # Reporting

    def _report(self, node: cst.CSTNode, code: str, message: str, suggestion: str) -> None:
        """Record a review finding (``report`` also warns, which is how the libcst CLI shows it)."""
        report(self.context, node, code, message, suggestion)

    def _code(self, node: cst.CSTNode) -> str:
        return self._module.code_for_node(node)

    # Where a value comes from

    def _scope(self, node: cst.CSTNode) -> Scope | None:
        scope = self.get_metadata(ScopeProvider, node, None)
        while isinstance(scope, ComprehensionScope):
            scope = scope.parent
        return scope

    def _start(self, node: cst.CSTNode) -> tuple[int, int]:
        position = self.get_metadata(PositionProvider, node).start
        return position.line, position.column

    def _ancestors(self, node: cst.CSTNode) -> list[cst.CSTNode]:
        chain = []
        while (node := self.get_metadata(ParentNodeProvider, node, None)) is not None:
            chain.append(node)
        return chain

    def _binding_statement(self, target: cst.CSTNode) -> cst.CSTNode:
        """The statement (or comprehension ``for``) whose execution binds ``target``."""
        for node in [target, *self._ancestors(target)]:
            if isinstance(node, (cst.BaseStatement, cst.CompFor)):
                return node
        return target

    def _bound_from(self, target: cst.CSTNode) -> tuple[int, int]:
        """Where ``target``'s binding takes effect: a loop's body, else the statement's end."""
        statement = self._binding_statement(target)
        if isinstance(statement, cst.For):
            return self._start(statement.body)
        position = self.get_metadata(PositionProvider, statement).end
        return position.line, position.column

    def _reaching(self, access: cst.Name, targets: list[cst.CSTNode]) -> cst.CSTNode | None:
        """The one binding of ``access`` that reaches it in straight-line or loop code, if any."""
        here = self._start(access)
        ancestors = self._ancestors(access)
        earlier = [target for target in targets if self._bound_from(target) <= here]
        if not earlier:
            return None
        reaching = max(earlier, key=self._bound_from)
        statement = self._binding_statement(reaching)
        block = statement if isinstance(statement, cst.For) else self._ancestors(statement)[0]
        if block not in ancestors:
            return None
        loops = [
            node
            for node in ancestors
            if isinstance(node, (cst.For, cst.While))
            and node not in self._ancestors(statement)
            and node is not statement
        ]
        later = [target for target in targets if target is not reaching]
        if any(loop in self._ancestors(target) for loop in loops for target in later):
            return None
        return reaching

    def _binding(self, name: cst.Name) -> cst.CSTNode | object | None:
        """The node that binds ``name`` where it is read, ``_AMBIGUOUS``, or None if unbound."""
        scope = self.get_metadata(ScopeProvider, name, None)
        if scope is None:
            return None
        assignments = [a for a in scope[name.value] if isinstance(a, Assignment)]
        if len(assignments) == 1:
            return assignments[0].node
        if not assignments:
            return None
        here = self._scope(name)
        if any(self._scope(a.node) is not here for a in assignments):
            return _AMBIGUOUS
        return self._reaching(name, [a.node for a in assignments]) or _AMBIGUOUS

    def origin(self, node: cst.CSTNode) -> Origin | None:
        """Where ``node``'s value comes from, if it is a query result or one of its rows."""
        if node not in self._origins and node not in self._resolving:
            self._resolving.add(node)
            self._origins[node] = self._find_origin(node)
            self._resolving.discard(node)
        return self._origins.get(node)

    def _find_origin(self, node: cst.CSTNode) -> Origin | None:
        if isinstance(node, cst.Call) and _callee_name(node) == "execute_sql":
            return self._query_origin(node)
        if isinstance(node, cst.Call) and _callee_name(node) in CURSOR_FETCHES:
            kind = CURSOR_FETCHES[_callee_name(node)]
            reason = f"`{self._code(node)}` reads a cursor, whose query is not followed"
            return Origin(kind, None, CURSOR_ROW, reason)
        if isinstance(node, cst.Subscript):
            source = self.origin(node.value)
            if source is None or source.kind != "rows":
                return None
            if _int_index(node) is not None:
                return replace(source, kind="row")
            return source if isinstance(node.slice[0].slice, cst.Slice) else None
        if isinstance(node, cst.IfExp):
            branches = [self.origin(node.body), self.origin(node.orelse)]
            nones = [m.matches(node.body, m.Name("None")), m.matches(node.orelse, m.Name("None"))]
            known = [b for b, none in zip(branches, nones, strict=True) if not none]
            return known[0] if len(known) == 1 or (known and known[0] == known[1]) else None
        if isinstance(node, cst.Name):
            return self._name_origin(node)
        return None

    def _name_origin(self, name: cst.Name) -> Origin | None:
        binding = self._binding(name)
        if binding is _AMBIGUOUS:
            scope = self.get_metadata(ScopeProvider, name)
            candidates = [self._target_origin(a.node) for a in scope[name.value]]
            known = [origin for origin in candidates if origin is not None]
            if not known:
                return None
            reason = (
                f"`{name.value}` is bound more than once, so which query reaches here is unclear"
            )
            return Origin(known[0].kind, None, AMBIGUOUS_BINDING, reason)
        source = self._target_origin(binding) if isinstance(binding, cst.CSTNode) else None
        change = self._changed_in_place(name) if source and source.kind == "rows" else ""
        if change:
            reason = f"`{change}` may put rows of another shape into the list"
            return Origin("rows", None, UNKNOWN_COLUMNS, reason)
        return source

    def _changed_in_place(self, name: cst.Name) -> str:
        """How the list in ``name`` gets items put into it (``rows.append``), or ""."""
        scope = self.get_metadata(ScopeProvider, name, None)
        for access in scope.accesses[name.value] if scope else ():
            parent = self.get_metadata(ParentNodeProvider, access.node, None)
            if isinstance(parent, cst.Attribute) and parent.attr.value in LIST_INSERTS:
                return f"{name.value}.{parent.attr.value}"
            holder = self.get_metadata(ParentNodeProvider, parent, None)
            if isinstance(parent, cst.Subscript) and isinstance(holder, cst.AssignTarget):
                return f"{name.value}[...] ="
        return ""

    def _target_origin(self, target: cst.CSTNode) -> Origin | None:
        """The origin of what the binding ``target`` (a Name or Param) is bound to."""
        if isinstance(target, cst.Param):
            return self._escapes.get(target)
        parent = self.get_metadata(ParentNodeProvider, target, None)
        if isinstance(parent, cst.AssignTarget) and parent.target is target:
            return self.origin(self.get_metadata(ParentNodeProvider, parent).value)
        if isinstance(parent, cst.AnnAssign) and parent.target is target and parent.value:
            return self.origin(parent.value)
        if isinstance(parent, (cst.For, cst.CompFor)) and parent.target is target:
            return self._iterated(parent.iter)
        if isinstance(parent, cst.Element):
            pair = self.get_metadata(ParentNodeProvider, parent)
            loop = self.get_metadata(ParentNodeProvider, pair, None)
            if (
                isinstance(loop, (cst.For, cst.CompFor))
                and loop.target is pair
                and m.matches(pair, m.Tuple([m.DoNotCare(), m.DoNotCare()]))
                and pair.elements[1] is parent  # type: ignore[attr-defined]
                and m.matches(loop.iter, m.Call(m.Name("enumerate")))
            ):
                return self._iterated(loop.iter.args[0].value)  # type: ignore[attr-defined]
        if isinstance(parent, (cst.Element, cst.StarredElement)):
            holder = self.get_metadata(ParentNodeProvider, parent)
            assign = self.get_metadata(ParentNodeProvider, holder, None)
            if isinstance(assign, cst.AssignTarget) and assign.target is holder:
                source = self._iterated(self.get_metadata(ParentNodeProvider, assign).value)
                starred = isinstance(parent, cst.StarredElement)
                return replace(source, kind="rows") if source and starred else source
        return None

    def _iterated(self, iterable: cst.BaseExpression) -> Origin | None:
        """The origin of one item when iterating over ``iterable``."""
        source = self.origin(iterable)
        return replace(source, kind="row") if source and source.kind == "rows" else None

    def _query_origin(self, call: cst.Call) -> Origin | None:
        fetch = _argument(call, 2, "fetch")
        if fetch is None or m.matches(fetch, m.Name("False")):
            return None
        if not m.matches(fetch, m.Name("True")):
            return Origin("rows", None, UNKNOWN_COLUMNS, "`fetch` is not a literal True")
        sql_node = _argument(call, 0, "sql")
        if sql_node is None:
            return Origin("rows", None, SQL_NOT_LITERAL, "no SQL argument")
        sql, reason = self._sql_text(sql_node)
        if sql is None:
            base = self._first_literal(sql_node) if isinstance(sql_node, cst.Name) else None
            guess = output_columns(base, self.schema).columns if base else None
            keeps = "if what is added at run time keeps the columns"
            return Origin("rows", None, SQL_NOT_LITERAL, reason, guess, keeps)
        result = output_columns(sql, self.schema)
        if result.columns is None:
            return Origin("rows", None, UNKNOWN_COLUMNS, f"unknown columns: {result.problem}")
        return Origin("rows", result.columns)

    def _assigned_value(self, target: object) -> cst.BaseExpression | None:
        """The value of ``target = value`` when ``target`` is a plain assignment target."""
        parent = self.get_metadata(ParentNodeProvider, target, None)  # type: ignore[arg-type]
        if isinstance(parent, cst.AssignTarget) and parent.target is target:
            return self.get_metadata(ParentNodeProvider, parent).value
        return None

    def _sql_text(self, node: cst.BaseExpression, depth: int = 0) -> tuple[str | None, str]:
        """The SQL text of a literal (or a name bound to one), else None and why not."""
        if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
            value = node.evaluated_value
            if isinstance(value, str):
                return value, ""
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
            left, _ = self._sql_text(node.left, depth + 1)
            right, _ = self._sql_text(node.right, depth + 1)
            if left is not None and right is not None:
                return left + right, ""
        if not isinstance(node, cst.Name) or depth > 4:
            return None, f"the SQL `{self._code(node)}` is built at run time"
        binding = self._binding(node)
        value = self._assigned_value(binding)
        text = self._sql_text(value, depth + 1)[0] if value is not None else None
        if text is not None:
            return text, ""
        parent = self.get_metadata(ParentNodeProvider, binding, None)  # type: ignore[arg-type]
        if isinstance(parent, cst.AugAssign):
            line = self._start(parent)[0]
            return None, f"the SQL is built at run time (`{node.value}` grows on line {line})"
        if binding is _AMBIGUOUS:
            return None, f"the SQL is built at run time (`{node.value}` is bound more than once)"
        return None, f"the SQL is built at run time (`{node.value}` is not a string literal)"

    def _first_literal(self, name: cst.Name) -> str | None:
        """The literal that ``name`` is first bound to, used only to suggest names."""
        scope = self.get_metadata(ScopeProvider, name, None)
        targets = [a.node for a in scope[name.value]] if scope else []
        first = min(targets, key=self._start, default=None)
        value = self._assigned_value(first) if first is not None else None
        return self._sql_text(value, 5)[0] if value is not None else None

    # Escapes: rows handed to functions of this module, whose accesses are then unproven

    def visit_Module(self, node: cst.Module) -> None:
        self._module = node
        nodes = self.metadata[ParentNodeProvider]  # every node, without another tree walk
        calls = [n for n in nodes if isinstance(n, cst.Call) and isinstance(n.func, cst.Name)]
        known = -1
        while known != len(self._escapes):  # a helper may pass its row on to another one
            known = len(self._escapes)
            self._origins.clear()
            for call in calls:
                self._record_escapes(call)

    def _record_escapes(self, call: cst.Call) -> None:
        """Mark the parameters of a function of this module that receive rows at ``call``."""
        function = self._binding(call.func)  # type: ignore[arg-type]
        if not isinstance(function, cst.FunctionDef):
            return
        params = [*function.params.posonly_params, *function.params.params]
        for index, arg in enumerate(call.args):
            source = self.origin(arg.value)
            if source is None or arg.star:
                continue
            named = [p for p in params if arg.keyword and p.name.value == arg.keyword.value]
            param = named[0] if named else params[index] if index < len(params) else None
            if param is not None and param not in self._escapes:
                line = self._start(call)[0]
                reason = f"`{param.name.value}` gets a query result from the call on line {line}"
                holds = f"if every caller passes a row like the one on line {line}"
                guess = source.columns or source.guess
                self._escapes[param] = Origin(source.kind, None, ROW_ESCAPES, reason, guess, holds)

    def visit_Call(self, node: cst.Call) -> None:
        callee = _callee_name(node)
        if callee in JSON_CALLS:
            for arg in node.args:
                self._check_json(arg.value)
        elif callee not in HARMLESS_CALLS and callee != "execute_sql":
            function = self._binding(node.func) if isinstance(node.func, cst.Name) else None
            where = (
                f"line {self._start(function)[0]}" if isinstance(function, cst.FunctionDef) else ""
            )
            for arg in node.args:
                source = self.origin(arg.value)
                if source is not None:
                    code = self._code(arg.value)
                    self._report(
                        arg.value,
                        ROW_ESCAPES,
                        f"`{code}` goes to `{callee}` ({where or 'not in this file'}), where "
                        "positional reads of it are not proven",
                        f"read it by name inside `{callee}`, or pass `dict({code})`"
                        if source.kind == "row"
                        else f"read its rows by name inside `{callee}`",
                    )

    def _check_json(self, value: cst.BaseExpression) -> None:
        """Report raw rows in ``value`` or anywhere in the literal it is, as bound for JSON."""
        if isinstance(value, cst.Dict):
            for element in value.elements:
                self._check_json(element.value)
            return
        if isinstance(value, (cst.List, cst.Tuple, cst.Set)):
            for element in value.elements:
                self._check_json(element.value)
            return
        source = self.origin(value)
        if source is None:
            return
        code = self._code(value)
        if source.kind == "rows":
            edit, shape = f"[dict(r) for r in {code}]", "an array of arrays"
        else:
            edit, shape = f"dict({code})", "an array"
        self._report(
            value,
            JSON_SHAPE,
            f"`{code}` is serialised as {shape}; named rows as dicts would change the JSON",
            f"`{edit}` if objects are wanted (changes the API: each row becomes a JSON object)",
        )

    def visit_Return(self, node: cst.Return) -> None:
        if isinstance(node.value, (cst.Dict, cst.List)):
            self._check_json(node.value)  # a Flask view serialises a returned dict or list
        source = self.origin(node.value) if node.value else None
        if source is not None and source.code != CURSOR_ROW and node.value is not None:
            code = self._code(node.value)
            self._report(
                node.value,
                ROW_ESCAPES,
                f"`{code}` is returned, so positional reads of it by callers are not proven",
                "read it by name where it is used",
            )

    # Unpacking: kept when the arity matches the select list

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if isinstance(target.target, (cst.Tuple, cst.List)):
                source = self.origin(node.value)
                if source is not None and source.kind == "row":
                    self._check_arity(target.target, source)

    def visit_For(self, node: cst.For) -> None:
        self._check_loop(node.target, node.iter)

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self._check_loop(node.target, node.iter)

    def _check_loop(self, target: cst.BaseExpression, iterable: cst.BaseExpression) -> None:
        if m.matches(iterable, m.Call(m.Name("enumerate"))) and m.matches(
            target, m.Tuple([m.DoNotCare(), m.Element(m.Tuple() | m.List())])
        ):
            target = target.elements[1].value  # type: ignore[attr-defined]
            iterable = iterable.args[0].value  # type: ignore[attr-defined]
        if isinstance(target, (cst.Tuple, cst.List)):
            source = self._iterated(iterable)
            if source is not None:
                self._check_arity(target, source)

    def _check_arity(self, target: cst.Tuple | cst.List, source: Origin) -> None:
        code = self._code(target)
        if source.columns is None:
            self._report(
                target,
                source.code,
                f"`{code}` unpacks a row whose columns are not proven: {source.reason}",
                "check that the names match the query's columns in order",
            )
            return
        names = [str(c.name or c.sql) for c in source.columns]
        fixed = [e for e in target.elements if not isinstance(e, cst.StarredElement)]
        starred = len(fixed) < len(target.elements)
        if len(fixed) == len(names) or (starred and len(fixed) <= len(names)):
            return
        self._report(
            target,
            ARITY_MISMATCH,
            f"`{code}` unpacks {len(fixed)} values but the query returns {len(names)} columns",
            f"unpack exactly: `{', '.join(names)}`",
        )

    # Index sites: rewritten when proven, else reported

    def leave_Subscript(
        self, original_node: cst.Subscript, updated_node: cst.Subscript
    ) -> cst.BaseExpression:
        index = _int_index(original_node)
        source = self.origin(original_node.value) if index is not None else None
        if index is None or source is None or source.kind != "row":
            return updated_node
        name = self._proven_name(original_node, index, source)
        if name is None:
            return updated_node
        if self.plain_rows is not None:
            code, named = (
                self._code(original_node),
                f"{self._code(original_node.value)}[{_literal(name)}]",
            )
            self._report(
                original_node,
                PLAIN_ROWS,
                f"`{code}` left positional: rows may still be plain tuples, on which `{named}` "
                f"raises TypeError ({self.plain_rows})",
                "migrate the data layer in the same run (run claun-migrate on the backend root, "
                f"so pool-connections migrates it too), then this becomes `{named}`",
            )
            return updated_node
        for layer in self.layers:  # row["x"] is only right once that layer returns Rows
            rely_on(self.context, layer)
        key = cst.Index(cst.SimpleString(_literal(name)))
        return updated_node.with_changes(slice=[cst.SubscriptElement(key)])

    def _proven_name(self, site: cst.Subscript, index: int, source: Origin) -> str | None:
        """The column name at ``index``, or None after reporting why it is not proven."""
        code, value = self._code(site), self._code(site.value)
        suggestion = f'name the column by hand if you know it: `{value}["<column>"]`'
        guesses = source.guess or ()
        guess = guesses[index].name if -len(guesses) <= index < len(guesses) else None
        if guess:
            suggestion = f'`{value}["{guess}"]`, {source.guess_holds}'
        if source.columns is None:
            self._report(
                site, source.code, f"`{code}` left positional: {source.reason}", suggestion
            )
            return None
        if not -len(source.columns) <= index < len(source.columns):
            self._report(
                site,
                INDEX_OUT_OF_RANGE,
                f"`{code}` left positional: index {index} is past the {len(source.columns)} "
                "columns of the query",
                "check the SQL and the index; this raises IndexError today",
            )
            return None
        column = source.columns[index]
        if column.name is None:
            alias = _alias_for(column.sql)
            self._report(
                site,
                UNNAMED_COLUMN,
                f"`{code}` left positional: column `{column.sql}` has no name both drivers report",
                f'alias it in the SQL (`{column.sql} AS {alias}`), then `{value}["{alias}"]`',
            )
            return None
        if column.name in self._duplicates(source):
            self._report(
                site,
                DUPLICATE_COLUMN,
                f"`{code}` left positional: more than one column is named `{column.name}`",
                f"alias it apart in the SQL (`{column.sql} AS <unique name>`), then "
                f'`{value}["<unique name>"]`',
            )
            return None
        return column.name

    @staticmethod
    def _duplicates(source: Origin) -> set[str]:
        names = [column.name for column in source.columns or () if column.name]
        return {name for name in names if names.count(name) > 1}
