"""Imports a codemod added, in the section isort (and ruff's I001) puts them in.

Codemods schedule imports with libcst's ``AddImportsVisitor.add_needed_import``; the visitor
itself would walk the whole tree twice and append new imports after the last import at the top
of the module, with no blank line: ``from .db_pool import getconn`` would land in the
standard-library block. Here :func:`add_imports` adds the scheduled ones the module's top
imports lack, and :func:`place_added_imports` moves each added import to the block of its own
package (sorted in it), a relative import to the block of relative imports; without one, it
opens a block after the others (an absolute one before the relative block), one blank line
above. The user's imports keep their order and formatting; imports anywhere but the top
(``if TYPE_CHECKING:``) are not looked at.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence

import libcst as cst
from libcst.codemod.visitors import ImportItem

Block = list[cst.SimpleStatementLine]


def add_imports(module: cst.Module, wanted: Sequence[ImportItem]) -> cst.Module:
    """``module`` with a ``from M import name`` (or ``import M``) for each of ``wanted`` that its
    top imports do not already bind, after them (``place_added_imports`` then sorts them in)."""
    start, run = _top_imports(module)
    have = {_item_key(alias, s.body[0]) for s in run for alias in _aliases(s.body[0])}
    new: Block = []
    for item in wanted:
        key = (item.module, item.obj_name, item.alias)
        star = (item.module, "*", None)
        if key in have or (item.obj_name and star in have):
            continue
        have.add(key)
        alias = f" as {item.alias}" if item.alias else ""
        code = (
            f"import {item.module}"
            if item.obj_name is None
            else (f"from {item.module} import {item.obj_name}")
        )
        new.append(cst.parse_statement(code + alias))  # type: ignore[arg-type]
    if not new:
        return module
    body = list(module.body)
    end = start + len(run)
    if end < len(body):
        body[end] = _blank_above(body[end])
    body[end:end] = new
    return module.with_changes(body=body)


def without_unused_imports(module: cst.Module, candidates: Iterable[str]) -> cst.Module:
    """``module`` without the names its top-level imports bind that are among ``candidates``
    and that nothing else in the module uses any more (a statement left with no name goes,
    its blank lines and comments staying on the statement that follows it)."""
    candidates = set(candidates)
    if not candidates:
        return module
    used = _used_names(module)
    if used is None:
        return module
    body: list[cst.BaseStatement] = []
    carried: Sequence[cst.EmptyLine] = ()
    for statement in module.body:
        node = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) else None
        if isinstance(node, cst.Import | cst.ImportFrom) and len(statement.body) == 1:  # type: ignore[union-attr]
            aliases = _aliases(node)
            gone = [
                a
                for a in aliases
                if a is not None and (b := _bound(a, node)) in candidates and b not in used
            ]
            if gone and len(gone) == len(aliases):
                carried = [*carried, *statement.leading_lines]
                continue
            if gone:
                kept = [a for a in aliases if all(a is not g for g in gone)]
                kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)  # type: ignore[union-attr]
                statement = statement.with_changes(body=[node.with_changes(names=kept)])
        if carried:
            statement = statement.with_changes(
                leading_lines=_joined(carried, statement.leading_lines)
            )
            carried = ()
        body.append(statement)
    return module.with_changes(body=body)


def _joined(above: Sequence[cst.EmptyLine], below: Sequence[cst.EmptyLine]) -> list[cst.EmptyLine]:
    """The lines left where a statement went: its own above the next one's, the blank lines
    where they meet as many as the larger of the two had."""
    ours, theirs = _leading_blank(above[::-1]), _leading_blank(below)
    return [
        *above[: len(above) - ours],
        *[cst.EmptyLine() for _ in range(max(ours, theirs))],
        *below[theirs:],
    ]


def _used_names(module: cst.Module) -> set[str] | None:
    """Every name the module's code reads or binds outside imports, and every string it holds
    (``__all__``, string annotations); None when Python cannot parse it here."""
    try:
        tree = ast.parse(module.code)
    except (SyntaxError, ValueError):
        return None
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            used.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            used.update(node.value.replace(".", " ").replace("[", " ").split())
    return used


def _bound(alias: cst.ImportAlias, node: cst.Import | cst.ImportFrom) -> str:
    """The name an imported alias binds (``import a.b`` binds ``a``)."""
    code = cst.Module([]).code_for_node
    if alias.asname is not None:
        return code(alias.asname.name)
    name = code(alias.name)
    return name.split(".")[0] if isinstance(node, cst.Import) else name


def _aliases(node: cst.BaseSmallStatement) -> Sequence[cst.ImportAlias | None]:
    names = getattr(node, "names", ())
    return [None] if isinstance(names, cst.ImportStar) else names


def _item_key(
    alias: cst.ImportAlias | None, node: cst.BaseSmallStatement
) -> tuple[str, str | None, str | None]:
    """(module, name, as-name) of one imported name, as an ``ImportItem`` spells them."""
    code = cst.Module([]).code_for_node
    asname = code(alias.asname.name) if alias is not None and alias.asname else None
    if isinstance(node, cst.Import):
        assert alias is not None
        return code(alias.name), None, asname
    assert isinstance(node, cst.ImportFrom)
    module = "." * len(node.relative) + (code(node.module) if node.module else "")
    return module, "*" if alias is None else code(alias.name), asname


def _blank_above(statement: cst.BaseStatement) -> cst.BaseStatement:
    """The first statement after the imports, one blank line below them."""
    lines = statement.leading_lines
    if lines and lines[0].comment is None:
        return statement
    return statement.with_changes(leading_lines=[cst.EmptyLine(), *lines])


def place_added_imports(before: cst.Module, after: cst.Module) -> cst.Module:
    """``after`` with the top imports that ``before`` did not have moved to their section:
    plain names merged into the module's plain import, each ``as`` name on its own line."""
    start, run = _top_imports(after)
    kept, added = _split(_top_imports(before)[1], run)
    if not added:
        return after
    blocks: list[Block] = []
    for statement in kept:
        if not blocks or _separated(statement):
            blocks.append([])
        blocks[-1].append(statement)
    opened: list[Block] = []  # the block of added absolute imports with no package block
    for statement in added:
        if not _merge(blocks, statement):
            _place(blocks, statement.with_changes(leading_lines=()), opened)
    placed = [s for block in blocks for s in block]
    body = list(after.body)
    body[start : start + len(run)] = placed
    return after.with_changes(body=body)


def _split(
    old: Sequence[cst.SimpleStatementLine], run: Sequence[cst.SimpleStatementLine]
) -> tuple[Block, Block]:
    """The user's statements of ``run`` (names ``AddImportsVisitor`` merged into one taken
    out again), and the added ones, one per module and one per ``as`` name."""
    code = cst.Module([]).code_for_node
    unchanged = [code(s.body[0]) for s in old]
    originals = {_key(s)[:3]: s.body[0] for s in old}  # type: ignore[index]
    kept: Block = []
    added: Block = []
    for statement in run:
        node = statement.body[0]
        if code(node) in unchanged:
            unchanged.remove(code(node))
            kept.append(statement)
            continue
        original = originals.get(_key(statement)[:3])  # type: ignore[index]
        if not isinstance(node, cst.ImportFrom) or isinstance(node.names, cst.ImportStar):
            (kept if original is not None else added).append(statement)
            continue
        names = list(node.names)
        if isinstance(original, cst.ImportFrom) and not isinstance(original.names, cst.ImportStar):
            had = {code(a.with_changes(comma=cst.MaybeSentinel.DEFAULT)) for a in original.names}
            new = [
                a for a in names if code(a.with_changes(comma=cst.MaybeSentinel.DEFAULT)) not in had
            ]
            if len(new) < len(names):  # the user's statement, maybe with names merged in
                rest = [a for a in names if all(a is not n for n in new)]  # in their order
                kept.append(statement.with_changes(body=[node.with_changes(names=rest)]))
                names = new
        if not names:
            continue
        plain = [a for a in names if a.asname is None]
        groups = [plain] if plain else []
        groups += [[a] for a in names if a.asname is not None]
        for group in groups:
            aliases = [
                a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in sorted(group, key=_member)
            ]
            added.append(
                cst.SimpleStatementLine([node.with_changes(names=aliases, lpar=None, rpar=None)])
            )
    return kept, added


def _member(alias: cst.ImportAlias) -> tuple[int, str, str]:
    """isort's order of imported names: CONSTANTS, Classes, then the others."""
    name = cst.Module([]).code_for_node(alias.name)
    rank = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    return rank, name.lower(), name


def _merge(blocks: list[Block], statement: cst.SimpleStatementLine) -> bool:
    """Add the plain names of ``statement`` to the plain, one-line import of the same module
    (each at its sorted place), if there is one."""
    node = statement.body[0]
    if not isinstance(node, cst.ImportFrom) or any(a.asname for a in node.names):  # type: ignore[union-attr]
        return False
    for block in blocks:
        for index, other in enumerate(block):
            target = other.body[0]
            if (
                _key(other)[:3] != _key(statement)[:3]  # type: ignore[index]
                or not isinstance(target, cst.ImportFrom)
                or isinstance(target.names, cst.ImportStar)
                or target.lpar is not None
                or any(a.asname for a in target.names)
            ):
                continue
            names = list(target.names)
            for alias in node.names:  # type: ignore[union-attr]
                at = next(
                    (i for i, a in enumerate(names) if _member(a) > _member(alias)), len(names)
                )
                if at == len(names):
                    names[-1] = names[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
                names.insert(at, alias)
            block[index] = other.with_changes(body=[target.with_changes(names=names)])
            return True
    return False


def _top_imports(module: cst.Module) -> tuple[int, list[cst.SimpleStatementLine]]:
    """Where the module's leading import statements start (after a docstring), and them."""
    body = module.body
    start = 1 if body and _is_docstring(body[0]) else 0
    run: list[cst.SimpleStatementLine] = []
    for statement in body[start:]:
        if _key(statement) is None:
            break
        run.append(statement)  # type: ignore[arg-type]
    return start, run


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, cst.SimpleString | cst.ConcatenatedString)
    )


def _key(statement: cst.BaseStatement) -> tuple[bool, int, str, tuple[int, str, str]] | None:
    """isort's order of a one-import line (``import`` before ``from``, the farthest relative
    first, modules without case, then the first name); None for any other statement."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    node = statement.body[0]
    code = cst.Module([]).code_for_node
    if isinstance(node, cst.Import):
        return False, 0, code(node.names[0].name).lower(), (0, "", "")
    if isinstance(node, cst.ImportFrom):
        module = code(node.module) if node.module is not None else ""
        first = (0, "", "") if isinstance(node.names, cst.ImportStar) else _member(node.names[0])
        return True, -len(node.relative), module.lower(), first
    return None


def _separated(statement: cst.SimpleStatementLine) -> bool:
    return any(line.comment is None for line in statement.leading_lines)


def _relative(statement: cst.SimpleStatementLine) -> bool:
    key = _key(statement)
    return key is not None and key[1] < 0


def _package(statement: cst.SimpleStatementLine) -> str:
    key = _key(statement)
    return key[2].split(".")[0] if key is not None and key[1] == 0 else ""


def _place(blocks: list[Block], statement: cst.SimpleStatementLine, opened: list[Block]) -> None:
    if _relative(statement):
        home = [b for b in blocks if all(_relative(s) for s in b)]
        if home:
            _insert_sorted(home[-1], statement)
        else:
            _open_block(blocks, len(blocks), statement)
        return
    package = _package(statement)
    for block in [*blocks, *opened]:
        if any(_package(s) == package for s in block) or any(block is b for b in opened):
            _insert_sorted(block, statement)
            return
    local = [i for i, b in enumerate(blocks) if all(_relative(s) for s in b)]
    opened.append(_open_block(blocks, local[0] if local else len(blocks), statement))


def _open_block(blocks: list[Block], index: int, statement: cst.SimpleStatementLine) -> Block:
    """A block of its own at ``index``, one blank line from its neighbours."""
    if index > 0:
        statement = statement.with_changes(leading_lines=[cst.EmptyLine()])
    elif blocks:  # before the first block: it takes that block's place after the docstring
        first = blocks[0][0]
        blank = _leading_blank(first.leading_lines)
        statement = statement.with_changes(leading_lines=first.leading_lines[:blank])
        rest = first.leading_lines[blank:]
        blocks[0][0] = first.with_changes(leading_lines=[cst.EmptyLine(), *rest])
    blocks.insert(index, [statement])
    return blocks[index]


def _insert_sorted(block: Block, statement: cst.SimpleStatementLine) -> None:
    """Before the first import that sorts after it; the first of a block hands over the blank
    lines above it (its comments stay with it)."""
    key = _key(statement)
    index = next((i for i, s in enumerate(block) if _key(s) > key), len(block))  # type: ignore[operator]
    if index == 0:
        first = block[0]
        blank = _leading_blank(first.leading_lines)
        statement = statement.with_changes(leading_lines=first.leading_lines[:blank])
        block[0] = first.with_changes(leading_lines=first.leading_lines[blank:])
    block.insert(index, statement)


def _leading_blank(lines: Sequence[cst.EmptyLine]) -> int:
    count = 0
    while count < len(lines) and lines[count].comment is None:
        count += 1
    return count
