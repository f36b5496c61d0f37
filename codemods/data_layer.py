"""The data-layer model: where each connection comes from and where it goes, found by data flow.

Every codemod asks this module which code opens connections; nothing here depends on how a
backend names things. Over all the files of a run (Python's ``ast``, which is fast) it finds:

- *connects*: ``psycopg2.connect(...)`` and ``sqlite3.connect(...)`` calls, with any arguments;
- *connectors*: functions whose result is a new connection (returned directly, through a local
  name, or as the first element of a tuple such as ``(conn, cursor)``), and functions that
  return another connector's result, across modules (imports are resolved);
- *sites*: every place in a function where such a connection is opened and released: assigned
  and closed in ``finally`` (guarded or not), in ``except``, before returns or never; ``with``
  blocks and ``contextlib.closing``.

A source of connections (a connector, or a connect call written inline in a function) is
migrated only when every site that uses it can give its connection back on every path; then
each site gets one plan (rewrite the ``finally`` close, or wrap the rest of the block in
``try``/``finally``, or borrow in the ``with``) and the result is a plan of edits by source
position that the pool codemod applies. Sources that cannot be migrated are findings.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

from claun_migrate.codemods._support import GENERATED, is_pristine

POSTGRES, SQLITE, POOLED = "postgres", "sqlite", "pooled"
DRIVERS = {"psycopg2": POSTGRES, "sqlite3": SQLITE}
RUNTIME_FILES = ("db_pool.py", "db_rows.py", "db_sqlite.py")
RUNTIME_MODULES = {name[:-3] for name in RUNTIME_FILES}

Position = tuple[int, int]
"""(line, column) of a node, 1-based line and 0-based column in characters (libcst's)."""


@dataclass(frozen=True)
class Edit:
    """One change at a source position; the pool codemod knows how to make each ``kind``.

    - ``connect``: the connect call at ``at`` takes its connection from the runtime
      (``arg``: the driver);
    - ``release``: the ``conn.close()`` call at ``at`` gives the connection back (``putconn``);
    - ``drop``: the statement holding the call at ``at`` goes (another path gives it back);
    - ``wrap``: the statements after the one at ``at`` (up to the one at ``end``, which goes,
      or to the end of the block) go into ``try:``/``finally: putconn(arg)``;
    - ``borrow``: the ``with`` item whose context expression is at ``at`` borrows the
      connection (``closing(x)`` -> ``borrowed(x)``; ``x`` -> ``borrowed(x) as c, c``);
    - ``sql``: the SQL argument at ``at`` becomes ``sql_for(arg, sql)`` (PostgreSQL SQL that
      must also run on SQLite);
    - ``row-factory``: the ``conn.row_factory = sqlite3.Row`` statement at ``at`` goes (the
      shipped row answers names and positions);
    - ``rename``: the name at ``at`` becomes ``arg`` (a connection opened again under the name
      of one still in use gets a name of its own).
    """

    kind: str
    at: Position
    arg: str = ""
    end: Position | None = None


@dataclass(frozen=True)
class Problem:
    """A site or source the model will not migrate, and what a person should do."""

    at: Position
    code: str
    message: str
    hint: str
    pending: bool = True


@dataclass(frozen=True)
class Rows:
    """What rows fetched from a connection answer after the run: ``row["name"]`` (``names``;
    None when unknown) and ``row[0]`` (``positions``); ``relies``: the files whose migration in
    this run makes them so; ``why``: why names may not work."""

    names: bool | None
    positions: bool
    relies: tuple[str, ...] = ()
    why: str = ""


DICT_CURSORS = {"RealDictCursor": (True, False), "DictCursor": (True, True)}


@dataclass
class _Source:
    """Something that hands out new connections: a connector function or an inline connect."""

    key: tuple[str, str]
    path: str
    at: Position
    drivers: set[str] = field(default_factory=set)
    connects: list[tuple[Position, str, str]] = field(default_factory=list)
    """(where, driver, the ``cursor_factory``/``factory`` it passes, by name, or "")"""
    row_factories: list[Position] = field(default_factory=list)
    tuple_index: int | None = None
    sites: list[_Site] = field(default_factory=list)
    calls: list[_Source] = field(default_factory=list)
    uses: int = 0
    problems: list[Problem] = field(default_factory=list)
    migrate: bool = True


@dataclass
class _Site:
    path: str
    at: Position
    var: str
    function: ast.AST | None = None
    edits: list[Edit] = field(default_factory=list)
    problem: Problem | None = None


@dataclass
class Model:
    """The result: edits and problems by file, and which files' rows become the shipped Row."""

    edits: dict[str, list[Edit]] = field(default_factory=dict)
    problems: dict[str, list[Problem]] = field(default_factory=dict)
    relies: dict[str, list[str]] = field(default_factory=dict)
    shipped_rows: list[str] = field(default_factory=list)
    connections: dict[str, dict[Position, Rows]] = field(default_factory=dict)
    """What the rows of each connection opened at a position answer once this run is done."""
    connections_now: dict[str, dict[Position, Rows]] = field(default_factory=dict)
    """The same, before the run (nothing migrated)."""
    home: str | None = None
    sqlite: bool = False

    def as_kwargs(self) -> dict[str, object]:
        """Plain, picklable constructor arguments for the codemods (and their cache key)."""
        return {
            "plan": {path: tuple(edits) for path, edits in sorted(self.edits.items())},
            "problems": {path: tuple(p) for path, p in sorted(self.problems.items())},
            "relies": {path: tuple(r) for path, r in sorted(self.relies.items())},
            "home": self.home,
        }


# Positions -------------------------------------------------------------------------------


_PHYSICAL_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


class _Lines:
    """A file's lines as ast numbers them; ast gives UTF-8 byte columns, libcst characters."""

    def __init__(self, text: str) -> None:
        self.lines = _PHYSICAL_LINE.findall(text)

    def at(self, node: ast.AST) -> Position:
        line, col = node.lineno, node.col_offset  # type: ignore[attr-defined]
        return line, self._column(line, col)

    def _column(self, line: int, col: int) -> int:
        text = self.lines[line - 1] if line - 1 < len(self.lines) else ""
        if text.isascii():
            return col
        return len(text.encode("utf-8")[:col].decode("utf-8", "replace"))

    def segment(self, node: ast.AST) -> str | None:
        """The source of ``node`` (as ``ast.get_source_segment``, without splitting the whole
        file again for each node)."""
        start, end = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
        if start is None or end is None or end > len(self.lines):
            return None
        first = self._column(start, node.col_offset)  # type: ignore[attr-defined]
        last = self._column(end, node.end_col_offset)  # type: ignore[attr-defined]
        if start == end:
            return self.lines[start - 1][first:last]
        return "".join(
            [
                self.lines[start - 1][first:],
                *self.lines[start : end - 1],
                self.lines[end - 1][:last],
            ]
        )


_TOKENS = ("psycopg2", "sqlite3", "connect", "execute", "fetch", "cursor", "close(", "getconn")
_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]+)"
    r"|import[ \t]+([^\n#;]+))",
    re.MULTILINE,
)


def _imported(path: str, text: str, modules: _Modules) -> set[str]:
    """The run's files that ``text`` imports, read from its import lines (a line that only
    looks like one, in a string, adds a file: harmless)."""
    found: set[str | None] = set()
    for dots, module, names, plain in _IMPORT.findall(text):
        if plain:
            for name in plain.split(","):
                found.add(modules.resolve(path, name.split()[0] if name.split() else "", 0))
            continue
        found.add(modules.resolve(path, module or None, len(dots)))
        for name in names.strip("()").split(","):
            if name.split():
                dotted = ".".join(filter(None, [module, name.split()[0]]))
                found.add(modules.resolve(path, dotted, len(dots)))
    return {f for f in found if f is not None}


def relevant(sources: Mapping[str, str]) -> set[str]:
    """The Python files the analyses must read: those that touch a database (a driver, a
    connect, a cursor, a fetch), then, to a fixed point, the files that import one of them (a
    connector's or a helper's callers), then every file those import (where their rows may go:
    a serialiser, a model's ``from_row``). Any other file can neither open, release nor read a
    connection's rows, so a big tree with a small data layer is parsed only where it matters
    (memoised for the same ``sources`` object)."""
    cached = _RELEVANT.get(id(sources))
    if cached is not None and cached[0] is sources:
        return cached[1]
    python = {p: t for p, t in sources.items() if p.endswith(".py")}
    modules = _Modules(list(python))
    imports = {p: _imported(p, t, modules) for p, t in python.items()}
    chosen = {p for p, t in python.items() if any(token in t for token in _TOKENS)}
    while True:  # callers
        new = {p for p in python.keys() - chosen if imports[p] & chosen}
        if not new:
            break
        chosen |= new
    todo = list(chosen)
    while todo:  # and what they call
        for target in imports[todo.pop()] - chosen:
            chosen.add(target)
            todo.append(target)
    _RELEVANT.clear()
    _RELEVANT[id(sources)] = (sources, chosen)
    return chosen


_RELEVANT: dict[int, tuple[Mapping[str, str], set[str]]] = {}


def parse(text: str) -> ast.Module:
    """``ast.parse(text)``, once per text for the whole run (the codemods' gathers share it);
    raises ``SyntaxError``/``ValueError`` as it does."""
    if text not in _PARSED:
        if len(_PARSED) > 4096:
            _PARSED.clear()
            _NODES.clear()
        _PARSED[text] = ast.parse(text)
    return _PARSED[text]


_PARSED: dict[str, ast.Module] = {}


# Module names and imports ----------------------------------------------------------------


def _module_names(path: str) -> list[str]:
    parts = path[:-3].replace(os.sep, "/").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return [".".join(parts[i:]) for i in range(len(parts)) if parts[i:]]


class _Modules:
    """Resolve an import in one file of the run to another file of the run."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = set(paths)
        self.by_name: dict[str, list[str]] = {}
        for path in paths:
            for name in _module_names(path):
                self.by_name.setdefault(name, []).append(path)

    def resolve(self, importer: str, module: str | None, level: int) -> str | None:
        if level:
            base = os.path.dirname(importer)
            for _ in range(level - 1):
                base = os.path.dirname(base)
            target = os.path.join(base, *(module or "").split(".")) if module else base
            for candidate in (target + ".py", os.path.join(target, "__init__.py")):
                if candidate in self.paths:
                    return candidate
            return None
        found = self.by_name.get(module or "", [])
        if not found:
            return None

        def shared(path: str) -> int:
            return len(os.path.commonpath([os.path.dirname(importer), os.path.dirname(path)]))

        return max(sorted(found), key=shared)


def _imports(tree: ast.Module, path: str, modules: _Modules) -> dict[str, tuple[str, str | None]]:
    """Local name -> (file, attribute) for names bound by imports of the run's files
    (attribute None: the name is the module itself)."""
    bound: dict[str, tuple[str, str | None]] = {}
    for node in walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                sub = modules.resolve(
                    path, ".".join(filter(None, [node.module, alias.name])), node.level
                )
                if sub is not None:
                    bound[alias.asname or alias.name] = (sub, None)
                    continue
                owner = modules.resolve(path, node.module, node.level)
                if owner is not None:
                    bound[alias.asname or alias.name] = (owner, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                target = modules.resolve(path, alias.name, 0)
                if target is not None and alias.asname:
                    bound[alias.asname] = (target, None)
    return bound


# Per-function analysis -------------------------------------------------------------------


def _functions(tree: ast.Module) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _own_nodes(function: ast.AST) -> list[ast.AST]:
    """The nodes of ``function`` without those of functions and classes nested in it (listed
    once per node: the analyses ask for the same function many times)."""
    cached = _NODES.get(("own", id(function)))
    if cached is not None and cached[0] is function:
        return cached[1]
    found: list[ast.AST] = []
    todo = list(ast.iter_child_nodes(function))
    while todo:
        node = todo.pop()
        found.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            todo.extend(ast.iter_child_nodes(node))
    _NODES[("own", id(function))] = (function, found)
    return found


def walk(tree: ast.AST) -> list[ast.AST]:
    """``list(walk(tree))``, listed once per tree."""
    cached = _NODES.get(("walk", id(tree)))
    if cached is None or cached[0] is not tree:
        cached = _NODES[("walk", id(tree))] = (tree, list(ast.walk(tree)))
    return cached[1]


_NODES: dict[tuple[str, int], tuple[ast.AST, list[ast.AST]]] = {}


def _driver_names(tree: ast.Module) -> tuple[dict[str, str], dict[str, str]]:
    """Names bound to the driver modules (``import psycopg2 as db``) and to their ``connect``
    (``from psycopg2 import connect``), with the driver each stands for."""
    modules = {name: driver for name, driver in DRIVERS.items()}
    connects: dict[str, str] = {}
    for node in walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in DRIVERS and alias.asname:
                    modules[alias.asname] = DRIVERS[alias.name]
        elif isinstance(node, ast.ImportFrom) and node.module in DRIVERS and not node.level:
            for alias in node.names:
                if alias.name == "connect":
                    connects[alias.asname or alias.name] = DRIVERS[node.module]
    return modules, connects


def _module_defs(body: list[ast.stmt]) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    """Functions defined at module level, also under ``if``/``try``/``with`` there."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node
        elif isinstance(node, ast.If | ast.Try | ast.With):
            for block in _blocks(node):
                yield from _module_defs(block)


_RELEASERS: dict[str, int] = {}
"""Functions of the run that close one of their parameters (name -> its position), such as
``close_db(cur, conn)``; set while a model is built."""


def _is_close(node: ast.AST, var: str) -> bool:
    """``var.close()`` as a statement, or a call of a releaser with ``var`` in its place."""
    if (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and node.value.func.id in _RELEASERS
    ):
        index = _RELEASERS[node.value.func.id]
        args = node.value.args
        return index < len(args) and isinstance(args[index], ast.Name) and args[index].id == var
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and not node.value.args
        and isinstance(node.value.func, ast.Attribute)
        and node.value.func.attr == "close"
        and isinstance(node.value.func.value, ast.Name)
        and node.value.func.value.id == var
    )


def _closes(nodes: list[ast.stmt] | ast.AST, var: str) -> list[ast.Expr]:
    roots = nodes if isinstance(nodes, list) else [nodes]
    found = []
    for root in roots:
        for node in ast.walk(root):
            if _is_close(node, var):
                found.append(node)  # type: ignore[arg-type]
    return found


def _is_plain_close(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
    )


def _releasers(files: Mapping[str, _FileAnalysis]) -> dict[str, tuple[int, str, list[Position]]]:
    """Module-level functions that close a parameter and do nothing else with it that could
    keep it: name -> (parameter position, file, positions of its ``close()`` calls)."""
    found: dict[str, tuple[int, str, list[Position]]] = {}
    for path, info in files.items():
        for name, function in info.defined.items():
            for index, param in enumerate(function.args.args):
                closes = [c for c in ast.walk(function) if _is_close(c, param.arg)]
                if not closes or not _is_plain_close(closes[0]):
                    continue
                parents = _parents(function)
                uses = [
                    n for n in _own_nodes(function) if isinstance(n, ast.Name) and n.id == param.arg
                ]
                if all(
                    isinstance(parents.get(n), ast.Attribute | ast.If | ast.Compare) for n in uses
                ):
                    positions = [info.lines.at(c.value) for c in closes]  # type: ignore[attr-defined]
                    found[name] = (index, path, positions)
    return found


def _guarded_close(statement: ast.stmt, var: str) -> bool:
    """``var.close()``, or ``if var: var.close()`` / ``if var is not None: ...``."""
    if _is_close(statement, var):
        return True
    if isinstance(statement, ast.If) and not statement.orelse and len(statement.body) == 1:
        test = statement.test
        guard = (isinstance(test, ast.Name) and test.id == var) or (
            isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name)
            and test.left.id == var
            and isinstance(test.ops[0], ast.IsNot)
        )
        return guard and _is_close(statement.body[0], var)
    return False


def _blocks(node: ast.AST) -> Iterator[list[ast.stmt]]:
    for name in ("body", "orelse", "finalbody"):
        block = getattr(node, name, None)
        if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
            yield block
    for handler in getattr(node, "handlers", []) or []:
        yield handler.body
    for case in getattr(node, "cases", []) or []:
        yield case.body


def _parents(function: ast.AST) -> dict[ast.AST, ast.AST]:
    parents: dict[ast.AST, ast.AST] = {}
    for node in _own_nodes(function):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    for child in ast.iter_child_nodes(function):
        parents[child] = function
    return parents


def _block_of(statement: ast.stmt, parents: dict[ast.AST, ast.AST]) -> list[ast.stmt] | None:
    parent = parents.get(statement)
    if parent is None:
        return None
    for block in _blocks(parent):
        if any(s is statement for s in block):
            return block
    return None


class _FileAnalysis:
    """Connection sources and sites of one file."""

    def __init__(self, path: str, text: str, tree: ast.Module, model: _Analysis) -> None:
        self.path, self.tree, self.model = path, tree, model
        self.lines = _Lines(text)
        self.imports = _imports(tree, path, model.modules)
        self.defined: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        self.twice: set[str] = set()
        for node in _module_defs(tree.body):
            if node.name in self.defined:
                self.twice.add(node.name)
            self.defined[node.name] = node
        self.driver_modules, self.driver_connects = _driver_names(tree)
        self.renamed: dict[Position, str] = {}  # a reopening call -> its connection's new name

    def connect_driver(self, call: ast.AST) -> str | None:
        """The driver of a ``psycopg2.connect(...)``/``sqlite3.connect(...)`` call, however
        the module or its ``connect`` was imported."""
        if not isinstance(call, ast.Call):
            return None
        func = call.func
        if isinstance(func, ast.Name):
            return self.driver_connects.get(func.id)
        if (
            isinstance(func, ast.Attribute)
            and func.attr == "connect"
            and isinstance(func.value, ast.Name)
        ):
            return self.driver_modules.get(func.value.id)
        return None

    def source_of(self, call: ast.AST) -> tuple[str, object] | None:
        """What a call expression hands out: ("connect", driver) or ("connector", key)."""
        driver = self.connect_driver(call)
        if driver is not None:
            return "connect", driver
        if not isinstance(call, ast.Call):
            return None
        func = call.func
        if isinstance(func, ast.Name):
            if func.id in self.defined:
                return "connector", (self.path, func.id)
            if func.id in self.imports and self.imports[func.id][1] is not None:
                owner, name = self.imports[func.id]
                return "connector", (owner, name)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            bound = self.imports.get(func.value.id)
            if bound is not None and bound[1] is None:
                return "connector", (bound[0], func.attr)
        return None

    def returned_source(
        self, function: ast.FunctionDef | ast.AsyncFunctionDef
    ) -> list[tuple[ast.Call, int | None]]:
        """The calls whose connection ``function`` returns (with the tuple index, if any)."""
        assigned: dict[str, list[ast.Call]] = {}
        for node in _own_nodes(function):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and isinstance(node.value, ast.Call):
                    assigned.setdefault(target.id, []).append(node.value)
        found: list[tuple[ast.Call, int | None]] = []
        for node in _own_nodes(function):
            if not isinstance(node, ast.Return) or node.value is None:
                continue
            values = [(node.value, None)]
            if isinstance(node.value, ast.Tuple) and node.value.elts:
                values = [(node.value.elts[0], 0)]
            for value, index in values:
                calls = [value] if isinstance(value, ast.Call) else []
                if isinstance(value, ast.Name):
                    calls = assigned.get(value.id, [])
                found += [(call, index) for call in calls]
        return found


class _Analysis:
    def __init__(self, sources: Mapping[str, str]) -> None:
        self.files: dict[str, _FileAnalysis] = {}
        trees: dict[str, tuple[str, ast.Module]] = {}
        for path in sorted(relevant(sources)):
            try:
                trees[path] = (sources[path], parse(sources[path]))
            except (SyntaxError, ValueError):
                continue
        self.modules = _Modules(list(trees))
        for path, (text, tree) in trees.items():
            if not is_test_file(path):
                self.files[path] = _FileAnalysis(path, text, tree, self)
        self.sources: dict[tuple[str, str], _Source] = {}

    # 1. connectors: functions returning a new connection, to a fixed point
    def find_connectors(self) -> None:
        changed = True
        while changed:
            changed = False
            for path, info in self.files.items():
                for function in _functions(info.tree):
                    key = (path, f"{function.name}@{function.lineno}")
                    if key in self.sources:
                        continue
                    drivers: set[str] = set()
                    connects = []
                    calls = []
                    index = None
                    for call, tuple_index in info.returned_source(function):
                        if isinstance(call.func, ast.Attribute) and call.func.attr == "getconn":
                            drivers.add(POOLED)  # a hand-made pool: kept, never re-pooled
                            continue
                        found = self.resolve(info, call)
                        if found is None:
                            continue
                        if isinstance(found, str):
                            drivers.add(found)
                            connects.append((info.lines.at(call), found, _has_factory(call)))
                        else:
                            drivers |= found.drivers
                            calls.append(found)
                        index = tuple_index
                    if drivers - {POOLED}:
                        source = _Source(key, path, info.lines.at(function), drivers)
                        source.connects, source.calls, source.tuple_index = connects, calls, index
                        source.row_factories = _row_factories(function, info)
                        self.sources[key] = source
                        changed = True

    def resolve(self, info: _FileAnalysis, call: ast.AST) -> str | _Source | None:
        """What ``call`` hands out: a connect call's driver, or the connector it calls."""
        what = info.source_of(call)
        if what is None:
            return None
        kind, value = what
        return str(value) if kind == "connect" else self.connector(value)  # type: ignore[arg-type]

    def connector(self, key: tuple[str, str]) -> _Source | None:
        path, name = key
        info = self.files.get(path)
        if info is None or name not in info.defined:
            return None
        return self.sources.get((path, f"{name}@{info.defined[name].lineno}"))

    # 2. sites: where each source's connections are opened and released
    def find_sites(self) -> None:
        for path, info in self.files.items():
            scopes: list[ast.AST] = [info.tree, *_functions(info.tree)]  # module code too
            for function in scopes:
                name = getattr(function, "name", "<module>")
                own = (path, f"{name}@{getattr(function, 'lineno', 0)}")
                connector = self.sources.get(own)
                returned = (
                    {id(c) for c, _ in info.returned_source(function)} if connector else set()
                )
                parents = _parents(function)
                for node in _own_nodes(function):
                    if not isinstance(node, ast.Call):
                        continue
                    found = self.resolve(info, node)
                    if found is None or isinstance(found, str) and id(node) in returned:
                        continue
                    source = self._inline(info, node, found) if isinstance(found, str) else found
                    source.uses += 1
                    if id(node) in returned:
                        continue
                    site = _site(info, function, node, parents, source)
                    if site is not None:
                        source.sites.append(site)
        for source in self.sources.values():  # a connection renamed by its enclosing site
            for site in source.sites:
                new = self.files[site.path].renamed.get(site.at)
                if new is not None and site.var:
                    old, site.var = site.var, new
                    site.edits = [
                        replace(e, arg=new) if e.kind in ("wrap", "sql") and e.arg == old else e
                        for e in site.edits
                    ]

    def unfollowed(self) -> None:
        """Block PostgreSQL connectors referred to where the model cannot follow the connection
        (called through an object, passed as a value, defined twice): a connection it cannot
        see given back must not come from the pool."""
        names: dict[str, dict[str, int]] = {}
        attributes: dict[str, dict[tuple[str, str], int]] = {}
        for path, info in self.files.items():
            here, dotted = names.setdefault(path, {}), attributes.setdefault(path, {})
            for node in walk(info.tree):
                if isinstance(node, ast.Name):
                    here[node.id] = here.get(node.id, 0) + 1
                elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    key = (node.value.id, node.attr)
                    dotted[key] = dotted.get(key, 0) + 1

        def references(owner: str, name: str) -> int:
            """Mentions of function ``name`` of file ``owner``: in that file, under the names
            other files import it by, and as ``module.name`` where they import its module."""
            total = names.get(owner, {}).get(name, 0)
            for path, info in self.files.items():
                for local, (target, attribute) in info.imports.items():
                    if target != owner or path == owner:
                        continue
                    if attribute == name:
                        total += names[path].get(local, 0)
                    elif attribute is None:
                        total += attributes[path].get((local, name), 0)
            return total

        for source in self.sources.values():
            name = source.key[1].split("@")[0]
            if name == "<connect>" or POSTGRES not in source.drivers:
                continue
            info = self.files[source.path]
            if name in info.twice:
                why = f"`{name}` is defined more than once in its module"
            elif name not in info.defined or references(source.path, name) > source.uses:
                why = (
                    f"`{name}` is used where its connections cannot be followed (a method, "
                    "or passed or called through an object)"
                )
            else:
                continue
            source.migrate = False
            source.problems.append(
                Problem(
                    source.at,
                    "POOL002",
                    f"{why}: it still opens a new connection per call",
                    "call it directly by name and give the connection back in the same "
                    "function, then run again",
                )
            )

    def _inline(self, info: _FileAnalysis, call: ast.Call, driver: str) -> _Source:
        at = info.lines.at(call)
        key = (info.path, f"<connect>@{at[0]}:{at[1]}")
        source = self.sources.get(key)
        if source is None:
            source = self.sources[key] = _Source(key, info.path, at, {driver})
            source.connects.append((at, driver, _has_factory(call)))
        return source

    # 3. decide: a source is migrated when all its sites (and its inner sources) can be
    def decide(self) -> None:
        changed = True
        while changed:
            changed = False
            for source in self.sources.values():
                if not source.migrate:
                    continue
                blocked = [s for s in source.sites if s.problem is not None]
                if POSTGRES in source.drivers and blocked:
                    source.migrate = False
                    changed = True
                if any(not inner.migrate for inner in source.calls):
                    source.migrate = False
                    changed = True
            for source in self.sources.values():
                if not source.migrate:
                    for inner in source.calls:
                        # a wrapper left as is keeps closing what its inner connector hands out
                        if inner.migrate and POSTGRES in inner.drivers:
                            inner.migrate = False
                            changed = True


def _has_factory(call: ast.Call) -> str:
    """The ``cursor_factory``/``factory`` a connect call passes (its last dotted name), or ""."""
    for keyword in call.keywords:
        if keyword.arg in ("cursor_factory", "factory"):
            value = keyword.value
            return getattr(value, "attr", None) or getattr(value, "id", None) or "?"
    return ""


def _row_factories(function: ast.AST, info: _FileAnalysis) -> list[Position]:
    """``x.row_factory = sqlite3.Row`` statements in a connector."""
    found = []
    for node in _own_nodes(function):
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Attribute)
            and node.targets[0].attr == "row_factory"
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "Row"
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "sqlite3"
        ):
            found.append(info.lines.at(node))
    return found


def _problem(info: _FileAnalysis, node: ast.AST, message: str, hint: str) -> Problem:
    return Problem(info.lines.at(node), "POOL001", message, hint)


_GIVE_BACK_HINT = (
    "open and release it in one function: `conn = get_conn()` then `try: ... finally: "
    "conn.close()`, or `with closing(get_conn()) as conn:`; then run again"
)


def _site(
    info: _FileAnalysis,
    function: ast.FunctionDef | ast.AsyncFunctionDef,
    call: ast.Call,
    parents: dict[ast.AST, ast.AST],
    source: _Source,
) -> _Site | None:
    """How the connection from ``call`` in ``function`` is used, and the edits that give it
    back on every path (or why none can)."""
    parent = parents.get(call)
    holder = parent
    closing = False
    if (
        isinstance(parent, ast.Call)
        and call in parent.args
        and (
            (isinstance(parent.func, ast.Name) and parent.func.id == "closing")
            or (isinstance(parent.func, ast.Attribute) and parent.func.attr == "closing")
        )
    ):
        closing, holder = True, parents.get(parent)
    at = info.lines.at(call)
    site = _Site(info.path, at, "", function)
    if isinstance(holder, ast.withitem) and isinstance(holder.optional_vars, ast.Name):
        var = site.var = holder.optional_vars.id
        problem = _escapes(info, function, var, parents, allow_yield=True)
        if problem is not None:
            site.problem = problem
            return site
        expression = parent if closing else call
        kind = "closing" if closing else "with"
        site.edits.append(Edit("borrow", info.lines.at(expression), kind))
        site.edits += [Edit("drop", info.lines.at(c.value)) for c in _closes(function, var)]
        return site
    target = _assigned_name(holder, call, source)
    if target is None:
        if isinstance(holder, ast.Return):
            return None  # the function hands the connection on: it is a connector itself
        stored = isinstance(holder, ast.Assign | ast.AnnAssign)
        what = "stored on an object" if stored else "used without a name"
        if stored and source.tuple_index is not None:
            what = "kept inside the tuple it comes in"
        site.problem = _problem(
            info, call, f"this connection is {what}, so nothing here gives it back", _GIVE_BACK_HINT
        )
        return site
    var = site.var = target
    statement = holder
    assert isinstance(statement, ast.stmt)
    problem = _escapes(info, function, var, parents, allow_yield=True, opened=statement)
    if problem is not None:
        site.problem = problem
        return site
    block = _block_of(statement, parents)
    if block is None:
        site.problem = _problem(info, call, "cannot tell where this connection ends", "")
        return site
    index = next(i for i, s in enumerate(block) if s is statement)
    stop = next(
        (k for k in range(index + 1, len(block)) if _binds(block[k], var)), len(block)
    )  # the next statement of the block that opens `var` again starts another site
    rest = block[index + 1 : stop]
    release, scope = _finally_release(statement, var, parents)
    reopened = _reopened(info, scope, var, statement) if release is not None else None
    if reopened is not None:
        site.problem = _reopened_problem(info, reopened, var)
        return site
    if release is not None:
        closes = _closes(scope, var)
        if _is_plain_close(release) and _is_close(release, var) and not _releaser_call(release):
            site.edits.append(Edit("release", info.lines.at(release.value)))
        site.edits += [Edit("drop", info.lines.at(c.value)) for c in closes if c is not release]
        return site
    closes = _closes(rest, var)
    if any(isinstance(n, ast.Yield | ast.YieldFrom) for n in _own_nodes(function)):
        site.problem = _problem(
            info,
            call,
            "a generator hands this connection out without a `finally` that closes it",
            "close it in a `finally` around the `yield`, then run again",
        )
        return site
    if not rest:
        site.problem = _problem(info, call, "cannot tell where this connection ends", "")
        return site
    last = max((i for i, s in enumerate(rest) if _is_close(s, var)), default=None)
    reopened = _reopened(info, rest if last is None else rest[: last + 1], var, statement)
    if reopened is not None:
        region = _confined_region(reopened, parents)
        renamed = _rename_reopened(info, function, reopened, region, var, parents, call)
        if renamed is None:
            site.problem = _reopened_problem(info, reopened, var)
            return site
        site.edits += renamed
        closes = [c for c in closes if not any(c is n for r in region for n in ast.walk(r))]
    if last is not None and _uses_after(rest[last + 1 :], var):
        site.problem = _problem(
            info, call, f"`{var}` is used after it is closed", "close it once, at the end"
        )
        return site
    if last == 0:
        if not _releaser_call(rest[0]):
            site.edits.append(Edit("release", info.lines.at(rest[0].value)))  # type: ignore[attr-defined]
        site.edits += [Edit("drop", info.lines.at(c.value)) for c in closes if c is not rest[0]]
        return site
    end = None if last is None else info.lines.at(rest[last])
    site.edits.append(Edit("wrap", info.lines.at(statement), var, end))
    site.edits += [
        Edit("drop", info.lines.at(c.value)) for c in closes if last is None or c is not rest[last]
    ]
    return site


def _releasers_called(site: _Site) -> set[str]:
    """The releasers a site's function calls with its connection."""
    if site.function is None or not site.var:
        return set()
    return {
        node.value.func.id  # type: ignore[attr-defined]
        for node in _own_nodes(site.function)
        if _releaser_call(node) and _is_close(node, site.var)
    }


def _releaser_call(statement: ast.AST) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Call)
        and isinstance(statement.value.func, ast.Name)
        and statement.value.func.id in _RELEASERS
    )


def _reopened(
    info: _FileAnalysis, statements: list[ast.stmt], var: str, opening: ast.stmt
) -> ast.Assign | None:
    """A statement nested in ``statements`` (other than ``opening``) that binds ``var`` to
    another connection."""
    for statement in statements:
        for node in ast.walk(statement):
            if (
                isinstance(node, ast.Assign)
                and node is not opening
                and _binds(node, var)
                and info.source_of(node.value) is not None
            ):
                return node
    return None


def _confined_region(reopened: ast.stmt, parents: dict[ast.AST, ast.AST]) -> list[ast.stmt]:
    """The statements from ``reopened`` to the end of its block."""
    block = _block_of(reopened, parents) or []
    index = next((i for i, s in enumerate(block) if s is reopened), len(block))
    return block[index:]


def _unread_after(
    reopened: ast.stmt,
    region: list[ast.stmt],
    var: str,
    parents: dict[ast.AST, ast.AST],
    function: ast.AST,
) -> bool:
    """Whether no code that runs after ``region`` (the block from ``reopened`` on) reads
    ``var``: climbing out, the statements that follow at each level up to a ``return`` or
    ``raise`` do not read it; a loop (its next turn) or a ``try`` (its handlers) on the way
    makes it unknown, hence False."""
    if any(isinstance(s, ast.Return | ast.Raise) for s in region):
        return True
    node: ast.AST = region[0] if region else reopened
    skip = len(region)
    while True:
        block = _block_of(node, parents)  # type: ignore[arg-type]
        if block is None:
            return False
        index = next(i for i, s in enumerate(block) if s is node)
        for statement in block[index + skip :]:
            if any(isinstance(n, ast.Name) and n.id == var for n in ast.walk(statement)):
                return False
            if isinstance(statement, ast.Return | ast.Raise):
                return True
        skip = 1
        parent = parents.get(node)
        if parent is None or parent is function:
            return True
        if isinstance(parent, ast.For | ast.AsyncFor | ast.While | ast.Try):
            return False
        node = parent


def _rename_reopened(
    info: _FileAnalysis,
    function: ast.AST,
    reopened: ast.Assign,
    region: list[ast.stmt],
    var: str,
    parents: dict[ast.AST, ast.AST],
    call: ast.Call,
) -> list[Edit] | None:
    """Rename edits that give a connection opened again under ``var`` a name of its own, when
    that is safe: it comes from the same source, nothing after its block reads ``var`` (see
    :func:`_unread_after`) and it is not opened a third time there. None when it is not
    safe."""
    if (
        not _unread_after(reopened, region, var, parents, function)
        or info.source_of(reopened.value) != info.source_of(call)
        or _reopened(info, region[1:], var, reopened) is not None
    ):
        return None
    taken = {n.id for n in _own_nodes(function) if isinstance(n, ast.Name)}
    taken |= {a.arg for a in ast.walk(function) if isinstance(a, ast.arg)}
    new = next(f"{var}_{k}" for k in range(2, 100) if f"{var}_{k}" not in taken)
    info.renamed[info.lines.at(reopened.value)] = new
    return [
        Edit("rename", info.lines.at(node), new)
        for statement in region
        for node in ast.walk(statement)
        if isinstance(node, ast.Name) and node.id == var
    ]


def _reopened_problem(info: _FileAnalysis, reopened: ast.AST, var: str) -> Problem:
    return _problem(
        info,
        reopened,
        f"`{var}` is opened again inside the code that uses this connection, so one release "
        "would give back the other",
        f"give the second connection its own name (or its own function), close `{var}` where "
        "it is done, then run again",
    )


def _binds(statement: ast.stmt, var: str) -> bool:
    """Whether ``statement`` (at block level) assigns ``var``."""
    return isinstance(statement, ast.Assign) and any(
        isinstance(n, ast.Name) and n.id == var and isinstance(n.ctx, ast.Store)
        for t in statement.targets
        for n in ast.walk(t)
    )


def _assigned_name(holder: ast.AST | None, call: ast.Call, source: _Source) -> str | None:
    """The name ``call``'s connection is bound to by an assignment statement."""
    if isinstance(holder, ast.Assign) and len(holder.targets) == 1 and holder.value is call:
        target = holder.targets[0]
        if isinstance(target, ast.Name):
            return None if source.tuple_index is not None else target.id
        if (
            isinstance(target, ast.Tuple)
            and source.tuple_index == 0
            and target.elts
            and isinstance(target.elts[0], ast.Name)
        ):
            return target.elts[0].id
    if isinstance(holder, ast.AnnAssign) and isinstance(holder.target, ast.Name):
        return holder.target.id
    return None


def _finally_release(
    statement: ast.stmt, var: str, parents: dict[ast.AST, ast.AST]
) -> tuple[ast.Expr | None, list[ast.stmt]]:
    """The close of ``var`` in the ``finally`` of a ``try`` that covers every later use (the
    ``try`` right after the opening statement, or one whose body holds it), and that ``try``."""
    node: ast.AST | None = statement
    first = True
    while node is not None:
        parent = parents.get(node)
        if isinstance(parent, ast.Try) and any(s is node for s in parent.body):
            release = _release_in(parent.finalbody, var)
            if release is not None:
                return release, [parent]
        if first and isinstance(node, ast.stmt):
            first = False
            block = _block_of(node, parents)
            if block is not None:
                index = next(i for i, s in enumerate(block) if s is node)
                following = block[index + 1 : index + 2]
                if following and isinstance(following[0], ast.Try):
                    release = _release_in(following[0].finalbody, var)
                    if release is not None:
                        return release, [following[0]]
        if not isinstance(parent, ast.If | ast.Try):
            break
        node = parent
    return None, []


def _release_in(block: list[ast.stmt], var: str) -> ast.Expr | None:
    for statement in block:
        if _guarded_close(statement, var):
            return _closes(statement, var)[0]
    return None


def _cursors_of(function: ast.AST, var: str) -> set[str]:
    """Names bound to ``var.cursor(...)`` in ``function`` (assigned or ``with ... as``)."""
    names = set()
    for node in _own_nodes(function):
        value, targets = None, []
        if isinstance(node, ast.Assign):
            value, targets = node.value, node.targets
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            value, targets = node.context_expr, [node.optional_vars]
        if value is not None and _is_cursor_call(value, var):
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _uses_after(statements: list[ast.stmt], var: str) -> bool:
    """Whether ``var`` is read in ``statements``, not counting statements that open it again
    (their uses belong to the new connection)."""
    for statement in statements:
        if any(_binds(n, var) for n in ast.walk(statement) if isinstance(n, ast.stmt)):
            continue
        if any(isinstance(n, ast.Name) and n.id == var for n in ast.walk(statement)):
            return True
    return False


def _escapes(
    info: _FileAnalysis,
    function: ast.AST,
    var: str,
    parents: dict[ast.AST, ast.AST],
    *,
    allow_yield: bool,
    opened: ast.stmt | None = None,
) -> Problem | None:
    """Why the connection in ``var`` leaves ``function`` (so it cannot be given back here)."""
    derived = _cursors_of(function, var)
    for node in _own_nodes(function):
        if isinstance(node, ast.Name) and node.id in derived and isinstance(node.ctx, ast.Load):
            parent = parents.get(node)
            leaves = isinstance(parent, ast.Return | ast.Yield) or (
                isinstance(parent, ast.Assign)
                and not all(isinstance(t, ast.Name) for t in parent.targets)
            )
            if leaves:
                return _problem(
                    info,
                    node,
                    f"a cursor of `{var}` leaves the function, and with it the connection",
                    _GIVE_BACK_HINT,
                )
        if not isinstance(node, ast.Name) or node.id != var:
            continue
        parent = parents.get(node)
        if isinstance(node.ctx, ast.Store):
            if parent is opened or isinstance(parent, ast.withitem | ast.Tuple):
                continue
            if isinstance(parent, ast.Assign) and info.source_of(parent.value) is not None:
                continue  # opened again: another site
            if isinstance(parent, ast.Assign) and isinstance(parent.value, ast.Constant):
                continue  # conn = None
            return _problem(
                info, node, f"`{var}` is bound to another connection in the same function", ""
            )
        if isinstance(parent, ast.Attribute):
            call = parents.get(parent)
            holder = parents.get(call) if isinstance(call, ast.Call) else None
            if isinstance(holder, ast.Tuple):
                holder = parents.get(holder)
            stored = isinstance(holder, ast.Assign) and not all(
                isinstance(t, ast.Name) for t in holder.targets
            )
            if parent.attr == "cursor" and (
                isinstance(holder, ast.Return | ast.Yield | ast.YieldFrom) or stored
            ):
                return _problem(
                    info,
                    node,
                    f"a cursor of `{var}` leaves the function, and with it the connection",
                    _GIVE_BACK_HINT,
                )
            continue
        if isinstance(parent, ast.If | ast.IfExp | ast.BoolOp | ast.withitem | ast.Assert):
            continue
        if isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not):
            continue
        if isinstance(parent, ast.Compare) and all(
            isinstance(op, ast.Is | ast.IsNot) for op in parent.ops
        ):
            continue
        if isinstance(parent, ast.Yield) and allow_yield:
            continue
        if (
            isinstance(parent, ast.Call)
            and isinstance(parent.func, ast.Name)
            and parent.func.id in _RELEASERS
            and _RELEASERS[parent.func.id] < len(parent.args)
            and parent.args[_RELEASERS[parent.func.id]] is node
        ):
            continue  # close_db(cur, conn): gives it back
        if isinstance(parent, ast.Return):
            return _problem(
                info,
                node,
                f"`{var}` is returned along with other values, so the caller must give it back",
                _GIVE_BACK_HINT,
            )
        what = "passed to other code" if isinstance(parent, ast.Call | ast.keyword) else "stored"
        return _problem(
            info,
            node,
            f"`{var}` is {what} here, so this function cannot give it back on every path",
            _GIVE_BACK_HINT,
        )
    return None


# The whole run ---------------------------------------------------------------------------


def is_test_file(path: str) -> bool:
    """Test code opens its own connections to check what the app did: never migrated."""
    parts = path.replace(os.sep, "/").split("/")
    name = parts[-1]
    return (
        name == "conftest.py"
        or name.startswith("test_")
        or name.endswith("_test.py")
        or any(part in ("tests", "test") for part in parts[:-1])
    )


_CACHE: dict[int, tuple[Mapping[str, str], Model]] = {}


def analyse(sources: Mapping[str, str]) -> Model:
    """The data-layer model of the run's files (memoised for the same ``sources`` object)."""
    cached = _CACHE.get(id(sources))
    if cached is not None and cached[0] is sources:
        return cached[1]
    model = _build(sources)
    _CACHE.clear()
    _CACHE[id(sources)] = (sources, model)
    return model


_RUNTIME_ROWS = re.compile(r"^\s*from\s+\S*\bdb_rows\b\s+import", re.MULTILINE)
_RUNTIME_SQLITE = re.compile(r"^\s*from\s+\S*\bdb_sqlite\b\s+import", re.MULTILINE)


def rows_are_shipped(path: str, sources: Mapping[str, str], *, pending: bool = True) -> bool:
    """Whether the connections ``path`` reads rows from hand out the shipped ``Row``: it is
    migrated already (imports ``db_rows``/``db_pool``, or is SQLite-only on ``db_sqlite``), or,
    with ``pending``, this run migrates every connection source it uses and none of them sets
    its own ``cursor_factory``."""
    text = sources.get(path, "")
    if _RUNTIME_ROWS.search(text):
        return True
    if _RUNTIME_SQLITE.search(text) and "psycopg2" not in text and "db_pool" not in text:
        return True
    if not pending:
        return False
    model = analyse(sources)
    return path in model.shipped_rows and not runtime_copies_blocked(model.home)


def runtime_copies_blocked(home: str | None) -> list[str]:
    """The runtime copies in ``home`` that a run cannot write: edited by hand since
    claun-migrate generated them, or files of the same name that are not ours."""
    if home is None:
        return []
    blocked = []
    for name in RUNTIME_FILES:
        try:
            with open(os.path.join(home, name), encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError):
            blocked.append(name)
            continue
        if not is_pristine(text):  # None: not ours; False: edited by hand
            blocked.append(name)
    return blocked


def _home(sources: Mapping[str, str], migrated: list[_Source]) -> str | None:
    for path, text in sorted(sources.items()):
        if os.path.basename(path) == "db_pool.py" and text.startswith(GENERATED):
            return os.path.dirname(path)
    if not migrated:
        return None
    weight: dict[str, tuple[int, int]] = {}
    for source in migrated:
        postgres, sites = weight.get(source.path, (0, 0))
        weight[source.path] = (postgres + (POSTGRES in source.drivers), sites + len(source.sites))
    best = sorted(weight, key=lambda path: (*(-n for n in weight[path]), path.count(os.sep), path))
    return os.path.dirname(best[0])


def _build(sources: Mapping[str, str]) -> Model:
    analysis = _Analysis(sources)
    _RELEASERS.clear()
    releasers = _releasers(analysis.files)
    _RELEASERS.update({name: index for name, (index, _, _) in releasers.items()})
    analysis.find_connectors()
    analysis.find_sites()
    analysis.unfollowed()
    analysis.decide()
    model = Model()
    migrated = [s for s in analysis.sources.values() if s.migrate]
    model.home = _home(sources, migrated)
    for source in analysis.sources.values():
        both = SQLITE in source.drivers and bool({POSTGRES, POOLED} & source.drivers)
        if not source.migrate and source.problems:
            model.problems.setdefault(source.path, []).extend(source.problems)
            continue
        if not source.migrate:
            blocked = [s for s in source.sites if s.problem is not None]
            for site in blocked:
                assert site.problem is not None
                model.problems.setdefault(site.path, []).append(site.problem)
            if not blocked and source.key[1].startswith("<connect>"):
                continue
            name = source.key[1].split("@")[0]
            what = "this connect call" if name == "<connect>" else f"`{name}`"
            reasons = sorted({f"{s.path}:{s.at[0]}" for s in blocked}) or ["a caller"]
            model.problems.setdefault(source.path, []).append(
                Problem(
                    source.at,
                    "POOL002",
                    f"{what} still opens a new connection per call: not migrated, because "
                    f"the connection cannot be given back at {', '.join(reasons[:3])}",
                    "fix the sites reported as POOL001 (or give the connection back by "
                    "hand), then run again",
                )
            )
            continue
        edits = model.edits.setdefault(source.path, [])
        for at, driver, _ in source.connects:
            edits.append(Edit("connect", at, driver))
        if SQLITE in source.drivers:
            model.sqlite = True
            edits += [Edit("row-factory", at) for at in source.row_factories]
        for site in source.sites:
            if both and site.var:
                model.edits.setdefault(site.path, []).extend(_sql_edits(analysis, site))
            if POSTGRES not in source.drivers:
                continue  # a SQLite request connection's close() already gives it back
            model.edits.setdefault(site.path, []).extend(site.edits)
            if site.path != source.path:
                model.relies.setdefault(source.path, []).append(site.path)
            for name in _releasers_called(site):
                _, where, closes = releasers[name]
                model.edits.setdefault(where, []).extend(Edit("release", at) for at in closes)
                if where != source.path:
                    model.relies.setdefault(source.path, []).append(where)
    model.shipped_rows = _shipped_rows(analysis)
    blocked = bool(runtime_copies_blocked(model.home))
    for source in analysis.sources.values():
        rows, now = _rows_of(source, blocked), _rows_of(source, True)
        for site in source.sites:
            model.connections.setdefault(site.path, {})[site.at] = rows
            model.connections_now.setdefault(site.path, {})[site.at] = now
    for path, info in analysis.files.items():
        for node, how in _sql_built_from_values(info.tree):
            model.problems.setdefault(path, []).append(
                Problem(
                    info.lines.at(node),
                    "POOL004",
                    f"the SQL passed here is built with {how} from values that are not "
                    "literals: a value can change the statement (SQL injection)",
                    "pass values as parameters (`%s` and a tuple); names chosen at run time "
                    "must come from a fixed list",
                    pending=False,
                )
            )
    for path, info in analysis.files.items():
        for node in walk(info.tree):
            if isinstance(node, ast.Call) and (
                getattr(node.func, "id", None) == "SimpleConnectionPool"
                or getattr(node.func, "attr", None) == "SimpleConnectionPool"
            ):
                model.problems.setdefault(path, []).append(
                    Problem(
                        info.lines.at(node),
                        "POOL003",
                        "psycopg2's SimpleConnectionPool is not thread-safe: under a threaded "
                        "server two threads can get one connection, and it overshoots maxconn",
                        "use the shipped pool (replace the hand-made pool with psycopg2.connect "
                        "and run claun-migrate) or psycopg2.pool.ThreadedConnectionPool",
                        pending=False,
                    )
                )
    for path in model.edits:
        model.edits[path] = sorted(set(model.edits[path]), key=lambda e: (e.at, e.kind))
    return model


def _is_cursor_call(node: ast.AST, var: str) -> bool:
    """``var.cursor(...)``."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "cursor"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == var
    )


_EXECUTES = {"execute", "executemany", "execute_sql", "execute_query", "fetch_one", "fetch_all"}


def _sql_built_from_values(tree: ast.Module) -> Iterator[tuple[ast.AST, str]]:
    """SQL arguments of ``x.execute(...)`` and ``execute_sql(...)``-style calls built with
    an f-string, ``%``, ``+`` or ``.format()`` from something that is not a literal; a name
    bound once in the function to such an expression counts too. Module-level names bound
    to string literals (``COLUMNS = "id, name"``) are literals."""
    constants = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign) and _literal(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for function in [tree, *_functions(tree)]:
        bound: dict[str, ast.AST] = {}
        for node in _own_nodes(function):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    bound[target.id] = node.value
        for node in _own_nodes(function):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            if name not in _EXECUTES:
                continue
            sql = node.args[0]
            value = bound.get(sql.id, sql) if isinstance(sql, ast.Name) else sql
            how = _formatted_with(value, constants)
            if how is not None:
                yield sql, how


def _formatted_with(
    node: ast.AST, constants: frozenset[str] | set[str] = frozenset()
) -> str | None:
    """How ``node`` puts non-literal values into a string, if it does."""

    def literal(value: ast.AST) -> bool:
        return isinstance(value, ast.Constant) or (
            isinstance(value, ast.Name) and value.id in constants
        )

    if isinstance(node, ast.JoinedStr):
        if any(not literal(v.value) for v in node.values if isinstance(v, ast.FormattedValue)):
            return "an f-string"
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        if _literal(node.left) and not literal(node.right):
            return "`%` formatting"
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        parts = [node.left, node.right]
        if any(isinstance(p, ast.Constant) and isinstance(p.value, str) for p in parts) and any(
            not literal(p) and _formatted_with(p, constants) is None and not _literal(p)
            for p in parts
        ):
            return "`+`"
        return next((h for p in parts if (h := _formatted_with(p, constants))), None)
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
        and isinstance(node.func.value.value, str)
        and (node.args or node.keywords)
    ):
        return "`.format()`"
    return None


def _literal(node: ast.AST) -> bool:
    """A string literal, or literals joined with ``+``."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal(node.left) and _literal(node.right)
    return False


def _rows_of(source: _Source, blocked: bool, depth: int = 0) -> Rows:
    """What the rows of ``source``'s connections answer once the run is done (``blocked``:
    the runtime copies cannot be written, so nothing is migrated)."""
    migrated = source.migrate and not blocked
    kinds: list[tuple[bool | None, bool]] = []
    for _, driver, factory in source.connects:
        if driver == SQLITE:
            kinds.append((True, True) if migrated or source.row_factories else (False, True))
        elif factory:
            kinds.append(DICT_CURSORS.get(factory, (None, True)))
        else:
            kinds.append((True, True) if migrated else (False, True))
    inner = [_rows_of(s, blocked, depth + 1) for s in source.calls if depth < 8]
    kinds += [(rows.names, rows.positions) for rows in inner]
    if POOLED in source.drivers or not kinds:
        kinds.append((None, True))
    names = [n for n, _ in kinds]
    relies = {source.path, *(p for rows in inner for p in rows.relies)} if migrated else set()
    why = ""
    if False in names:
        why = f"the connections of {source.path}:{source.at[0]} are not migrated"
    elif None in names:
        why = f"the connections of {source.path}:{source.at[0]} may hand out plain tuples"
    return Rows(
        False if False in names else None if None in names else True,
        all(p for _, p in kinds),
        tuple(sorted(relies)),
        why,
    )


def _shipped_rows(analysis: _Analysis) -> list[str]:
    """Files whose every connection source is migrated to the shipped Row."""
    used: dict[str, list[_Source]] = {}
    for source in analysis.sources.values():
        for site in source.sites:
            used.setdefault(site.path, []).append(source)
        used.setdefault(source.path, []).append(source)
    return sorted(
        path
        for path, sources in used.items()
        if all(s.migrate and not any(factory for *_, factory in s.connects) for s in sources)
        and all(inner.migrate is not False for s in sources for inner in s.calls)
    )


def _same_on_sqlite(sql: ast.expr) -> bool:
    """A literal that ``sql_for`` would hand to SQLite unchanged: no placeholder, no ``%``
    escape, no ``SERIAL`` column."""
    return (
        isinstance(sql, ast.Constant)
        and isinstance(sql.value, str)
        and "%" not in sql.value
        and "SERIAL" not in sql.value.upper()
    )


def _sql_edits(analysis: _Analysis, site: _Site) -> list[Edit]:
    """``cursor.execute(sql, ...)`` on the site's connection: the SQL goes through sql_for."""
    info = analysis.files[site.path]
    function = site.function
    assert function is not None
    cursors = {site.var} | _cursors_of(function, site.var)
    edits = []
    for node in _own_nodes(function):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("execute", "executemany")
            and (
                (isinstance(node.func.value, ast.Name) and node.func.value.id in cursors)
                or _is_cursor_call(node.func.value, site.var)
            )
            and node.args
            and not (
                isinstance(node.args[0], ast.Call)
                and isinstance(node.args[0].func, ast.Name)
                and node.args[0].func.id == "sql_for"
            )
            and not _same_on_sqlite(node.args[0])
        ):
            edits.append(Edit("sql", info.lines.at(node.args[0]), site.var))
    return edits
