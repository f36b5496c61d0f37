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
from collections.abc import Callable, Iterable
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


def _module_file(base: Path, parts: list[str], exists: Callable[[Path], bool]) -> bool:
    target = base.joinpath(*parts) if parts else base
    return (
        (bool(parts) and exists(target.with_name(target.name + ".py")))
        or exists(target / "__init__.py")
        or exists(target)
    )


def unresolved(path: Path, imported: Import, root: Path, exists: Callable[[Path], bool]) -> bool:
    """Whether ``imported``, added to ``path``, names a module of the project that is not
    there. Modules not found under any of the file's roots (stdlib, installed) are fine."""
    parts = imported.module.split(".") if imported.module else []
    if imported.level:
        base = path.parent
        for _ in range(imported.level - 1):
            base = base.parent
        if parts:
            return not _module_file(base, parts, exists)
        name = [imported.name] if imported.name and imported.name != "*" else []
        return not ((name and _module_file(base, name, exists)) or exists(base / "__init__.py"))
    roots = dict.fromkeys([_package_root(path.parent), path.parent, root])
    for base in roots:
        if _module_file(base, parts[:1], exists):
            return not _module_file(base, parts, exists)
    return False


class Planned:
    """``exists`` for a tree as it will be: files on disk plus the ones a run creates."""

    def __init__(self, created: Iterable[Path]) -> None:
        self.files = {Path(os.path.normpath(p)) for p in created}
        self.folders = {parent for p in self.files for parent in p.parents}

    def __call__(self, path: Path) -> bool:
        path = Path(os.path.normpath(path))
        return path in self.files or path in self.folders or path.exists()


def problems(
    path: Path, before: str | None, after: str, root: Path, exists: Callable[[Path], bool]
) -> str | None:
    """Why the changed Python file ``path`` must not be written, or None."""
    if before is None or compile_error(before, path) is None:
        error = compile_error(after, path)
        if error:
            return f"the migrated code does not compile: {error}"
    missing = sorted(
        str(i) for i in added_imports(before, after) if unresolved(path, i, root, exists)
    )
    if missing:
        return (
            f"the migration adds `{missing[0]}`, which names a module of the project that "
            "does not exist and that this run does not create"
            + (f" (also {', '.join(missing[1:])})" if missing[1:] else "")
        )
    return None


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
    missing = [
        str(i) for i in added_imports(before, after) if unresolved(path, i, root, Path.exists)
    ]
    if missing:
        return f"the written file imports `{missing[0]}`, which does not resolve"
    return None
