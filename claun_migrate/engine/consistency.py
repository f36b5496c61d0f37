"""An edit is written only with what it needs: imports it adds must resolve, its code compiles.

Needing no codemod's cooperation: every import a run adds (absent before, present after) that
names a module of the project (found under the file's package root, its own folder or the
tree's root) must resolve to a file that exists or that the run creates. The same checks run
again on disk once the files are written (:func:`problems_on_disk`).
"""

from __future__ import annotations

import ast
import io
import os
import tokenize
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


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


def imports(text: str) -> set[Import]:
    """The imports anywhere in ``text`` (empty if it does not parse)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(Import(0, alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            found.update(Import(node.level, module, alias.name) for alias in node.names)
    return found


def added_imports(before: str | None, after: str) -> set[Import]:
    """Imports present in ``after`` and absent from ``before``."""
    return imports(after) - (imports(before) if before else set())


def compile_error(text: str | bytes, path: Path) -> str | None:
    """Why ``text`` does not compile, or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(text, str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        line = f" (line {exc.lineno})" if getattr(exc, "lineno", None) else ""
        return f"{type(exc).__name__}: {getattr(exc, 'msg', exc)}{line}"
    return None


def _package_root(folder: Path) -> Path:
    """The folder holding the top package that ``folder`` belongs to (itself if none)."""
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder


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
        bases = dict.fromkeys([_package_root(path.parent), path.parent, root])
        found = [b for b in bases if _module_path(b, parts[:1], tree)]
        if not found:
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
    if before is None or compile_error(before, path) is None:
        error = compile_error(after, path)
        if error:
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
    if before is None or compile_error(before, path) is None:
        error = compile_error(data, path)
        if error:
            return f"the written file does not compile: {error}"
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        after = data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return None
    return _import_problem(path, before, after, root, Tree(), "the written file adds")
