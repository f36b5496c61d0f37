"""Imports a codemod added, moved to the section isort (and ruff's I001) puts them in.

libcst's ``AddImportsVisitor`` appends new imports after the last import at the top of the
module, with no blank line: ``from .db_pool import getconn`` lands in the standard-library
block. Here each added import goes to the block of its own package (sorted in it), a relative
import to the block of relative imports; without one, it opens a block after the others (an
absolute one before the relative block), one blank line above. The user's imports keep their
order and formatting; imports anywhere but the top (``if TYPE_CHECKING:``) are not looked at.
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

Block = list[cst.SimpleStatementLine]


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
