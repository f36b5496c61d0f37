"""Where rows come from: the row-origin flow analysis behind named-rows (Python ``ast``, whole run).

A value is followed by what the code does with it, not by names:

- a *connection* is what the data-layer model says a call hands out (``psycopg2.connect``,
  ``sqlite3.connect``, any connector function of the run), or the shipped ``getconn``/``get_db``;
- a *cursor* is ``conn.cursor(...)`` (also in ``with``) or ``conn.execute(sql)``; its rows are
  those of the last ``execute`` on it that reaches the fetch;
- *rows* come from ``fetchall()``/``fetchmany()``, a *row* from ``fetchone()``, ``rows[i]``,
  iteration (``for``, comprehensions, ``enumerate``, unpacking of the result list);
- a function of the run passes on what it returns (``fetch_one(sql)`` returning
  ``cur.fetchone()``, ``execute_sql(sql, fetch=True)``): its SQL parameter is bound to each
  caller's SQL, and branches on literal flags (``if fetch:``) follow the caller's value;
- a parameter gets what every caller passes (``Review.from_row(row)``), when every reference
  to the function is a call the analysis follows; otherwise its rows are unproven.

Columns come from the SQL (``codemods/_sql.py``); what rows answer after the run (names,
positions) from the data-layer model. The result is a plan by file: subscript positions to
rename, and findings.
"""

from __future__ import annotations

import ast
import io
import os
import tokenize
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import SimpleNamespace

from claun_migrate.codemods._sql import Column, grown_columns, output_columns
from claun_migrate.codemods._sql_fixes import fix_sql, python_literal
from claun_migrate.codemods.data_layer import (
    Rows,
    _Lines,
    _Modules,
    _own_nodes,
    analyse,
    is_test_file,
    parse,
    relevant,
    walk,
)

Span = tuple[int, int, int, int]
"""Start line, start column, end line, end column of a node (columns in characters)."""

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
DICT_ROW_POSITION = "CM112"

ROW = Rows(True, True)
UNKNOWN_ROWS = Rows(None, True, why="the connection is not one the data-layer model follows")
PLAIN = "plain"
JSON_CALLS = frozenset(("jsonify", "dumps"))
FETCHES = {"fetchone": "row", "fetchall": "rows", "fetchmany": "rows"}
_FUNCTIONS = ast.FunctionDef | ast.AsyncFunctionDef
_COMPREHENSIONS = ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp


@dataclass(frozen=True)
class Cols:
    """The columns of a query, or why they are unknown (``code``, ``reason``, a ``guess``)."""

    columns: tuple[Column, ...] | None
    code: str = ""
    reason: str = ""
    guess: tuple[Column, ...] | None = None
    holds: str = ""
    param: str | None = None
    """The columns are those of the SQL the caller passes for this parameter."""
    literal: tuple[str, Span] | None = None
    """The file and span of the one string literal holding the SQL (for SQL fixes)."""


@dataclass(frozen=True)
class Val:
    """A followed value: a connection, a cursor, a result list or one row."""

    kind: str
    rows: Rows
    cols: Cols | None = None


@dataclass(frozen=True)
class Site:
    """A positional read of a row: rename it (``name``) or report it (``code``...)."""

    span: Span
    name: str | None = None
    code: str = ""
    message: str = ""
    suggestion: str = ""
    relies: tuple[str, ...] = ()


@dataclass
class Plan:
    """What named-rows does to each file."""

    names: dict[str, dict[Span, str]] = field(default_factory=dict)
    keys: dict[str, dict[tuple[str, int], str]] = field(default_factory=dict)
    """The names again by :func:`subscript_key` and occurrence: other codemods of the run may
    move lines before named-rows sees the file, but they do not change row reads."""
    findings: dict[str, list[tuple[int, int, str, str, str]]] = field(default_factory=dict)
    relies: dict[str, set[str]] = field(default_factory=dict)
    sql: dict[str, dict[tuple[str, int], tuple[tuple[str, str], ...]]] = field(default_factory=dict)
    """SQL literal edits (``--unsafe-fixes``) by file: (repr of the literal's value,
    occurrence) -> the pieces of the literal (implicit concatenation) to replace, old -> new."""
    literal_spans: dict[str, dict[Span, str]] = field(default_factory=dict)

    def add(self, path: str, site: Site) -> None:
        if site.name is not None:
            self.names.setdefault(path, {})[site.span] = site.name
            self.relies.setdefault(path, set()).update(site.relies)
        else:
            line, column = site.span[:2]
            finding = (line, column, site.code, site.message, site.suggestion)
            if finding not in self.findings.setdefault(path, []):
                self.findings[path].append(finding)


class _File:
    def __init__(self, path: str, text: str, tree: ast.Module, modules: _Modules) -> None:
        self.path, self.text, self.tree = path, text, tree
        self.lines = _Lines(text)
        self.test = is_test_file(path)
        self.bindings: dict[int, dict[str, list[ast.AST]]] = {}
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.classes: dict[str, ast.ClassDef] = {}
        self.constants: dict[str, list[ast.AST]] = {}
        for node in tree.body:
            if isinstance(node, _FUNCTIONS):
                self.functions[node.name] = node
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.constants.setdefault(target.id, []).append(node.value)
        self.imports: dict[str, tuple[str, str | None]] = {}
        self.runtime: dict[str, str] = {}
        for node in walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                for alias in node.names:
                    local = alias.asname or alias.name
                    if module.rsplit(".", 1)[-1] in ("db_pool", "db_sqlite"):
                        self.runtime[local] = alias.name
                    sub = modules.resolve(
                        path, ".".join(filter(None, [module, alias.name])), node.level
                    )
                    owner = modules.resolve(path, node.module, node.level)
                    if sub is not None:
                        self.imports[local] = (sub, None)
                    elif owner is not None:
                        self.imports[local] = (owner, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    target = modules.resolve(path, alias.name, 0)
                    if target is not None:
                        self.imports[alias.asname or alias.name.split(".")[0]] = (target, None)

    def span(self, node: ast.AST) -> Span:
        line, column = self.lines.at(node)
        end = SimpleNamespace(lineno=node.end_lineno, col_offset=node.end_col_offset)
        return (line, column, *self.lines.at(end))  # type: ignore[arg-type]

    def code(self, node: ast.AST) -> str:
        return self.lines.segment(node) or ast.unparse(node)

    def function_of(self, node: ast.AST) -> ast.AST:
        """The function (or module) whose code ``node`` is."""
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, _FUNCTIONS | ast.Lambda):
                return node
        return self.tree

    def class_of(self, function: ast.AST) -> ast.ClassDef | None:
        parent = self.parents.get(function)
        return parent if isinstance(parent, ast.ClassDef) else None


def _shortened(sql: str, limit: int = 160) -> str:
    """``sql`` on one line, cut with an ellipsis past ``limit`` characters (for a message)."""
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _start(node: ast.AST) -> tuple[int, int]:
    return node.lineno, node.col_offset  # type: ignore[attr-defined]


def _int_index(node: ast.Subscript) -> int | None:
    index = node.slice
    if isinstance(index, ast.Constant) and type(index.value) is int:
        return index.value
    if (
        isinstance(index, ast.UnaryOp)
        and isinstance(index.op, ast.USub)
        and isinstance(index.operand, ast.Constant)
        and type(index.operand.value) is int
    ):
        return -index.operand.value
    return None


def _merge_rows(rows: Sequence[Rows]) -> Rows:
    names = [r.names for r in rows]
    return Rows(
        False if False in names else None if None in names else True,
        all(r.positions for r in rows),
        tuple(sorted({p for r in rows for p in r.relies})),
        next((r.why for r in rows if r.why), ""),
    )


def _alias_for(sql: str) -> str:
    word = "".join(c if c.isalnum() else " " for c in sql).split()
    return word[0].lower() if word else "value"


class Analysis:
    """The whole run: files, the data-layer model's connections, the schema; memoised values."""

    def __init__(
        self,
        sources: Mapping[str, str],
        schema: Mapping[str, Sequence[str]],
        *,
        fallback_rows: Rows | None = None,
        pending: bool = True,
        unsafe_fixes: bool = False,
    ) -> None:
        """``pending``: the data-layer migrations of this run happen (the engine runs
        pool-connections too); without it rows are what the code hands out today."""
        self.schema = {table.lower(): list(columns) for table, columns in schema.items()}
        self.fallback_rows = fallback_rows
        self.unsafe_fixes = unsafe_fixes
        self._literals: dict[tuple[str, Span], ast.Constant] = {}
        self._fixable: dict[tuple[str, Span], list[tuple[str, int, Site]]] = {}
        trees: dict[str, tuple[str, ast.Module]] = {}
        for path in sorted(relevant(sources)):
            try:
                trees[path] = (sources[path], parse(sources[path]))
            except (SyntaxError, ValueError):
                continue
        modules = _Modules(list(trees))
        self.files = {p: _File(p, text, tree, modules) for p, (text, tree) in trees.items()}
        model = analyse(sources)
        self.connections = model.connections if pending else model.connections_now
        self.file_of_node: dict[int, _File] = {}
        self._memo: dict[tuple[int, tuple[tuple[str, bool], ...]], Val | None] = {}
        self._busy: set[tuple[int, tuple[tuple[str, bool], ...]]] = set()
        self._calls: dict[int, list[tuple[_File, ast.Call]]] = {}
        self._references: dict[str, int] = {}
        self._call_references: dict[int, int] = {}
        for info in self.files.values():
            for node in walk(info.tree):
                self.file_of_node[id(node)] = info
        for info in self.files.values():
            for node in walk(info.tree):
                if isinstance(node, ast.Name):
                    self._references[node.id] = self._references.get(node.id, 0) + 1
                elif isinstance(node, ast.Attribute):
                    self._references[node.attr] = self._references.get(node.attr, 0) + 1
                if isinstance(node, ast.Call):
                    target = self.callee(info, node)
                    if target is not None:
                        self._calls.setdefault(id(target[1]), []).append((info, node))

    # Which function a call runs -------------------------------------------------------------

    def callee(self, info: _File, call: ast.Call) -> tuple[_File, ast.AST, bool] | None:
        """The run's function ``call`` runs, its file, and whether it is a method (first
        parameter bound); None for anything else."""
        func = call.func
        if isinstance(func, ast.Name):
            if func.id in info.functions:
                return info, info.functions[func.id], False
            if func.id in info.classes:
                return _constructor(info, info.classes[func.id])
            bound = info.imports.get(func.id)
            if bound is not None and bound[1] is not None:
                owner = self.files.get(bound[0])
                if owner is not None and bound[1] in owner.functions:
                    return owner, owner.functions[bound[1]], False
                if owner is not None and bound[1] in owner.classes:
                    return _constructor(owner, owner.classes[bound[1]])
            return None
        if not isinstance(func, ast.Attribute) or not isinstance(func.value, ast.Name):
            return None
        name, attr = func.value.id, func.attr
        bound = info.imports.get(name)
        if bound is not None and bound[1] is None:
            owner = self.files.get(bound[0])
            if owner is not None and attr in owner.functions:
                return owner, owner.functions[attr], False
            return None
        owner_class: tuple[_File, ast.ClassDef] | None = None
        if name in info.classes:
            owner_class = info, info.classes[name]
        elif bound is not None and bound[1] is not None:
            owner = self.files.get(bound[0])
            if owner is not None and bound[1] in owner.classes:
                owner_class = owner, owner.classes[bound[1]]
        elif name in ("cls", "self"):
            function = info.function_of(call)
            klass = info.class_of(function) if isinstance(function, _FUNCTIONS) else None
            if klass is not None:
                owner_class = info, klass
        if owner_class is None:
            return None
        owner, klass = owner_class
        for node in klass.body:
            if isinstance(node, _FUNCTIONS) and node.name == attr:
                decorators = {getattr(d, "id", None) for d in node.decorator_list}
                if "staticmethod" in decorators:
                    return owner, node, False
                if "classmethod" in decorators or name == "self":
                    return owner, node, True
                return None
        return None

    def callers(self, function: ast.AST) -> list[tuple[_File, ast.Call]] | None:
        """Every call of ``function`` in the run, or None when it is also referred to in ways
        not followed (passed as a value, called through an object)."""
        calls = self._calls.get(id(function), [])
        name = function.name  # type: ignore[attr-defined]
        if name == "__init__":  # called as its class: `User(row)`
            owner = self.file_of_node[id(function)]
            klass = owner.class_of(function)
            name = klass.name if klass is not None else name
        if self._references.get(name, 0) > len(calls):
            return None
        return calls

    # Values --------------------------------------------------------------------------------

    def value(
        self, info: _File, node: ast.AST, consts: tuple[tuple[str, bool], ...] = ()
    ) -> Val | None:
        key = (id(node), consts)
        if key in self._memo:
            return self._memo[key]
        if key in self._busy:
            return None
        self._busy.add(key)
        try:
            found = self._value(info, node, dict(consts))
        finally:
            self._busy.discard(key)
        self._memo[key] = found
        return found

    def _value(self, info: _File, node: ast.AST, consts: dict[str, bool]) -> Val | None:
        frozen = tuple(sorted(consts.items()))
        if isinstance(node, ast.Await):
            return self.value(info, node.value, frozen)
        if isinstance(node, ast.Call):
            return self._call_value(info, node, consts)
        if isinstance(node, ast.Subscript):
            source = self.value(info, node.value, frozen)
            if source is None or source.kind != "rows":
                return None
            if _int_index(node) is not None:
                return replace(source, kind="row")
            return source if isinstance(node.slice, ast.Slice) else None
        if isinstance(node, ast.IfExp):
            return self._merge(info, [node.body, node.orelse], frozen, node)
        if isinstance(node, ast.ListComp) and len(node.generators) == 1:
            generator = node.generators[0]
            element = node.elt
            as_dict = (
                isinstance(element, ast.Call)
                and isinstance(element.func, ast.Name)
                and element.func.id == "dict"
                and len(element.args) == 1
            )
            inner = element.args[0] if as_dict else element  # type: ignore[attr-defined]
            if (
                not generator.ifs
                and isinstance(generator.target, ast.Name)
                and isinstance(inner, ast.Name)
                and inner.id == generator.target.id
            ):
                item = self._item(info, generator.iter, frozen)
                if item is not None:
                    rows = Rows(True, False, item.rows.relies) if as_dict else item.rows
                    return Val("rows", rows, item.cols)
        if isinstance(node, ast.Name):
            return self._name_value(info, node, consts)
        return None

    def _merge(
        self, info: _File, nodes: Sequence[ast.AST], frozen: tuple, where: ast.AST
    ) -> Val | None:
        """One value for several that may reach ``where``: None, ``[]`` and ``()`` are
        neutral (reading them fails before and after alike)."""
        values = [self.value(info, n, frozen) if not _neutral(n) else PLAIN for n in nodes]
        known = [v for v in values if isinstance(v, Val)]
        if not known:
            return None
        kinds = {v.kind for v in known}
        if len(kinds) > 1:
            return None
        if None in values:
            value = known[0]
            reason = f"`{info.code(where)}` may also hold a value that is not a query result"
            return replace(value, cols=Cols(None, UNKNOWN_COLUMNS, reason))
        first = known[0]
        rows = _merge_rows([v.rows for v in known])
        if all(v.cols == first.cols for v in known):
            return replace(first, rows=rows)
        same = {v.cols.columns if v.cols else None for v in known}
        if len(same) == 1 and None not in same:
            return Val(first.kind, rows, Cols(first.cols.columns))  # type: ignore[union-attr]
        reason = f"`{info.code(where)}` is bound to more than one query here"
        return Val(first.kind, rows, Cols(None, AMBIGUOUS_BINDING, reason))

    def _call_value(self, info: _File, call: ast.Call, consts: dict[str, bool]) -> Val | None:
        func = call.func
        frozen = tuple(sorted(consts.items()))
        rows = self.connections.get(info.path, {}).get(info.lines.at(call))
        if rows is not None:
            return Val("conn", rows)
        if isinstance(func, ast.Name) and info.runtime.get(func.id) == "get_db":
            return Val("conn", ROW)  # the shipped SQLite connection's row factory
        pool_call = func.value if isinstance(func, ast.Attribute) else None
        if isinstance(func, ast.Name) and info.runtime.get(func.id) == "getconn":
            pool_call = call
        if (
            isinstance(pool_call, ast.Call)
            and isinstance(pool_call.func, ast.Name)
            and info.runtime.get(pool_call.func.id) in ("getconn", "get_pool")
            and (pool_call is call or func.attr == "getconn")  # type: ignore[union-attr]
        ):
            return Val("conn", _factory_rows(_keyword_name(pool_call, "cursor_factory")))
        if isinstance(func, ast.Name) and func.id in ("dict",) and call.args:
            inner = self.value(info, call.args[0], frozen)
            if inner is not None and inner.kind == "row":
                return replace(inner, rows=Rows(True, False))
            return None
        if isinstance(func, ast.Name) and func.id in ("list", "tuple") and len(call.args) == 1:
            inner = self.value(info, call.args[0], frozen)
            if inner is not None and inner.kind == "cursor":
                return self._fetched(info, call, call.args[0], inner, "rows", frozen)
            return inner if inner is not None and inner.kind == "rows" else None
        if isinstance(func, ast.Attribute):
            owner = self.value(info, func.value, frozen)
            if owner is not None:
                if owner.kind == "conn" and func.attr == "cursor":
                    factory = _keyword_name(call, "cursor_factory")
                    if factory:
                        return Val("cursor", _factory_rows(factory))
                    if _sets_row_factory(info, call, func.value):
                        return Val("cursor", Rows(True, True, owner.rows.relies))
                    return Val("cursor", owner.rows)
                if owner.kind in ("conn", "cursor") and func.attr == "execute" and call.args:
                    return Val("cursor", owner.rows, self.sql_cols(info, call.args[0], frozen))
                if owner.kind == "cursor" and func.attr in FETCHES:
                    return self._fetched(info, call, func.value, owner, FETCHES[func.attr], frozen)
                return None
            if func.attr == "cursor":
                if _sets_row_factory(info, call, func.value):
                    return Val("cursor", Rows(True, True))
                return Val("cursor", UNKNOWN_ROWS)
            if func.attr in FETCHES:
                cols = Cols(
                    None,
                    CURSOR_ROW,
                    f"`{info.code(func.value)}` is a cursor this analysis does not follow",
                )
                return Val(FETCHES[func.attr], UNKNOWN_ROWS, cols)
        target = self.callee(info, call)
        if target is not None:
            return self._returned(info, call, *target)
        if isinstance(func, ast.Name) and func.id == "execute_sql" and self.fallback_rows:
            return self._unseen_execute_sql(info, call, frozen)
        return None

    def _unseen_execute_sql(self, info: _File, call: ast.Call, frozen: tuple) -> Val | None:
        """``execute_sql(sql, params, fetch=True)`` whose definition is not in the run (libcst's
        runner on one file): rows as ``fallback_rows`` says."""
        fetch = _argument(call, 2, "fetch")
        if fetch is None or (isinstance(fetch, ast.Constant) and not fetch.value):
            return None
        assert self.fallback_rows is not None
        if not (isinstance(fetch, ast.Constant) and fetch.value is True):
            reason = "`fetch` is not a literal True"
            return Val("rows", self.fallback_rows, Cols(None, UNKNOWN_COLUMNS, reason))
        sql = _argument(call, 0, "sql")
        if sql is None:
            return Val("rows", self.fallback_rows, Cols(None, SQL_NOT_LITERAL, "no SQL argument"))
        return Val("rows", self.fallback_rows, self.sql_cols(info, sql, frozen))

    def _fetched(
        self, info: _File, fetch: ast.AST, cursor: ast.AST, owner: Val, kind: str, frozen: tuple
    ) -> Val:
        """Rows fetched from ``cursor``: those of the last ``execute`` reaching ``fetch``."""
        cols = (
            self._executed(info, fetch, cursor.id, frozen) if isinstance(cursor, ast.Name) else None
        )
        if cols is None:
            cols = owner.cols or Cols(
                None, CURSOR_ROW, f"`{info.code(cursor)}` has no `execute` to follow"
            )
        return Val(kind, owner.rows, cols)

    def _executed(self, info: _File, fetch: ast.AST, name: str, frozen: tuple) -> Cols | None:
        """The columns of the last ``name.execute(sql)`` before ``fetch``; None if none."""
        function = info.function_of(fetch)
        executes = [
            node
            for node in _own_nodes(function)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("execute", "executemany")
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == name
            and node.args
        ]
        reaching = [
            e
            for e in _reaching(info, fetch, executes)
            if not _excluded(info, e, function, dict(frozen))
        ]
        if not reaching:
            return None
        if any(e.func.attr == "executemany" for e in reaching):  # type: ignore[attr-defined]
            return Cols(None, UNKNOWN_COLUMNS, "`executemany` returns no rows")
        found = {self.sql_cols(info, e.args[0], frozen) for e in reaching}  # type: ignore[attr-defined]
        if len(found) == 1:
            return found.pop()
        columns = {c.columns for c in found}
        if len(columns) == 1 and None not in columns:
            return Cols(columns.pop())
        params = {c.param for c in found}
        if len(params) == 1 and None not in params:
            return found.pop()
        return Cols(
            None, CURSOR_ROW, f"which `{name}.execute(...)` runs before this fetch is unclear"
        )

    def _returned(
        self, info: _File, call: ast.Call, owner: _File, function: ast.AST, method: bool
    ) -> Val | None:
        """What ``call`` of the run's ``function`` returns, its SQL parameter bound."""
        assert isinstance(function, _FUNCTIONS)
        bound = _bind(function, call, method)
        if bound is None:
            return None
        guards = _guard_params(owner, function)
        consts = {}
        for param in guards:
            arg = bound.get(param)
            if isinstance(arg, ast.Constant) and arg.value in (True, False, None):
                consts[param] = bool(arg.value)
        frozen = tuple(sorted(consts.items()))
        returns = [
            n.value
            for n in _own_nodes(function)
            if isinstance(n, ast.Return)
            and n.value is not None
            and not _excluded(owner, n, function, consts)
        ]
        if not returns:
            return None
        result = self._merge(owner, returns, frozen, returns[0])
        if result is None or result.cols is None or result.cols.param is None:
            return result
        arg = bound.get(result.cols.param)
        if arg is None:
            reason = f"`{result.cols.param}` of `{function.name}` is not passed"
            return replace(result, cols=Cols(None, SQL_NOT_LITERAL, reason))
        return replace(result, cols=self.sql_cols(info, arg, ()))

    def _name_value(self, info: _File, name: ast.Name, consts: dict[str, bool]) -> Val | None:
        frozen = tuple(sorted(consts.items()))
        comprehension = _comprehension_binding(info, name)
        if comprehension is not None:
            return self._target_value(info, comprehension, name.id, frozen)
        function = info.function_of(name)
        bindings = _bindings(info, function, name.id)
        if not bindings:
            return None
        reaching = _reaching(info, name, bindings)
        reaching = [b for b in reaching if not _excluded(info, b, function, consts)]
        if not reaching:
            return None
        found: list[Val | None] = []
        neutral: list[bool] = []
        for target in reaching:
            if isinstance(target, ast.arg):
                found.append(self._param_value(info, function, target))
                neutral.append(False)
            else:
                found.append(self._target_value(info, target, name.id, frozen))
                assigned = _assigned(info, target)
                neutral.append(assigned is not None and _neutral(assigned))
        if len(found) == 1:
            value = found[0]
            if value is not None and value.kind == "rows":
                change = _changed_in_place(info, function, name.id)
                if change:
                    reason = f"`{change}` may put rows of another shape into the list"
                    return Val("rows", value.rows, Cols(None, UNKNOWN_COLUMNS, reason))
            return value
        kept = [v for v, n in zip(found, neutral, strict=True) if not n]
        known = [v for v in kept if v is not None]
        if not known:
            return None
        if len(known) < len(kept) or len({v.kind for v in known}) > 1:
            reason = f"`{name.id}` is bound more than once, so which query reaches here is unclear"
            return Val(known[0].kind, known[0].rows, Cols(None, AMBIGUOUS_BINDING, reason))
        rows = _merge_rows([v.rows for v in known])
        cols = {v.cols for v in known}
        if len(cols) == 1:
            return replace(known[0], rows=rows)
        columns = {c.columns if c else None for c in cols}
        if len(columns) == 1 and None not in columns:
            return Val(known[0].kind, rows, Cols(known[0].cols.columns))  # type: ignore[union-attr]
        reason = f"`{name.id}` is bound more than once, so which query reaches here is unclear"
        return Val(known[0].kind, rows, Cols(None, AMBIGUOUS_BINDING, reason))

    def _target_value(self, info: _File, target: ast.AST, name: str, frozen: tuple) -> Val | None:
        """The value bound to ``name`` by the binding ``target``."""
        parent = info.parents.get(target)
        if isinstance(target, ast.comprehension):
            return self._element(info, target.target, target.iter, name, frozen)
        if isinstance(parent, ast.Assign):
            if target in parent.targets and isinstance(target, ast.Name):
                return self.value(info, parent.value, frozen)
            return self._unpacked(info, target, parent.value, name, frozen)
        if isinstance(parent, ast.AnnAssign) and parent.value is not None:
            return self.value(info, parent.value, frozen)
        if isinstance(parent, ast.For | ast.AsyncFor) and parent.target is target:
            return self._element(info, target, parent.iter, name, frozen)
        if isinstance(parent, ast.withitem) and parent.optional_vars is target:
            value = self.value(info, _unwrap_with(parent.context_expr), frozen)
            return value
        if isinstance(parent, ast.Tuple | ast.List | ast.Starred):
            top = target
            while isinstance(info.parents.get(top), ast.Tuple | ast.List | ast.Starred):
                top = info.parents[top]
            holder = info.parents.get(top)
            if isinstance(holder, ast.Assign):
                return self._unpacked(info, top, holder.value, name, frozen)
            if isinstance(holder, ast.For | ast.AsyncFor | ast.comprehension):
                return self._element(info, top, holder.iter, name, frozen)
        return None

    def _element(
        self, info: _File, target: ast.AST, iterable: ast.AST, name: str, frozen: tuple
    ) -> Val | None:
        """What ``name`` in the loop target ``target`` holds when iterating ``iterable``."""
        if (
            isinstance(iterable, ast.Call)
            and isinstance(iterable.func, ast.Name)
            and iterable.func.id == "enumerate"
            and iterable.args
        ):
            if (
                isinstance(target, ast.Tuple)
                and len(target.elts) == 2
                and isinstance(target.elts[1], ast.Name)
                and target.elts[1].id == name
            ):
                return self._item(info, iterable.args[0], frozen)
            return None
        if isinstance(target, ast.Name) and target.id == name:
            return self._item(info, iterable, frozen)
        return None

    def _item(self, info: _File, iterable: ast.AST, frozen: tuple) -> Val | None:
        source = self.value(info, iterable, frozen)
        if source is None:
            return None
        if source.kind == "cursor":
            source = self._fetched(info, iterable, iterable, source, "rows", frozen)
        return replace(source, kind="row") if source.kind == "rows" else None

    def _unpacked(
        self, info: _File, top: ast.AST, value: ast.AST, name: str, frozen: tuple
    ) -> Val | None:
        """``(row,) = rows``, ``first, *rest = rows``: rows unpacked into names; and
        ``conn, cur = connect()``: one element of the tuples a function of the run returns."""
        if not isinstance(top, ast.Tuple | ast.List):
            return None
        source = self.value(info, value, frozen)
        if isinstance(value, ast.Call) and (source is None or source.kind == "conn"):
            element = self._returned_element(info, value, top, name)
            if element is not None and element.rows == UNKNOWN_ROWS and source is not None:
                return replace(element, rows=source.rows)  # the data-layer model knows more
            return element
        if source is None or source.kind != "rows":
            return None
        for element in top.elts:
            if isinstance(element, ast.Name) and element.id == name:
                return replace(source, kind="row")
            if (
                isinstance(element, ast.Starred)
                and isinstance(element.value, ast.Name)
                and element.value.id == name
            ):
                return source
        return None

    def _returned_element(
        self, info: _File, call: ast.Call, top: ast.Tuple | ast.List, name: str
    ) -> Val | None:
        """What ``name`` in ``top`` gets from ``call`` of a function of the run that returns
        tuples of that length (``return conn, conn.cursor()``)."""
        positions = [i for i, e in enumerate(top.elts) if isinstance(e, ast.Name) and e.id == name]
        target = self.callee(info, call)
        if (
            len(positions) != 1
            or target is None
            or any(isinstance(e, ast.Starred) for e in top.elts)
        ):
            return None
        owner, function, _ = target
        returns = [n.value for n in _own_nodes(function) if isinstance(n, ast.Return)]
        if not returns or not all(
            isinstance(r, ast.Tuple) and len(r.elts) == len(top.elts) for r in returns
        ):
            return None
        elements = [r.elts[positions[0]] for r in returns]  # type: ignore[union-attr]
        return self._merge(owner, elements, (), elements[0])

    def _param_value(self, info: _File, function: ast.AST, param: ast.arg) -> Val | None:
        """What every caller passes for ``param``: one value when all pass rows of one query."""
        if not isinstance(function, _FUNCTIONS):
            return None
        callers = self.callers(function)
        method = self._is_method(info, function)
        name = function.name
        values: list[Val | None] = []
        lines = []
        for caller, call in self._calls.get(id(function), []):
            bound = _bind(function, call, method)
            arg = bound.get(param.arg) if bound is not None else None
            values.append(self.value(caller, arg) if arg is not None else None)
            lines.append(f"{os.path.basename(caller.path)}:{call.lineno}")
        known = [v for v in values if v is not None]
        if not known:
            return None
        kind = known[0].kind
        rows = _merge_rows([v.rows for v in known])
        if callers is None:
            reason = f"`{name}` is used where its callers cannot be followed (passed as a value)"
            return Val(
                kind, rows, Cols(None, ROW_ESCAPES, reason, known[0].cols and known[0].cols.columns)
            )
        if len(known) < len(values) or len({v.kind for v in known}) > 1:
            reason = (
                f"`{param.arg}` gets a query result from some callers of `{name}` and other "
                f"values from others ({', '.join(lines[:4])})"
            )
            return Val(kind, rows, Cols(None, ROW_ESCAPES, reason))
        columns = {v.cols.columns if v.cols else None for v in known}
        if len(columns) == 1 and None not in columns:
            first = known[0].cols
            assert first is not None
            literal = first.literal if len({v.cols for v in known}) == 1 else None
            return Val(kind, rows, Cols(first.columns, literal=literal))
        unknown = [v.cols for v in known if v.cols is not None and v.cols.columns is None]
        if len(known) == 1 and unknown:
            return known[0]
        reason = (
            f"`{param.arg}` gets rows of different or unproven queries from the callers of "
            f"`{name}` ({', '.join(lines[:4])})"
        )
        guess = next((v.cols.columns for v in known if v.cols and v.cols.columns), None)
        holds = "if every caller passes a row of that query"
        return Val(kind, rows, Cols(None, ROW_ESCAPES, reason, guess, holds))

    def _is_method(self, info: _File, function: ast.AST) -> bool:
        klass = info.class_of(function)
        if klass is None:
            return False
        decorators = {getattr(d, "id", None) for d in function.decorator_list}  # type: ignore[attr-defined]
        return "staticmethod" not in decorators

    # SQL -----------------------------------------------------------------------------------

    def sql_cols(self, info: _File, node: ast.AST, frozen: tuple, depth: int = 0) -> Cols:
        """The columns of the SQL ``node`` evaluates to."""
        node = _placeholders_swapped(node)
        if isinstance(node, ast.Name) and depth < 4:
            function = info.function_of(node)
            bindings = _bindings(info, function, node.id) if function is not info.tree else []
            reaching = _reaching(info, node, bindings) if bindings else []
            if len(reaching) == 1 and not isinstance(reaching[0], ast.arg):
                value = _assigned(info, reaching[0])
                if value is not None and _placeholders_swapped(value) is not value:
                    return self.sql_cols(info, _placeholders_swapped(value), frozen, depth + 1)
        text, reason, literal = self.sql_text(info, node, depth)
        if text is None:
            function = info.function_of(node)
            if isinstance(node, ast.Name) and isinstance(function, _FUNCTIONS):
                params = [
                    a.arg
                    for a in (
                        *function.args.posonlyargs,
                        *function.args.args,
                        *function.args.kwonlyargs,
                    )
                ]
                if node.id in params and not _bindings_except_param(info, function, node.id):
                    return Cols(
                        None, SQL_NOT_LITERAL, f"the SQL comes from `{node.id}`", param=node.id
                    )
            grown = self._grown(info, node)
            if grown is not None:
                return grown
            return Cols(None, SQL_NOT_LITERAL, reason)
        result = output_columns(text, self.schema)
        if result.columns is None:
            return Cols(None, UNKNOWN_COLUMNS, f"unknown columns: {result.problem}")
        return Cols(result.columns, literal=literal)

    def sql_text(
        self, info: _File, node: ast.AST, depth: int = 0
    ) -> tuple[str | None, str, tuple[str, Span] | None]:
        """The SQL text of a literal, or of a name bound once to one; else why not."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            span = info.span(node)
            self._literals[(info.path, span)] = node
            return node.value, "", (info.path, span)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and depth < 6:
            left = self.sql_text(info, node.left, depth + 1)[0]
            right = self.sql_text(info, node.right, depth + 1)[0]
            if left is not None and right is not None:
                return left + right, "", None
        if isinstance(node, ast.Name) and depth < 6:
            function = info.function_of(node)
            bindings = _bindings(info, function, node.id) if function is not info.tree else []
            if not bindings:
                return self._constant_text(info, node.id, depth)
            reaching = _reaching(info, node, bindings)
            if any(isinstance(info.parents.get(b), ast.AugAssign) for b in bindings):
                line = next(
                    b.lineno for b in bindings if isinstance(info.parents.get(b), ast.AugAssign)
                )  # type: ignore[attr-defined]
                return (
                    None,
                    f"the SQL is built at run time (`{node.id}` grows on line {line})",
                    None,
                )
            if len(reaching) == 1:
                value = _assigned(info, reaching[0])
                if value is not None:
                    text, _, literal = self.sql_text(info, value, depth + 1)
                    if text is not None:
                        return text, "", literal
            if len(reaching) > 1:
                return (
                    None,
                    f"the SQL is built at run time (`{node.id}` is bound more than once)",
                    None,
                )
            return None, f"the SQL is built at run time (`{node.id}` is not a string literal)", None
        return None, f"the SQL `{info.code(node)}` is built at run time", None

    def _constant_text(
        self, info: _File, name: str, depth: int
    ) -> tuple[str | None, str, tuple[str, Span] | None]:
        values = info.constants.get(name, [])
        if len(values) == 1:
            return self.sql_text(info, values[0], depth + 1)
        bound = info.imports.get(name)
        if bound is not None and bound[1] is not None and bound[0] in self.files:
            return self._constant_text(self.files[bound[0]], bound[1], depth + 1)
        return None, f"the SQL is built at run time (`{name}` is not a string literal)", None

    def _grown(self, info: _File, node: ast.AST) -> Cols | None:
        """SQL grown with ``+=`` of literal clauses (``_sql.grown_columns``): one literal
        binding, then literal fragments appended, each on every path or under a condition."""
        if not isinstance(node, ast.Name):
            return None
        function = info.function_of(node)
        bindings = _bindings(info, function, node.id) if function is not info.tree else []
        plain = [b for b in bindings if isinstance(info.parents.get(b), ast.Assign)]
        grows = [b for b in bindings if isinstance(info.parents.get(b), ast.AugAssign)]
        if len(plain) != 1 or not grows:
            return None
        base_node = _assigned(info, plain[0])
        base = self.sql_text(info, base_node, 1)[0] if base_node is not None else None
        if base is None:
            return None
        guess = output_columns(base, self.schema).columns
        holds = "if what is added at run time keeps the columns"
        fragments: list[str] = []
        always: list[int] = []
        use = {id(a) for a in _ancestors(info, node)} | {id(_statement(info, node))}
        for grow in sorted(grows, key=_start):
            statement = info.parents[grow]
            if _start(statement) > _start(node) or _start(statement) < _start(plain[0]):
                continue
            text = self.sql_text(info, statement.value, 1)[0]  # type: ignore[attr-defined]
            if text is None or not isinstance(statement.op, ast.Add):  # type: ignore[attr-defined]
                reason = (
                    f"the SQL is built at run time (`{node.id}` grows on line "
                    f"{statement.lineno} by a value that is not a literal)"
                )
                return Cols(None, SQL_NOT_LITERAL, reason, guess, holds)
            if _in_same_block_as(info, statement, use):
                always.append(len(fragments))
            fragments.append(text)
        line = grows[0].lineno  # type: ignore[attr-defined]
        result = grown_columns(base, fragments, self.schema, always=always)
        if result.columns is None:
            reason = f"the SQL is built at run time (`{node.id}` grows on line {line}): "
            return Cols(None, SQL_NOT_LITERAL, reason + result.problem, guess, holds)
        return Cols(result.columns)

    # Sites ---------------------------------------------------------------------------------

    def plan(self) -> Plan:
        plan = Plan()
        for info in self.files.values():
            if info.test:
                continue
            for node in walk(info.tree):
                if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
                    index = _int_index(node)
                    if index is not None:
                        site = self.site(info, node, index)
                        if site is not None:
                            plan.add(info.path, site)
                elif isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, ast.Tuple | ast.List):
                            self._check_unpack(plan, info, target, self.value(info, node.value))
                elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
                    target, iterable = node.target, node.iter
                    if (
                        isinstance(iterable, ast.Call)
                        and isinstance(iterable.func, ast.Name)
                        and iterable.func.id == "enumerate"
                        and iterable.args
                        and isinstance(target, ast.Tuple)
                        and len(target.elts) == 2
                    ):
                        target, iterable = target.elts[1], iterable.args[0]
                    if isinstance(target, ast.Tuple | ast.List):
                        self._check_unpack(plan, info, target, self._item(info, iterable, ()))
                elif isinstance(node, ast.Call):
                    func = node.func
                    name = getattr(func, "id", None) or getattr(func, "attr", None)
                    if name in JSON_CALLS:
                        for arg in node.args:
                            self._check_json(plan, info, arg)
                elif isinstance(node, ast.Return) and isinstance(node.value, ast.Dict | ast.List):
                    self._check_json(plan, info, node.value)
        self._fix_sql(plan)
        for info in self.files.values():
            named = plan.names.get(info.path)
            if named:
                seen: dict[str, int] = {}
                keys = plan.keys.setdefault(info.path, {})
                for node in sorted(_int_subscripts(info.tree), key=_start):
                    key = subscript_key(node)
                    seen[key] = seen.get(key, 0) + 1
                    name = named.get(info.span(node))
                    if name is not None:
                        keys[(key, seen[key])] = name
            edits = plan.literal_spans.get(info.path)
            if edits:
                counted: dict[str, int] = {}
                for node in sorted(_string_literals(info.tree), key=_start):
                    value = repr(node.value)
                    counted[value] = counted.get(value, 0) + 1
                    new = edits.get(info.span(node))
                    pieces = _changed_pieces(info.code(node), new) if new is not None else None
                    if pieces:
                        plan.sql.setdefault(info.path, {})[(value, counted[value])] = pieces
        return plan

    def _fix_sql(self, plan: Plan) -> None:
        """Name the unnamed and duplicate columns read from each SQL literal by editing it
        (``--unsafe-fixes``); without the option, say in the findings that it can."""
        for (path, span), reads in self._fixable.items():
            node, info = self._literals[(path, span)], self.files[path]
            fix = fix_sql(node.value, self.schema, positions={index for _, index, _ in reads})
            source = python_literal(info.code(node), fix.sql) if fix is not None else None
            for site_path, index, site in reads:
                if fix is None or source is None or fix.columns.columns is None:
                    plan.add(site_path, site)
                elif not self.unsafe_fixes:
                    hint = f"; `--unsafe-fixes` edits the SQL: `{_shortened(fix.sql)}`"
                    plan.add(site_path, replace(site, suggestion=site.suggestion + hint))
                else:
                    name = fix.columns.columns[index].name
                    relies = (*site.relies, path) if path != site_path else site.relies
                    plan.add(site_path, Site(site.span, name=name, relies=relies))
                    plan.literal_spans.setdefault(path, {})[span] = source

    def site(self, info: _File, node: ast.Subscript, index: int) -> Site | None:
        source = self.value(info, node.value)
        if source is None or source.kind != "row":
            return None
        span = info.span(node)
        code, value = info.code(node), info.code(node.value)
        cols = source.cols or Cols(None, UNKNOWN_COLUMNS, "the query is not known")
        rows = source.rows
        if cols.columns is None:
            guesses = cols.guess or ()
            guess = guesses[index].name if -len(guesses) <= index < len(guesses) else None
            suggestion = f'name the column by hand if you know it: `{value}["<column>"]`'
            if guess:
                suggestion = f'`{value}["{guess}"]`, {cols.holds or "if that is the column"}'
            if not rows.positions:
                return Site(
                    span,
                    code=DICT_ROW_POSITION,
                    message=f"`{code}` reads a row that only answers names by position: this "
                    f"raises KeyError ({cols.reason})",
                    suggestion=suggestion,
                )
            if cols.param is not None:
                return None  # inside a helper: each caller's rows are checked where read
            return Site(
                span,
                code=cols.code,
                message=f"`{code}` left positional: {cols.reason}",
                suggestion=suggestion,
            )
        columns = cols.columns
        if not -len(columns) <= index < len(columns):
            return Site(
                span,
                code=INDEX_OUT_OF_RANGE,
                message=f"`{code}` left positional: index {index} is past the {len(columns)} "
                "columns of the query",
                suggestion="check the SQL and the index; this raises IndexError today",
            )
        column = columns[index]
        names = [c.name for c in columns if c.name]
        if (column.name is None or names.count(column.name) > 1) and cols.literal and rows.names:
            finding = self._unnamed(span, code, value, column, names)
            self._fixable.setdefault(cols.literal, []).append(
                (info.path, index % len(columns), replace(finding, relies=rows.relies))
            )
            return None  # decided with every other read of that SQL literal (plan)
        return self._unnamed(span, code, value, column, names) or self._named(
            span, code, value, column, rows
        )

    def _unnamed(
        self, span: Span, code: str, value: str, column: Column, names: list[str | None]
    ) -> Site | None:
        """The finding for a column without a name of its own, or None if it has one."""
        if column.name is None:
            alias = _alias_for(column.sql)
            return Site(
                span,
                code=UNNAMED_COLUMN,
                message=f"`{code}` left positional: column `{column.sql}` has no name both "
                "drivers report",
                suggestion=f"alias it in the SQL (`{column.sql} AS {alias}`), then "
                f'`{value}["{alias}"]`',
            )
        if names.count(column.name) > 1:
            return Site(
                span,
                code=DUPLICATE_COLUMN,
                message=f"`{code}` left positional: more than one column is named `{column.name}`",
                suggestion=f"alias it apart in the SQL (`{column.sql} AS <unique name>`), then "
                f'`{value}["<unique name>"]`',
            )
        return None

    def _named(self, span: Span, code: str, value: str, column: Column, rows: Rows) -> Site:
        """A read of a named column: renamed when its rows answer names, else reported."""
        assert column.name is not None
        if not rows.names:
            named = f'{value}["{column.name}"]'
            why = rows.why or "rows may be plain tuples"
            return Site(
                span,
                code=PLAIN_ROWS,
                message=f"`{code}` left positional: rows may still be plain tuples, on which "
                f"`{named}` raises TypeError ({why})",
                suggestion="migrate the data layer in the same run (run claun-migrate on the "
                f"backend root, so pool-connections migrates it too), then this becomes `{named}`",
            )
        return Site(span, name=column.name, relies=rows.relies)

    def _check_unpack(self, plan: Plan, info: _File, target: ast.AST, source: Val | None) -> None:
        if source is None or source.kind != "row":
            return
        code = info.code(target)
        cols = source.cols
        fixed = [e for e in target.elts if not isinstance(e, ast.Starred)]  # type: ignore[attr-defined]
        starred = len(fixed) < len(target.elts)  # type: ignore[attr-defined]
        if not source.rows.positions:
            plan.add(
                info.path,
                Site(
                    info.span(target),
                    code=DICT_ROW_POSITION,
                    message=f"`{code}` unpacks a row that only answers names: this gives its "
                    "column names, not its values",
                    suggestion="read the values by name",
                ),
            )
            return
        if cols is None or cols.columns is None:
            return  # works unchanged with any tuple-like row
        names = [str(c.name or c.sql) for c in cols.columns]
        if len(fixed) == len(names) or (starred and len(fixed) <= len(names)):
            return
        plan.add(
            info.path,
            Site(
                info.span(target),
                code=ARITY_MISMATCH,
                message=f"`{code}` unpacks {len(fixed)} values but the query returns "
                f"{len(names)} columns",
                suggestion=f"unpack exactly: `{', '.join(names)}`",
            ),
        )

    def _check_json(self, plan: Plan, info: _File, node: ast.AST) -> None:
        if isinstance(node, ast.Dict):
            for value in node.values:
                self._check_json(plan, info, value)
            return
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            for element in node.elts:
                self._check_json(plan, info, element)
            return
        source = self.value(info, node)
        if source is None or source.kind not in ("row", "rows") or not source.rows.positions:
            return
        code = info.code(node)
        if source.kind == "rows":
            edit, shape = f"[dict(r) for r in {code}]", "an array of arrays"
        else:
            edit, shape = f"dict({code})", "an array"
        plan.add(
            info.path,
            Site(
                info.span(node),
                code=JSON_SHAPE,
                message=f"`{code}` is serialised as {shape}; named rows as dicts would change "
                "the JSON",
                suggestion=f"`{edit}` if objects are wanted (changes the API: each row becomes "
                "a JSON object)",
            ),
        )


# Helpers over ast --------------------------------------------------------------------------


def _changed_pieces(old: str, new: str) -> tuple[tuple[str, str], ...] | None:
    """The string tokens of the literal source ``old`` that differ in ``new``, old -> new."""
    try:
        before, after = (
            [
                t.string
                for t in tokenize.generate_tokens(io.StringIO(f"({s})").readline)
                if t.type == tokenize.STRING
            ]
            for s in (old, new)
        )
    except (tokenize.TokenError, SyntaxError):
        return None
    if len(before) != len(after):
        return None
    return tuple((a, b) for a, b in zip(before, after, strict=True) if a != b)


def _string_literals(tree: ast.AST) -> Iterator[ast.Constant]:
    for node in walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


def _constructor(info: _File, klass: ast.ClassDef) -> tuple[_File, ast.AST, bool] | None:
    """``Class(...)`` runs ``Class.__init__`` with the instance first."""
    for node in klass.body:
        if isinstance(node, _FUNCTIONS) and node.name == "__init__":
            return info, node, True
    return None


def _int_subscripts(tree: ast.AST) -> Iterator[ast.Subscript]:
    for node in walk(tree):
        if isinstance(node, ast.Subscript) and _int_index(node) is not None:
            yield node


class _Unwrap(ast.NodeTransformer):
    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        unwrapped = _placeholders_swapped(node)
        return unwrapped if unwrapped is node else self.visit(unwrapped)


def subscript_key(node: ast.Subscript) -> str:
    """What a row read is, whatever the other codemods of the run did around it: its
    expression without positions, the shipped ``sql_for`` wrapper taken off."""
    import copy

    return ast.dump(_Unwrap().visit(copy.deepcopy(node)), annotate_fields=False)


def key_of_code(code: str) -> str | None:
    """:func:`subscript_key` of a subscript expression's source text."""
    try:
        node = ast.parse(f"(\n{code}\n)", mode="eval").body
    except SyntaxError:
        return None
    return subscript_key(node) if isinstance(node, ast.Subscript) else None


def _in_same_block_as(info: _File, statement: ast.AST, use: set[int]) -> bool:
    """Whether ``statement`` runs on every path to a use with these ancestors: its block
    holds one of them."""
    holder = info.parents.get(statement)
    for name in ("body", "orelse", "finalbody"):
        block = getattr(holder, name, None)
        if isinstance(block, list) and any(s is statement for s in block):
            return any(id(s) in use for s in block)
    return False


def _sets_row_factory(info: _File, use: ast.AST, conn: ast.AST) -> bool:
    """``conn.row_factory = sqlite3.Row`` in the function before ``use``."""
    if not isinstance(conn, ast.Name):
        return False
    for node in _own_nodes(info.function_of(use)):
        if (
            isinstance(node, ast.Assign)
            and _start(node) < _start(use)
            and any(
                isinstance(t, ast.Attribute)
                and t.attr == "row_factory"
                and isinstance(t.value, ast.Name)
                and t.value.id == conn.id
                for t in node.targets
            )
            and getattr(node.value, "attr", None) == "Row"
        ):
            return True
    return False


def _placeholders_swapped(node: ast.AST) -> ast.AST:
    """``sql.replace("%s", "?")`` and the shipped ``sql_for(conn, sql)``: the same
    statement, so the same columns (``sql``)."""
    if (
        isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "sql_for"
        and len(node.args) == 2
    ):
        return node.args[1]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "replace"
        and len(node.args) == 2
        and all(isinstance(a, ast.Constant) and a.value in ("%s", "?") for a in node.args)
    ):
        return node.func.value
    return node


def _changed_in_place(info: _File, function: ast.AST, name: str) -> str:
    """How the list in ``name`` gets items put into it in ``function`` (``rows.append``)."""
    for node in _own_nodes(function):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("append", "extend", "insert")
            and isinstance(node.value, ast.Name)
            and node.value.id == name
        ):
            return f"{name}.{node.attr}"
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id == name
        ):
            return f"{name}[...] ="
    return ""


def _neutral(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and node.value is None:
        return True
    return isinstance(node, ast.List | ast.Tuple) and not node.elts


def _keyword_name(call: ast.Call, keyword: str) -> str:
    for item in call.keywords:
        if item.arg == keyword:
            value = item.value
            return getattr(value, "attr", None) or getattr(value, "id", None) or "?"
    return ""


def _factory_rows(factory: str) -> Rows:
    if factory == "RealDictCursor":
        return Rows(True, False)
    if factory == "DictCursor":
        return Rows(True, True)
    if factory == "RowCursor":
        return ROW
    if not factory:
        return Rows(False, True, why="the pool is given no `cursor_factory`: rows are tuples")
    return Rows(None, True, why=f"the cursor factory `{factory}` is not one this analysis knows")


def _argument(call: ast.Call, position: int, keyword: str) -> ast.AST | None:
    for item in call.keywords:
        if item.arg == keyword:
            return item.value
    positional = [a for a in call.args if not isinstance(a, ast.Starred)]
    return positional[position] if position < len(positional) else None


def _unwrap_with(node: ast.AST) -> ast.AST:
    """``closing(x)``/``borrowed(x)`` in a ``with``: the value is ``x``."""
    if (
        isinstance(node, ast.Call)
        and len(node.args) == 1
        and (getattr(node.func, "id", None) or getattr(node.func, "attr", None))
        in ("closing", "borrowed")
    ):
        return node.args[0]
    return node


def _bind(function: ast.AST, call: ast.Call, method: bool) -> dict[str, ast.AST] | None:
    """Parameter name -> argument expression (defaults included) for ``call``; None when the
    call passes ``*args``/``**kwargs``."""
    args = function.args  # type: ignore[attr-defined]
    positional = [*args.posonlyargs, *args.args]
    if method:
        positional = positional[1:]
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    ):
        return None
    bound: dict[str, ast.AST] = {}
    defaults = args.defaults
    for param, default in zip(
        positional[len(positional) - len(defaults) :], defaults, strict=False
    ):
        bound[param.arg] = default
    for param, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if default is not None:
            bound[param.arg] = default
    for param, arg in zip(positional, call.args, strict=False):
        bound[param.arg] = arg
    for keyword in call.keywords:
        bound[keyword.arg] = keyword.value  # type: ignore[index]
    return bound


def _guard_params(info: _File, function: ast.AST) -> set[str]:
    """Parameters of ``function`` that an ``if`` tests directly (``if fetch:``)."""
    params = {
        a.arg for a in (*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs)
    }  # type: ignore[attr-defined]
    found = set()
    for node in _own_nodes(function):
        if isinstance(node, ast.If | ast.IfExp):
            name = _tested(node.test)
            if name in params:
                found.add(name)
    return found


def _tested(test: ast.AST) -> str | None:
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test = test.operand
    return test.id if isinstance(test, ast.Name) else None


def _excluded(info: _File, node: ast.AST, function: ast.AST, consts: Mapping[str, bool]) -> bool:
    """Whether ``node`` sits in a branch that ``consts`` (parameter values) rule out, or after
    an ``if`` whose taken branch always returns."""
    if not consts:
        return False
    child = node
    while child in info.parents and child is not function:
        parent = info.parents[child]
        if isinstance(parent, ast.If) and child is not parent.test:
            taken = _taken(parent, consts)
            if taken is not None and not any(child is s for s in taken):
                return True
        for name in ("body", "orelse", "finalbody"):
            block = getattr(parent, name, None)
            if isinstance(block, list) and any(child is s for s in block):
                for earlier in block[: next(i for i, s in enumerate(block) if s is child)]:
                    taken = _taken(earlier, consts) if isinstance(earlier, ast.If) else None
                    if taken and isinstance(taken[-1], ast.Return | ast.Raise):
                        return True
        child = parent
    return False


def _taken(statement: ast.If, consts: Mapping[str, bool]) -> list[ast.stmt] | None:
    """The branch of ``if param:`` that ``consts`` takes, or None if it does not decide."""
    name = _tested(statement.test)
    if name not in consts:
        return None
    truth = consts[name] != isinstance(statement.test, ast.UnaryOp)
    return statement.body if truth else statement.orelse


def _ancestors(info: _File, node: ast.AST) -> list[ast.AST]:
    chain = []
    while node in info.parents:
        node = info.parents[node]
        chain.append(node)
    return chain


def _inside(info: _File, node: ast.AST, outer: ast.AST) -> bool:
    return any(a is outer for a in _ancestors(info, node))


def _statement(info: _File, node: ast.AST) -> ast.AST:
    while not isinstance(node, ast.stmt) and node in info.parents:
        node = info.parents[node]
    return node


def _comprehension_binding(info: _File, name: ast.Name) -> ast.comprehension | None:
    """The comprehension ``for`` binding ``name`` where it is read, if any."""
    child: ast.AST = name
    while child in info.parents:
        parent = info.parents[child]
        if isinstance(parent, _FUNCTIONS | ast.Lambda | ast.ClassDef):
            return None
        if isinstance(parent, _COMPREHENSIONS):
            for generator in parent.generators:
                if generator is child:
                    break  # the iterable of the first generator belongs outside
                if any(
                    isinstance(n, ast.Name) and n.id == name.id for n in ast.walk(generator.target)
                ):
                    return generator
        child = parent
    return None


def _bindings(info: _File, function: ast.AST, name: str) -> list[ast.AST]:
    """Nodes binding ``name`` in ``function``'s own code (targets, parameters)."""
    index = info.bindings.get(id(function))
    if index is None:
        index = info.bindings[id(function)] = _binding_index(info, function)
    return index.get(name, [])


def _binding_index(info: _File, function: ast.AST) -> dict[str, list[ast.AST]]:
    found: dict[str, list[ast.AST]] = {}
    if isinstance(function, _FUNCTIONS | ast.Lambda):
        args = function.args
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
            if arg is not None:
                found.setdefault(arg.arg, []).append(arg)
    todo = [(child, False) for child in ast.iter_child_nodes(function)]
    while todo:
        node, in_comprehension = todo.pop()
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            if not in_comprehension:
                found.setdefault(node.id, []).append(node)
        elif isinstance(node, ast.alias):
            found.setdefault(node.asname or node.name.split(".")[0], []).append(node)
        elif isinstance(node, _FUNCTIONS | ast.ClassDef):
            found.setdefault(node.name, []).append(node)
        if not isinstance(node, _FUNCTIONS | ast.ClassDef | ast.Lambda):
            inner = in_comprehension or isinstance(node, _COMPREHENSIONS)
            todo.extend((child, inner) for child in ast.iter_child_nodes(node))
    for nodes in found.values():
        nodes.sort(key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))
    return found


def _bindings_except_param(info: _File, function: ast.AST, name: str) -> list[ast.AST]:
    return [b for b in _bindings(info, function, name) if not isinstance(b, ast.arg)]


def _assigned(info: _File, target: ast.AST) -> ast.AST | None:
    parent = info.parents.get(target)
    if isinstance(parent, ast.Assign) and target in parent.targets:
        return parent.value
    if isinstance(parent, ast.AnnAssign) and parent.target is target:
        return parent.value
    return None


def _reaching(info: _File, use: ast.AST, bindings: list[ast.AST]) -> list[ast.AST]:
    """The bindings that may reach ``use``, found block by block upward from it: statements
    before it in each enclosing block, nearest first, up to one that binds on every path
    (an ``if`` binds when both its branches do); later bindings inside a loop around ``use``
    reach it again on the next turn."""
    if not bindings:
        return []
    inside: dict[int, list[ast.AST]] = {}
    for binding in bindings:
        if not isinstance(binding, ast.arg):
            statement = _statement(info, binding)
            for holder in [binding, statement, *_ancestors(info, statement)]:
                inside.setdefault(id(holder), []).append(binding)
    here = _start(use)
    reaching: list[ast.AST] = []

    def scan(block: Sequence[ast.AST]) -> bool:
        """Add the bindings of ``block`` (latest first); True once one binds on every path."""
        for statement in reversed(block):
            found = [b for b in inside.get(id(statement), []) if b not in reaching]
            reaching.extend(sorted(found, key=_start, reverse=True))
            if found and _binds_always(statement, inside):
                return True
        return False

    child: ast.AST = _statement(info, use)
    done = False
    while not done and child in info.parents:
        parent = info.parents[child]
        if isinstance(parent, ast.For | ast.AsyncFor | ast.With | ast.AsyncWith) and any(
            child is s for s in parent.body
        ):
            heads = [b for b in inside.get(id(parent), []) if _start(b) < _start(parent.body[0])]
            reaching.extend(b for b in heads if b not in reaching)
            done = bool(heads)  # the loop or `with` target is bound before its body runs
        if isinstance(parent, ast.Try | ast.TryStar):
            if isinstance(child, ast.ExceptHandler) or any(child is s for s in parent.finalbody):
                scan(parent.body)  # may have run in part: nothing it binds is certain
                if any(child is s for s in parent.finalbody):
                    scan(parent.orelse)
                    for handler in parent.handlers:
                        scan(handler.body)
            elif any(child is s for s in parent.orelse):
                done = scan(parent.body)
        for name in ("body", "orelse", "finalbody"):
            block = getattr(parent, name, None)
            if not done and isinstance(block, list) and any(child is s for s in block):
                index = next(i for i, s in enumerate(block) if s is child)
                done = scan(block[:index])
                break
        if isinstance(parent, _FUNCTIONS | ast.Lambda | ast.Module):
            break
        child = parent
    if not done:
        reaching.extend(b for b in bindings if isinstance(b, ast.arg))
    loops = [a for a in _ancestors(info, use) if isinstance(a, ast.For | ast.While | ast.AsyncFor)]
    for binding in bindings:
        if binding in reaching or isinstance(binding, ast.arg) or _start(binding) <= here:
            continue
        if any(_inside(info, binding, loop) for loop in loops):
            reaching.append(binding)
    return reaching


def _binds_always(statement: ast.AST, inside: Mapping[int, list[ast.AST]]) -> bool:
    """Whether running ``statement`` binds one of the bindings on every path through it."""
    if isinstance(statement, ast.If):
        return any(_binds_always(s, inside) for s in statement.body) and any(
            _binds_always(s, inside) for s in statement.orelse
        )
    if isinstance(statement, ast.With | ast.AsyncWith):
        return any(_binds_always(s, inside) for s in statement.body) or any(
            id(item) in inside for item in statement.items
        )
    if isinstance(statement, ast.For | ast.AsyncFor | ast.While | ast.Try | ast.TryStar):
        return False
    return id(statement) in inside


def plan_for(
    sources: Mapping[str, str],
    schema: Mapping[str, Sequence[str]],
    *,
    fallback_rows: Rows | None = None,
    pending: bool = True,
    unsafe_fixes: bool = False,
) -> Plan:
    """The named-rows plan of a run."""
    analysis = Analysis(
        sources, schema, fallback_rows=fallback_rows, pending=pending, unsafe_fixes=unsafe_fixes
    )
    return analysis.plan()
