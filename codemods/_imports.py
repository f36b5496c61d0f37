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
    """``after`` with the top imports that ``before`` did not have moved to their section."""
    known = {_key(s) for s in _top_imports(before)[1]}
    start, run = _top_imports(after)
    added = [s for s in run if _key(s) not in known]
    if not added:
        return after
    blocks: list[Block] = []
    for statement in run:
        if any(statement is a for a in added):
            continue
        if not blocks or _separated(statement):
            blocks.append([])
        blocks[-1].append(statement)
    opened: list[Block] = []  # the block of added absolute imports with no package block
    for statement in added:
        _place(blocks, statement.with_changes(leading_lines=()), opened)
    placed = [s for block in blocks for s in block]
    body = list(after.body)
    body[start : start + len(run)] = placed
    return after.with_changes(body=body)


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


def _key(statement: cst.BaseStatement) -> tuple[bool, int, str] | None:
    """isort's order of a one-import line (``import`` before ``from``, the farthest relative
    first, names without case); None for any other statement."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    node = statement.body[0]
    code = cst.Module([]).code_for_node
    if isinstance(node, cst.Import):
        return False, 0, code(node.names[0].name).lower()
    if isinstance(node, cst.ImportFrom):
        module = code(node.module) if node.module is not None else ""
        return True, -len(node.relative), module.lower()
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
