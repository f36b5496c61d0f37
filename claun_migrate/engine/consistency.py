"""An edit is written only with what it needs: imports it adds must resolve, its code compiles.

Needing no codemod's cooperation: every import a run adds (absent before, present after) that
names a module of the project (found under the file's package root, its own folder or the
tree's root) must resolve to a file that exists or that the run creates. The same checks run
again on disk once the files are written (:func:`problems_on_disk`).
"""

from __future__ import annotations

import ast
import functools
import io
import os
import tokenize
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from claun_migrate.codemods._support import package_root


@dataclass(frozen=True)
class Import:
    """One imported module (and name, for ``from m import name``) as written in a file."""

    level: int
    module: str
    name: str | None

    def __str__(self) -> str:
        dots = "." * self.level
        if self.name is None:
            return f"import {dots}{self.module}"
        return f"from {dots}{self.module} import {self.name}"


@functools.lru_cache(maxsize=512)
def _parsed(text: str | bytes) -> ast.Module | SyntaxError | ValueError:
    """``text``'s syntax tree, or why it has none (each text parsed once a run, though a run
    settles its plan more than once)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(text)
    except (SyntaxError, ValueError) as exc:
        return exc


@functools.lru_cache(maxsize=512)
def imports(text: str) -> frozenset[Import]:
    """The imports anywhere in ``text`` (empty if it does not parse)."""
    tree = _parsed(text)
    if not isinstance(tree, ast.Module):
        return frozenset()
    guarded = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers)
        for part in [*node.body, *node.handlers]
        for inner in ast.walk(part)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in guarded:  # `try: from .x import y` / `except ImportError:` fallbacks
            continue
        if isinstance(node, ast.Import):
            found.update(Import(0, alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            found.update(Import(node.level, module, alias.name) for alias in node.names)
    return frozenset(found)


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    caught = handler.type
    names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
    return any(
        isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names
    )


def added_imports(before: str | None, after: str) -> set[Import]:
    """Imports present in ``after`` and absent from ``before`` (no parse when no new line of
    ``after`` can belong to an import statement)."""
    if before is not None and not _may_add_imports(before, after):
        return set()
    return set(imports(after) - (imports(before) if before else frozenset()))


def _may_add_imports(before: str, after: str) -> bool:
    """Whether a line of ``after`` that ``before`` lacks says ``import`` or continues a
    parenthesised or backslash-continued import statement."""
    old = set(before.splitlines())
    until = ""  # inside a multi-line import: ")" or "\\" ends it
    for line in after.splitlines():
        if line not in old and (until or "import" in line):
            return True
        if until == ")":
            until = "" if ")" in line else ")"
        elif until or "import" in line:
            tail = line.split("import", 1)[-1]
            until = ")" if "(" in tail and ")" not in tail else ""
            until = until or ("\\" if line.rstrip().endswith("\\") else "")
    return False


@functools.lru_cache(maxsize=512)
def compile_error(text: str | bytes, path: Path) -> str | None:
    """Why ``text`` does not compile, or None (each text compiled once a run)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        line = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
        return f"{type(exc).__name__}: {getattr(exc, 'msg', exc)}{line}"
    return None


def _module_path(base: Path, parts: list[str], tree: Tree) -> Path | None:
    """What ``parts`` names under ``base``: a module file, a package's ``__init__.py`` or a
    namespace folder (None if nothing)."""
    target = base.joinpath(*parts)
    candidates = [target / "__init__.py", target]
    if parts:
        candidates.insert(0, target.with_name(target.name + ".py"))
    return next((c for c in candidates if tree.exists(c)), None)


MISSING_MODULE = (
    "which names a module of the project that does not exist and that this run does not create"
)


def unresolved(path: Path, imported: Import, root: Path, tree: Tree) -> str | None:
    """Why ``imported``, added to ``path``, does not resolve in ``tree``, or None. Modules not
    found under any of the file's roots (stdlib, installed) are fine."""
    parts = imported.module.split(".") if imported.module else []
    if imported.level:
        base = path.parent
        for _ in range(imported.level - 1):
            base = base.parent
    else:
        top = package_root(path.parent)  # a module of a package is not run from its folder
        bases = dict.fromkeys([top, root] if top != path.parent else [path.parent, root])
        found = [b for b in bases if _module_path(b, parts[:1], tree)]
        if not found:
            written = [p for p in tree.texts if parts and p.stem == parts[0]]
            if written:
                where = os.path.relpath(written[0], root)
                return f"which names {where}, written by this run where this file cannot import it"
            return None
        base = found[0]
    module = _module_path(base, parts, tree)
    if module is None:
        return MISSING_MODULE
    name = imported.name
    if name is None or name == "*":
        return None
    if module.suffix != ".py" or module.name == "__init__.py":  # a package: maybe a submodule
        package = module.parent if module.name == "__init__.py" else module
        if _module_path(package, [name], tree):
            return None
    if module.suffix != ".py":
        return f"but {os.path.relpath(module, root)} has no module `{name}`"
    if not tree.defines(module, name):
        return f"but {os.path.relpath(module, root)} defines no `{name}`"
    return None


def _defined(text: str) -> set[str] | None:
    """Top-level names a module defines (None: any, for ``import *`` or ``__getattr__``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            statements = list(ast.parse(text).body)
    except (SyntaxError, ValueError):
        return None
    names: set[str] = set()
    while statements:
        node = statements.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                statements.extend(getattr(node, field, []))
    return None if "__getattr__" in names else names


class Tree:
    """The tree as a run will leave it: files on disk plus the texts it writes."""

    def __init__(self, texts: Mapping[Path, str] | None = None) -> None:
        self.texts = {Path(os.path.normpath(p)): t for p, t in (texts or {}).items()}
        self.folders = {parent for p in self.texts for parent in p.parents}
        self._names: dict[Path, set[str] | None] = {}

    def exists(self, path: Path) -> bool:
        path = Path(os.path.normpath(path))
        return path in self.texts or path in self.folders or path.exists()

    def defines(self, module: Path, name: str) -> bool:
        module = Path(os.path.normpath(module))
        if module not in self._names:
            text = self.texts.get(module)
            if text is None:
                try:
                    text = module.read_bytes().decode("utf-8", errors="replace")
                except OSError:
                    text = ""
            self._names[module] = _defined(text)
        names = self._names[module]
        return names is None or name in names


def problems(path: Path, before: str | None, after: str, root: Path, tree: Tree) -> str | None:
    """Why the changed Python file ``path`` must not be written, or None."""
    error = compile_error(after, path)
    if error and (before is None or compile_error(before, path) is None):
        return f"the migrated code does not compile: {error}"
    return _import_problem(path, before, after, root, tree, "the migration adds")


def _import_problem(
    path: Path, before: str | None, after: str, root: Path, tree: Tree, verb: str
) -> str | None:
    missing = sorted(
        (str(i), why)
        for i in added_imports(before, after)
        if (why := unresolved(path, i, root, tree))
    )
    if not missing:
        return None
    (first, why), *more = missing
    also = f" (also {', '.join(i for i, _ in more)})" if more else ""
    return f"{verb} `{first}`, {why}{also}"


def problems_on_disk(path: Path, before: str | None, root: Path) -> str | None:
    """:func:`problems` for the file as written on disk."""
    data = path.read_bytes()
    error = compile_error(data, path)
    if error and (before is None or compile_error(before, path) is None):
        return f"the written file does not compile: {error}"
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        after = data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return None
    return _import_problem(path, before, after, root, Tree(), "the written file adds")
