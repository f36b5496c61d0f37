"""Unsafe fixes to SQL text: give every output column a name both drivers report, once.

An expression without an alias (``COUNT(*)``, ``lower(email)``, ``1``, ``(u.email)``) is
named differently by psycopg2 and sqlite3, and two columns called ``id`` make ``row["id"]``
ambiguous. :func:`fix_sql` inserts `` AS name`` after such an expression (or lowercases an
alias written in mixed case) in the text as written, keeping comments, spacing, placeholders
and case, then proves the result with :func:`output_columns`. These edits change the SQL and
the names its rows report, so they are opt-in (``--unsafe-fixes``).
"""

from __future__ import annotations

import ast
import difflib
import io
import re
import sqlite3
import tokenize as pytokenize
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from claun_migrate.codemods._sql import (
    Columns,
    Schema,
    SelectList,
    output_columns,
    select_list,
    tokenize,
)

LIST_ENDS = frozenset(
    {TokenType.FROM, TokenType.INTO, TokenType.WHERE, TokenType.GROUP_BY, TokenType.HAVING}
    | {TokenType.ORDER_BY, TokenType.LIMIT, TokenType.OFFSET, TokenType.UNION, TokenType.EXCEPT}
    | {TokenType.INTERSECT, TokenType.WINDOW, TokenType.SEMICOLON, TokenType.FETCH}
)
OPEN = frozenset((TokenType.L_PAREN, TokenType.L_BRACKET))
CLOSE = frozenset((TokenType.R_PAREN, TokenType.R_BRACKET))
MAX_WORDS = 3


@dataclass(frozen=True)
class SqlFix:
    """The fixed SQL, its columns (all proven), and the new name of each edited position."""

    sql: str
    columns: Columns
    names: Mapping[int, str] = field(default_factory=dict)


def _item_tokens(sql: str, found: SelectList) -> list[list[Token]] | None:
    """The tokens of each select-list (or RETURNING) item of ``sql``, in order."""
    tokens = tokenize(sql, found.dialect)
    if not tokens:
        return None
    start_type = TokenType.RETURNING if found.returning else TokenType.SELECT
    depth, start = 0, None
    for index, token in enumerate(tokens):
        depth += (token.token_type in OPEN) - (token.token_type in CLOSE)
        if depth == 0 and token.token_type == start_type:
            start = index + 1
            break
    if start is None:
        return None
    if start < len(tokens) and tokens[start].token_type in (TokenType.DISTINCT, TokenType.ALL):
        start += 1
        if start < len(tokens) and tokens[start].token_type == TokenType.ON:
            start += 1
            while start < len(tokens) and (depth or tokens[start].token_type in OPEN):
                depth += (tokens[start].token_type in OPEN) - (tokens[start].token_type in CLOSE)
                start += 1
    items: list[list[Token]] = [[]]
    for before, token in zip(tokens[start - 1 :], tokens[start:], strict=False):
        kind = token.token_type
        distinct_from = kind == TokenType.FROM and before.token_type == TokenType.DISTINCT
        if depth == 0 and kind in LIST_ENDS and not distinct_from:
            break
        if depth == 0 and kind == TokenType.COMMA:
            items.append([])
            continue
        depth += (kind in OPEN) - (kind in CLOSE)
        items[-1].append(token)
    return items if len(items) == len(found.items) and all(items) else None


def _function_name(expression: exp.Func) -> str:
    if isinstance(expression, exp.Anonymous):
        return str(expression.this)
    return expression.sql_name()


def _words(expression: exp.Expression) -> list[str]:
    """Words for a readable name: function names, column names, short string literals."""
    if isinstance(expression, (exp.Paren, exp.Cast, exp.Window, exp.Filter, exp.Alias)):
        return _words(expression.this)
    if isinstance(expression, exp.Column):
        return [expression.name]
    if isinstance(expression, exp.Literal):
        return [expression.name] if re.fullmatch(r"[A-Za-z][\w ]{0,19}", expression.name) else []
    words = [_function_name(expression)] if isinstance(expression, exp.Func) else []
    for child in expression.iter_expressions():
        words += _words(child)
    return words


def _postgres_name(expression: exp.Expression) -> str | None:
    """The name PostgreSQL gives an unaliased expression, where it gives one."""
    if isinstance(expression, (exp.Paren, exp.Cast)):
        return _postgres_name(expression.this)
    if isinstance(expression, exp.Column):
        return expression.name.lower()
    if isinstance(expression, exp.Func):
        return _function_name(expression).lower()
    return None


def _label_ok(name: str) -> bool:
    """Whether ``name`` is accepted unquoted after AS (SQLite rejects some keywords there;
    PostgreSQL takes any word)."""
    try:
        sqlite3.connect(":memory:").execute(f"SELECT 1 AS {name}").close()
    except sqlite3.Error:
        return False
    return True


def _snake(words: Iterable[str]) -> str:
    """A lowercase snake_case label from ``words`` that SQLite accepts after AS."""
    parts = [re.sub(r"[^a-z0-9]+", "_", word.lower()).strip("_") for word in words]
    name = "_".join(part for part in parts if part)[:50] or "value"
    if name[0].isdigit():
        name = f"col_{name}"
    return name if _label_ok(name) else f"{name}_value"


def _unique(choices: Iterable[Iterable[str]], taken: set[str]) -> str:
    """The first of ``choices`` (lists of words) that no other column has, else the first
    numbered; it is then taken."""
    names = [_snake(words) for words in choices]
    candidate = next((name for name in names if name not in taken), None)
    number = 2
    while candidate is None:
        candidate = f"{names[0]}_{number}" if f"{names[0]}_{number}" not in taken else None
        number += 1
    taken.add(candidate)
    return candidate


def _table_names(found: SelectList) -> dict[str, str]:
    """FROM and JOIN aliases (and names) -> the table's own name, lowercase."""
    sources = [found.select.args.get("from_"), *(found.select.args.get("joins") or [])]
    names = {}
    for source in sources:
        table = getattr(source, "this", None)
        if isinstance(table, exp.Table):
            names[table.alias_or_name.lower()] = table.name.lower()
    return names


def _renames(found: SelectList, targets: set[int]) -> dict[int, tuple[int, str]] | None:
    """Output position -> (item index, new name) for the targets that need one; None when a
    target cannot be named (it comes from a star)."""
    owners = [(i, len(cols) > 1 or _is_star(e)) for i, (e, cols) in enumerate(found.items)]
    positions = [(owner, star) for owner, star in owners for _ in found.items[owner][1]]
    names = [column.name for _, columns in found.items for column in columns]
    renamed: set[int] = set()
    for name in {n.lower() for n in names if n}:
        members = [p for p, n in enumerate(names) if n and n.lower() == name]
        if targets.isdisjoint(members):
            continue
        editable = [p for p in members if p in targets and not positions[p][1]]
        keep = next((p for p in members if p not in editable), members[0])
        if len(members) > 1 and any(p not in editable for p in members if p != keep):
            return None
        renamed.update(p for p in members if p != keep)
    unnamed = [p for p in sorted(targets) if names[p] is None]
    if any(positions[p][1] for p in unnamed):
        return None
    renamed.update(unnamed)
    taken = {n.lower() for p, n in enumerate(names) if n and p not in renamed}
    for p, name in enumerate(names):
        guess = _postgres_name(found.items[positions[p][0]][0])
        if name is None and p not in renamed and guess:
            taken.add(guess)
    tables = _table_names(found)
    result = {}
    for p in sorted(renamed):
        expression = found.items[positions[p][0]][0]
        if names[p] is None and isinstance(expression, exp.Alias):
            choices = [[expression.alias]]
        elif names[p] is None:
            words = _words(expression)[:MAX_WORDS]
            choices = [["count"], words] if isinstance(expression, exp.Count) else [words]
        elif isinstance(expression, exp.Column) and expression.table.lower() in tables:
            choices = [[tables[expression.table.lower()], names[p]]]
        else:
            choices = [[names[p]]]
        result[p] = (positions[p][0], _unique(choices, taken))
    return result


def _is_star(expression: exp.Expression) -> bool:
    return isinstance(expression, exp.Star) or (
        isinstance(expression, exp.Column) and isinstance(expression.this, exp.Star)
    )


def fix_sql(sql: str, schema: Schema, *, positions: Iterable[int] | None = None) -> SqlFix | None:
    """``sql`` with every output column in ``positions`` (default: all) named, and named apart
    from every other column, by inserting `` AS name`` (or lowercasing a mixed-case alias);
    None when that cannot be done and proven. SQL needing no edit comes back unchanged."""
    found = select_list(sql, schema)
    if isinstance(found, str):
        return None
    width = sum(len(columns) for _, columns in found.items)
    targets = set(range(width) if positions is None else positions)
    if not targets <= set(range(width)):
        return None
    renames = _renames(found, targets)
    spans = _item_tokens(sql, found) if renames else []
    if renames is None or spans is None:
        return None
    edits = []
    for item, name in renames.values():
        expression, last = found.items[item][0], spans[item][-1]
        if isinstance(expression, exp.Alias):
            if last.text.lower() != expression.alias.lower():
                return None
            edits.append((last.start, last.end + 1, name))
        else:
            edits.append((last.end + 1, last.end + 1, f" AS {name}"))
    fixed = sql
    for start, end, text in sorted(edits, reverse=True):
        fixed = fixed[:start] + text + fixed[end:]
    return _proven(sql, fixed, schema, targets, {p: name for p, (_, name) in renames.items()})


def _proven(
    sql: str, fixed: str, schema: Schema, targets: set[int], names: dict[int, str]
) -> SqlFix | None:
    """The fix, if ``fixed`` reads back with the planned names and the targets named apart."""
    before, after = output_columns(sql, schema).columns, output_columns(fixed, schema).columns
    if before is None or after is None or len(before) != len(after):
        return None
    expected = [names.get(p, column.name) for p, column in enumerate(before)]
    if [column.name for column in after] != expected:
        return None
    lowered = [name.lower() for name in expected if name]
    if any(expected[p] is None or lowered.count(expected[p].lower()) > 1 for p in targets):
        return None
    return SqlFix(fixed, Columns(after), names)


def python_literal(source: str, sql: str) -> str | None:
    """The Python string literal ``source`` (its code, prefix and quotes included) edited to
    hold ``sql``, changing only where the texts differ; None for f-strings, bytes, and edits
    the literal cannot hold. Implicitly concatenated pieces are edited in place."""
    wrapped = f"({source})"
    try:
        tokens = list(pytokenize.generate_tokens(io.StringIO(wrapped).readline))
        old = ast.literal_eval(wrapped)
    except (SyntaxError, ValueError, pytokenize.TokenError):
        return None
    ignored = (pytokenize.NL, pytokenize.NEWLINE, pytokenize.COMMENT, pytokenize.ENDMARKER)
    pieces = [t for t in tokens[1:-1] if t.type not in ignored][:-1]
    if not isinstance(old, str) or not pieces or any(t.type != pytokenize.STRING for t in pieces):
        return None
    offsets = _line_offsets(wrapped)
    where: list[tuple[int, str, bool]] = []  # per value character: source end, quote, raw
    starts = []
    for piece in pieces:
        start = offsets[piece.start[0] - 1] + piece.start[1] - 1
        mapped = _piece_map(piece.string)
        if mapped is None:
            return None
        quote, raw, ends, body = mapped
        starts.append((start + body, quote, raw))
        where += [(start + end, quote, raw) for end in ends]
    if len(where) != len(old):
        return None
    edited = source
    matcher = difflib.SequenceMatcher(None, old, sql, autojunk=False)
    for tag, i1, i2, j1, j2 in reversed(matcher.get_opcodes()):
        if tag == "equal":
            continue
        at, quote, raw = where[i1 - 1] if i1 else starts[0]
        end = where[i2 - 1][0] if i2 > i1 else at
        text = _escaped(sql[j1:j2], quote, raw)
        if text is None:
            return None
        edited = edited[:at] + text + edited[end:]
    try:
        return edited if ast.literal_eval(f"({edited})") == sql else None
    except (SyntaxError, ValueError):
        return None


def _line_offsets(source: str) -> list[int]:
    offsets, total = [], 0
    for line in source.splitlines(keepends=True) or [""]:
        offsets.append(total)
        total += len(line)
    return [*offsets, total]


def _quote_of(literal: str) -> str:
    body = literal.lstrip("rRuU")
    return body[:3] if body[:3] in ('"""', "'''") else body[:1]


def _piece_map(literal: str) -> tuple[str, bool, list[int], int] | None:
    """For one string token: its quote, whether raw, for each character of its value the
    offset (in the token) just after the source text that makes it, and where its body starts."""
    prefix = literal[: len(literal) - len(literal.lstrip("rRuUbBfF"))]
    if set(prefix.lower()) - {"r", "u"}:
        return None
    raw = "r" in prefix.lower()
    quote = _quote_of(literal)
    start, stop = len(prefix) + len(quote), len(literal) - len(quote)
    ends: list[int] = []
    index = start
    while index < stop:
        if literal[index] == "\\" and not raw:
            size = _escape_size(literal, index)
            if size is None:
                return None
            value = ast.literal_eval(quote + literal[index : index + size] + quote)
            index += size
            ends += [index] * len(value)
        else:
            index += 1
            ends.append(index)
    return quote, raw, ends, start


def _escape_size(literal: str, index: int) -> int | None:
    """How many source characters the escape sequence at ``index`` spans."""
    follower = literal[index + 1 : index + 2]
    if follower in ("x", "u", "U"):
        return {"x": 4, "u": 6, "U": 10}[follower]
    if follower == "N":
        close = literal.find("}", index)
        return close - index + 1 if close > 0 else None
    if follower.isdigit() and follower < "8":
        size = 2
        while size < 4 and literal[index + size : index + size + 1] in tuple("01234567"):
            size += 1
        return size
    return 2 if follower else None


def _escaped(text: str, quote: str, raw: bool) -> str | None:
    """``text`` as it must be written inside a literal with ``quote`` (None if it cannot)."""
    unsafe = "\\" in text or quote[0] in text or ("\n" in text and len(quote) == 1)
    if raw:
        return None if unsafe else text
    text = text.replace("\\", "\\\\").replace(quote[0], "\\" + quote[0])
    return text if len(quote) == 3 else text.replace("\n", "\\n")
