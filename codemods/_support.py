"""What codemods share: review findings and companion files, kept in the codemod context.

Codemods know nothing about files or output formats: they record findings and the files they
want beside the one they transform in ``context.scratch``, and the engine reports and writes.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import libcst as cst
from libcst.codemod import Codemod, CodemodCommand, CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from libcst.metadata import MetadataWrapper, PositionProvider

from claun_migrate.codemods._imports import add_imports, place_added_imports

FINDINGS = "claun.findings"
COMPANIONS = "claun.companions"


class Command(CodemodCommand, cst.CSTTransformer):
    """Base of our codemods: one plain walk of the tree, metadata resolved on the tree as given.

    libcst's ``VisitorBasedCodemodCommand`` sends every node through its matcher dispatch and
    deep-copies the tree before each codemod and each import visitor it runs after. A parsed
    tree holds every node once and our codemods never insert one node object twice, so here
    the tree is used as it is (``unsafe_skip_copy``); a codemod with nothing to do for a file
    says so in :meth:`skip` and costs no walk at all. Imports scheduled with
    ``AddImportsVisitor.add_needed_import`` are added without another walk, in their isort
    section (:mod:`claun_migrate.codemods._imports`).
    """

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        hooks = [
            name
            for klass in cls.__mro__[: cls.__mro__.index(Command)]
            for name in vars(klass)
            if re.fullmatch(r"(visit|leave)_[A-Z][A-Za-z]*_\w+", name)
        ]
        if hooks:  # not dispatched: the walk skips libcst's per-attribute hooks
            raise TypeError(f"{cls.__name__}: attribute hooks are not supported ({hooks[0]})")

    def skip(self, tree: cst.Module) -> bool:
        """Whether this file needs no walk (findings may still be recorded here)."""
        return False

    def on_visit(self, node: cst.CSTNode) -> bool:
        visit = _hook(type(self), "visit_", type(node))
        return visit is None or visit(self, node) is not False

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        leave = _hook(type(self), "leave_", type(original_node))
        return updated_node if leave is None else leave(self, original_node, updated_node)

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        pass

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        pass

    def transform_module(self, tree: cst.Module) -> cst.Module:
        if self.skip(tree):
            return tree
        after = _run(self, tree)
        if RemoveImportsVisitor.CONTEXT_KEY in self.context.scratch:
            after = _run(RemoveImportsVisitor(self.context), after)
        wanted = self.context.scratch.pop(AddImportsVisitor.CONTEXT_KEY, ())
        return place_added_imports(tree, add_imports(after, wanted)) if wanted else after

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        return tree.visit(self)


NAMESPACE_LEVELS = 3
"""Folders without ``__init__.py`` that may sit between a module and the regular package
holding them (``shop/utils/db.py`` in package ``shop`` is module ``shop.utils.db``)."""


def package_root(folder: str | os.PathLike[str]) -> Path:
    """The folder Python imports ``folder``'s modules from: the one above the top regular
    package that holds ``folder`` (directly, or through up to ``NAMESPACE_LEVELS`` namespace
    folders); ``folder`` itself when no package holds it (a flat app, a script)."""
    here = Path(os.path.abspath(folder))
    node = here
    for _ in range(NAMESPACE_LEVELS):
        if (node / "__init__.py").is_file() or node.parent == node:
            break
        node = node.parent
    if not (node / "__init__.py").is_file():
        return here
    while (node.parent / "__init__.py").is_file() and node.parent != node:
        node = node.parent
    return node.parent


@functools.cache
def _hook(cls: type, prefix: str, node: type) -> Callable[..., Any] | None:
    """``cls``'s own ``visit_<Node>``/``leave_<Node>`` for nodes of type ``node`` (not libcst's
    empty defaults), looked up once."""
    name = prefix + node.__name__
    for klass in cls.__mro__[: cls.__mro__.index(Command)]:
        if name in vars(klass):
            return vars(klass)[name]
    return None


def _run(codemod: Codemod, tree: cst.Module) -> cst.Module:
    """``codemod``'s transform of ``tree``, with its metadata and no copy of the tree."""
    wrapper = MetadataWrapper(tree, unsafe_skip_copy=True)
    outer = codemod.context
    with codemod.resolve(wrapper):
        codemod.context = replace(outer, wrapper=wrapper)
        try:
            return codemod.transform_module_impl(wrapper.module)
        finally:
            codemod.context = outer


@dataclass(frozen=True)
class Finding:
    """A site left for a person: where, which rule, why, and the edit we would suggest."""

    line: int
    column: int
    code: str
    message: str
    suggestion: str = ""
    pending: bool = False
    """A migration left to do (connect-per-call still in the tree): ``check`` fails on it."""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def report(
    context: CodemodContext, node: cst.CSTNode, code: str, message: str, suggestion: str = ""
) -> None:
    """Record a review finding at ``node`` (the codemod must depend on PositionProvider)."""
    assert context.wrapper is not None, "report() runs only while a codemod transforms a module"
    position = context.wrapper.resolve(PositionProvider)[node].start
    findings: list[Finding] = context.scratch.setdefault(FINDINGS, [])
    finding = Finding(position.line, position.column + 1, code, message, suggestion)
    if finding not in findings:
        findings.append(finding)
        context.warnings.append(f"{finding.line}:{finding.column} {code} {message}")  # libcst CLI


def report_at(
    context: CodemodContext,
    line: int,
    column: int,
    code: str,
    message: str,
    suggestion: str = "",
    *,
    pending: bool = False,
) -> None:
    """Record a finding at ``line`` and 0-based ``column`` (positions from the data-layer model)."""
    findings: list[Finding] = context.scratch.setdefault(FINDINGS, [])
    finding = Finding(line, column + 1, code, message, suggestion, pending)
    if finding not in findings:
        findings.append(finding)
        context.warnings.append(f"{finding.line}:{finding.column} {code} {message}")  # libcst CLI


def add_companion(context: CodemodContext, relative_path: str, text: str) -> None:
    """Ask for ``text`` to be written at ``relative_path``, relative to the transformed file."""
    context.scratch.setdefault(COMPANIONS, {})[relative_path] = text


def findings(context: CodemodContext) -> list[Finding]:
    """The findings recorded so far in ``context``."""
    return list(context.scratch.get(FINDINGS, []))


def companions(context: CodemodContext) -> dict[str, str]:
    """The companion files requested so far in ``context``."""
    return dict(context.scratch.get(COMPANIONS, {}))


REQUIREMENTS = "claun.requirements"
GENERATED = "# claun-migrate runtime"
_HEADER = (
    GENERATED + " {version} ({name}, sha256:{digest}): generated;\n"
    "# do not edit, upgrade it with `claun-migrate apply`.\n"  # both fit in 88 columns
)


def require(context: CodemodContext, name: str, *satisfied_by: str) -> None:
    """Ask for ``name`` in the nearest ``requirements.txt`` unless one of ``satisfied_by`` is."""
    context.scratch.setdefault(REQUIREMENTS, {})[name] = (name, *satisfied_by)


def requirements(context: CodemodContext) -> dict[str, tuple[str, ...]]:
    """The requirements asked for so far: name -> the distribution names that satisfy it."""
    return dict(context.scratch.get(REQUIREMENTS, {}))


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


def stamp(name: str, version: str, body: str) -> str:
    """``body`` with a generated-file header whose checksum later reveals hand edits."""
    return _HEADER.format(version=version, name=name, digest=_digest(body)) + body


def is_pristine(text: str) -> bool | None:
    """True for an unedited :func:`stamp` output, False for an edited one, None if unstamped."""
    header, _, rest = text.partition("\n")
    body = rest.partition("\n")[2]
    match = re.match(re.escape(GENERATED) + r" \S+ \((.+), sha256:([0-9a-f]+)\)", header)
    if match is None:
        return None
    return match.group(2) == _digest(body.replace("\r\n", "\n"))


ENGINE = "claun.engine"
ORIGINAL = "claun.original"
"""The file's text before the run's first codemod (a codemod later in the run sees it moved)."""


def moved(original: str, current: str) -> Callable[[int, int], tuple[int, int]]:
    """Map a (line, 0-based column) of ``original`` to where that code is in ``current``
    (earlier codemods may have added lines or indented blocks); unmatched lines stay put."""
    if original == current:
        return lambda line, column: (line, column)
    old, new = original.splitlines(), current.splitlines()
    lines: dict[int, tuple[int, int]] = {}
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            lines.update({i1 + k + 1: (j1 + k + 1, 0) for k in range(i2 - i1)})
        elif tag == "replace":
            stripped = [line.strip() for line in new[j1:j2]]
            for i in range(i1, i2):
                if old[i].strip() in stripped:
                    j = j1 + stripped.index(old[i].strip())
                    shift = (len(new[j]) - len(new[j].lstrip())) - (
                        len(old[i]) - len(old[i].lstrip())
                    )
                    lines[i + 1] = (j + 1, shift)

    def at(line: int, column: int) -> tuple[int, int]:
        new_line, shift = lines.get(line, (line, 0))
        return new_line, max(column + shift, 0)

    return at


def write_companions_if_standalone(context: CodemodContext) -> list[str]:
    """Outside the claun-migrate engine (``python -m libcst.tool codemod``), write the companion
    files now, beside ``context.filename``; a file edited by hand or not ours is kept.

    Returns the paths kept, for the caller to warn about. Under the engine this does nothing:
    the engine writes companions itself, atomically and only on ``apply``.
    """
    if context.scratch.get(ENGINE) or not context.filename:
        return []
    kept = []
    folder = os.path.dirname(os.path.abspath(context.filename))
    for relative, text in companions(context).items():
        path = os.path.join(folder, relative)
        try:
            with open(path, encoding="utf-8") as handle:
                existing: str | None = handle.read()
        except FileNotFoundError:
            existing = None
        if existing == text:
            continue
        if existing is not None and not is_pristine(existing):
            kept.append(path)
            continue
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    return kept


RELIANCES = "claun.relies_on"


def rely_on(context: CodemodContext, path: str) -> None:
    """Declare that this file's edit is only correct together with the edit of ``path`` in the
    same run (absolute, or relative to the transformed file's folder): if the engine cannot
    write that edit, it must not write this one either."""
    context.scratch.setdefault(RELIANCES, set()).add(path)


def reliances(context: CodemodContext) -> set[str]:
    """The paths whose edits this file's edit relies on, as given to :func:`rely_on`."""
    return set(context.scratch.get(RELIANCES, set()))
