"""Line wrapping after the codemods: a statement an edit pushed past the limit is split as black
would split it in the simple cases; every other line is left as it is.

A line is ours when the run changed it and made it longer (``row[0]`` -> ``row["name"]``, a call
gaining ``cursor_factory=...``, a block indented into ``try``). A simple statement holding such
a line past the limit is laid out again from its tokens: split at its last bracket pair whose
head fits, the contents on one line when they fit (call arguments) or one element per line with
a trailing comma (always for a written-out collection), recursively; a long value of ``x = ``
or ``return`` gets black's parentheses and splits before its operators. Statements with
comments, backslashes or multi-line strings are left, and so is one nothing splits; a new
statement must parse to the same ``ast`` as the old one, and the new file must compile, else
the file is returned unchanged. Nothing here knows codemods.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import io
import keyword
import tokenize
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
_INDENT = "    "
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = frozenset(_OPEN.values())
_PRIORITIES = [
    frozenset(texts.split())
    for texts in ("or", "and", "== != < > <= >=", "|", "^", "&", "<< >>", "+ -", "* / // % @")
]
_OPERATORS = frozenset().union(*_PRIORITIES) | {"if"}
_UNARY_AFTER = _OPERATORS | {"(", "[", "{", ",", "=", ":", "return", "not", "in", "is", "**"}
_SKIP = frozenset(
    (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
)
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)


def wrap(before: str, after: str, limit: int) -> tuple[str, Moves]:
    """``after`` with each simple statement that has a line the run lengthened past ``limit``
    split over several lines (``after`` itself when nothing needs or allows it), and where
    each position of ``after`` went."""
    moves = Moves()
    grown = grown_lines(before, after, limit)
    if not grown:
        return after, moves
    try:
        tree = ast.parse(after)
    except (SyntaxError, ValueError):
        return after, moves
    lines = _lines(after)
    for first, last in sorted(_statement_spans(lines, tree), reverse=True):
        if not any(first <= line <= last for line in grown):
            continue
        try:
            new = _relayout(lines[first - 1 : last], limit)
        except Exception:  # a layout bug must never cost the migration: leave the statement
            new = None
        if new is not None:
            moves.spans.append((first, last, "".join(lines[first - 1 : last]), "".join(new)))
            lines[first - 1 : last] = new
    result = "".join(lines)
    if not moves.spans:
        return after, moves
    try:
        compile(result, "<layout>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return after, Moves()
    return result, moves


class Moves:
    """Where positions (1-based line and column) of the text before wrapping are after it."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, int, str, str]] = []  # first, last line, old, new text

    def __call__(self, line: int, column: int) -> tuple[int, int]:
        shift = 0
        for first, last, old, new in sorted(self.spans):
            if line > last:
                shift += len(_lines(new)) - (last - first + 1)
            elif line >= first:
                return _moved(old, new, line - first, column - 1, first + shift)
        return line + shift, column

    def finding(self, finding: T) -> T:
        """``finding`` (a dataclass with ``line`` and ``column``) where its site went."""
        line, column = self(finding.line, finding.column)  # type: ignore[attr-defined]
        return dataclasses.replace(finding, line=line, column=column)  # type: ignore[type-var]


def _moved(old: str, new: str, row: int, column: int, first: int) -> tuple[int, int]:
    """The position in ``new`` of the token at (``row``, ``column``) of ``old`` (the same
    tokens, ``new`` having trailing commas added)."""
    olds, news = _starts(old), _starts(new)
    if not olds or not news:
        return first + row, column + 1
    at = max((i for i, (r, c, _) in enumerate(olds) if (r, c) <= (row, column)), default=0)
    j = -1
    for i in range(at + 1):
        j += 1
        while j < len(news) - 1 and news[j][2] == "," and olds[i][2] != ",":
            j += 1
    r, c, _ = news[min(j, len(news) - 1)]
    offset = column - olds[at][1] if olds[at][0] == row else 0
    return first + r, c + offset + 1


def _starts(text: str) -> list[tuple[int, int, str]]:
    """(row from 0, column, text) of each token of a statement."""
    indent = len(text) - len(text.lstrip(" "))
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text[indent:]).readline))
    except (tokenize.TokenError, SyntaxError):
        return []
    return [
        (t.start[0] - 1, t.start[1] + (indent if t.start[0] == 1 else 0), t.string)
        for t in tokens
        if t.type not in _SKIP
    ]


def _lines(text: str) -> list[str]:
    """Physical lines with their endings, split where Python's tokenizer splits them."""
    return io.StringIO(text, newline="").readlines()


def grown_lines(before: str, after: str, limit: int) -> set[int]:
    """Line numbers (1-based, in ``after``) past ``limit`` that the change made longer: each
    changed line is compared with the old line it comes from (the same text re-indented, the
    same place in a changed block of the same size, else the most similar one); a line like no
    old one is new, so ours."""
    old = [line.rstrip("\r\n") for line in _lines(before)]
    new = [line.rstrip("\r\n") for line in _lines(after)]
    grown: set[int] = set()
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        block = old[i1:i2]
        stripped = {line.strip(): line for line in block}
        for offset, j in enumerate(range(j1, j2)):
            line = new[j]
            if len(line) <= limit:
                continue
            if line.strip() in stripped:
                was = stripped[line.strip()]
            elif len(block) == j2 - j1:
                was = block[offset]
            else:
                similar = difflib.get_close_matches(line.strip(), list(stripped), n=1)
                was = stripped[similar[0]] if similar else ""
            if len(line) > len(was):
                grown.add(j + 1)
    return grown


def _statement_spans(source: list[str], tree: ast.Module) -> list[tuple[int, int]]:
    """(first, last) line of every simple statement alone on its lines."""
    spans: list[tuple[int, int]] = []
    taken: dict[int, int] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt) or _is_compound(node):
            continue
        last = node.end_lineno or node.lineno
        for number in {node.lineno, last}:
            taken[number] = taken.get(number, 0) + 1
        if not source[node.lineno - 1][: node.col_offset].strip():  # not after `else:`
            spans.append((node.lineno, last))
    return [(a, b) for a, b in spans if taken[a] == 1 and taken[b] == 1]


def _is_compound(node: ast.stmt) -> bool:
    return any(isinstance(getattr(node, name, None), list) for name in ("body", "cases"))


@dataclass(frozen=True)
class _Token:
    text: str
    kind: int
    gap: str  # the whitespace before it, on one line


def _relayout(lines: list[str], limit: int) -> list[str] | None:
    """The statement on ``lines`` laid out within ``limit``, or None to leave it."""
    first = lines[0]
    indent = first[: len(first) - len(first.lstrip())]
    if "\t" in indent:
        return None
    newline = first[len(first.rstrip("\r\n")) :] or "\n"
    source = "".join(lines)[len(indent) :]
    tokens = _tokens(source)
    if tokens is None:
        return None
    laid = _Layout(tokens, limit).line(0, len(tokens), "", indent)
    if len(laid) == 1 or laid == [line.rstrip("\r\n") for line in lines]:
        return None
    text = newline.join(laid)
    try:
        same = ast.dump(ast.parse(source)) == ast.dump(ast.parse(text[len(indent) :]))
    except (SyntaxError, ValueError):
        return None
    if not same:
        return None
    last = lines[-1]
    ending = last[len(last.rstrip("\r\n")) :]
    return [line + newline for line in laid[:-1]] + [laid[-1] + ending]


def _tokens(source: str) -> list[_Token] | None:
    """The statement's tokens with the spacing between them, or None when it holds something
    that a new layout could lose (a comment, a backslash, a multi-line string)."""
    try:
        raw = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    physical = source.splitlines(keepends=True)
    tokens: list[_Token] = []
    previous: tuple[int, int] | None = None
    depth = 0
    start: tuple[int, int] | None = None
    for token in raw:
        if token.type in _SKIP:
            continue
        if token.type == tokenize.COMMENT or "\n" in token.string:
            return None
        if _FSTRING_START is not None and token.type == _FSTRING_START:  # one atom, whole
            depth += 1
            if depth == 1:
                start = token.start
            continue
        if depth:
            if token.type == _FSTRING_END:
                depth -= 1
                if depth == 0 and start is not None:
                    text = _slice(physical, start, token.end)
                    if text is None:
                        return None
                    tokens.append(_Token(text, tokenize.STRING, _gap(physical, previous, start)))
                    previous = token.end
            continue
        tokens.append(_Token(token.string, token.type, _gap(physical, previous, token.start)))
        previous = token.end
    if any("\\" in t.gap for t in tokens):
        return None
    return _normalise(tokens)


def _slice(physical: list[str], start: tuple[int, int], end: tuple[int, int]) -> str | None:
    if start[0] != end[0]:
        return None
    return physical[start[0] - 1][start[1] : end[1]]


def _gap(physical: list[str], previous: tuple[int, int] | None, start: tuple[int, int]) -> str:
    """Spacing between two tokens; ``"\\n"`` when a line break separates them."""
    if previous is None:
        return ""
    if previous[0] != start[0]:
        text = physical[previous[0] - 1][previous[1] :]
        return "\\" if text.rstrip("\r\n").rstrip().endswith("\\") else "\n"
    return physical[start[0] - 1][previous[1] : start[1]]


def _normalise(tokens: list[_Token]) -> list[_Token]:
    """Line breaks between tokens become what one line would hold: nothing inside a bracket's
    edges, one space elsewhere."""
    out: list[_Token] = []
    for index, token in enumerate(tokens):
        gap = token.gap
        if "\n" in gap:
            before = tokens[index - 1].text if index else ""
            gap = "" if before in _OPEN or token.text in _CLOSE or token.text == "," else " "
        out.append(_Token(token.text, token.kind, gap))
    return out


class _Layout:
    """Black's right-hand split over one statement's tokens."""

    def __init__(self, tokens: list[_Token], limit: int) -> None:
        self.tokens = tokens
        self.limit = limit
        self.match: dict[int, int] = {}
        stack: list[int] = []
        for index, token in enumerate(tokens):
            if token.kind != tokenize.OP:
                continue
            if token.text in _OPEN:
                stack.append(index)
            elif token.text in _CLOSE and stack:
                self.match[stack.pop()] = index
        self.magic = {c for o, c in self.match.items() if self._magic(o, c)}

    def render(self, a: int, b: int) -> str:
        if a >= b:
            return ""
        return self.tokens[a].text + "".join(t.gap + t.text for t in self.tokens[a + 1 : b])

    def fits(self, a: int, b: int, prefix: str, suffix: str = "") -> bool:
        text = prefix + self.render(a, b) + suffix
        return len(text) <= self.limit and not any(a <= c < b for c in self.magic)

    def line(self, a: int, b: int, suffix: str, indent: str) -> list[str]:
        """Tokens ``a:b`` plus ``suffix`` as lines at ``indent``; one line, however long, when
        nothing splits it."""
        if self.fits(a, b, indent, suffix):
            return [indent + self.render(a, b) + suffix]
        value = self._value(a, b) if a == 0 else None
        if value is not None and len(self._top_any(value, b, _OPERATORS)) > 1:
            parenthesised = self._parenthesised(a, value, b, suffix, indent)
            if parenthesised is not None:
                return parenthesised
        pairs = [(o, c) for o, c in self._top_pairs(a, b) if self._splittable(o, c)]
        for o, c in reversed(pairs):
            tail_fits = self.fits(c + 1, b, indent + self.tokens[c].text, suffix)
            if self.fits(a, o + 1, indent) and tail_fits:
                body = self.body(o, c, indent + _INDENT)
                tail = indent + self.render(c, b) + suffix
                return [indent + self.render(a, o + 1), *body, tail]
        if value is not None:
            parenthesised = self._parenthesised(a, value, b, suffix, indent)
            if parenthesised is not None:
                return parenthesised
        split = self._operators(a, b) if a > 0 else []
        if split:
            lines = []
            for start, end in zip([a, *split], [*split, b], strict=True):
                lines += self.line(start, end, suffix if end == b else "", indent)
            return lines
        strings = range(a, b)
        if len(strings) > 1 and all(self.tokens[i].kind == tokenize.STRING for i in strings):
            parts = [indent + self.tokens[i].text for i in strings]
            return [*parts[:-1], parts[-1] + suffix]
        return [indent + self.render(a, b) + suffix]

    def body(self, o: int, c: int, indent: str) -> list[str]:
        """The contents of the bracket pair ``o``/``c``: on one line when they fit (except a
        collection display of several elements), else one element per line."""
        commas = self._top(o + 1, c, ",")
        kind = self._kind(o, commas)
        plain = not self._top(o + 1, c, "for") and not self._top(o + 1, c, "lambda")
        several = bool(commas) and plain and kind != "paren"
        hug = c not in self.magic and not (several and kind == "display")
        if hug and self.fits(o + 1, c, indent):
            return [indent + self.render(o + 1, c)]
        clauses = self._clauses(o + 1, c) if not commas else []
        if clauses:  # a comprehension: its element, then each `for`/`if` on a line of its own
            lines: list[str] = []
            for start, end in zip([o + 1, *clauses], [*clauses, c], strict=True):
                lines += self.line(start, end, "", indent)
            return lines
        if not several:
            return [indent + self.render(o + 1, c)] if commas else self.line(o + 1, c, "", indent)
        lines = []
        start = o + 1
        for end in [*commas, c]:
            if end == c and start == c:  # after a trailing comma
                break
            lines += self.line(start, end, ",", indent)
            start = end + 1
        return lines

    def _clauses(self, a: int, b: int) -> list[int]:
        """Where the ``for`` (or ``async for``) and ``if`` clauses of a comprehension in ``a:b``
        start (its ``if`` only after a ``for``: before one it is a conditional expression)."""
        fors = [i - 1 if self.tokens[i - 1].text == "async" else i for i in self._top(a, b, "for")]
        if not fors:
            return []
        ifs = [i for i in self._top(a, b, "if") if i > fors[0]]
        return sorted({*fors, *ifs})

    def _value(self, a: int, b: int) -> int | None:
        """Where the value of ``return VALUE`` or ``TARGET = VALUE`` starts, if it is not one
        bracketed atom already."""
        if self.tokens[a].text == "return":
            value = a + 1
        else:
            equals = self._top(a, b, "=")
            value = equals[-1] + 1 if equals else b
        if value >= b or self.match.get(value) == b - 1:
            return None
        return value

    def _parenthesised(
        self, a: int, value: int, b: int, suffix: str, indent: str
    ) -> list[str] | None:
        """``x = (`` / the value / ``)``, black's invisible parentheses, when that fits."""
        body = self.line(value, b, "", indent + _INDENT)
        lines = [indent + self.render(a, value) + " (", *body, indent + ")" + suffix]
        return lines if all(len(line) <= self.limit for line in lines) else None

    def _splittable(self, o: int, c: int) -> bool:
        """Black splits a bracket with contents, but not ``row["key"]``-style subscripts."""
        if c - o < 2:
            return False
        return not (self._kind(o, []) == "subscript" and not self._top(o + 1, c, ","))

    def _operators(self, a: int, b: int) -> list[int]:
        """The binary operators of the loosest kind in ``a:b`` (outside brackets), before which
        black splits a long expression inside brackets."""
        for kind in _PRIORITIES:
            found = [
                i
                for i in self._top_any(a, b, kind)
                if i > a and self.tokens[i - 1].text not in _UNARY_AFTER
            ]
            if found:
                return sorted(found)
        return []

    def _top_any(self, a: int, b: int, texts: frozenset[str]) -> list[int]:
        return [i for text in texts for i in self._top(a, b, text)]

    def _top_pairs(self, a: int, b: int) -> list[tuple[int, int]]:
        pairs = []
        index = a
        while index < b:
            close = self.match.get(index)
            if close is not None and close < b:
                pairs.append((index, close))
                index = close + 1
            else:
                index += 1
        return pairs

    def _top(self, a: int, b: int, text: str) -> list[int]:
        """Indexes in ``a:b`` of the tokens ``text`` outside any inner bracket."""
        found = []
        index = a
        while index < b:
            if index in self.match:
                index = self.match[index] + 1
                continue
            if self.tokens[index].text == text:
                found.append(index)
            index += 1
        return found

    def _kind(self, o: int, commas: list[int]) -> str:
        """call, subscript, paren (a parenthesised expression) or display (a tuple, list,
        dict or set written out)."""
        before = self.tokens[o - 1] if o else None
        trailer = before is not None and (
            (before.kind == tokenize.NAME and not keyword.iskeyword(before.text))
            or before.text in _CLOSE
            or before.kind == tokenize.STRING
        )
        bracket = self.tokens[o].text
        if trailer and bracket == "(":
            return "call"
        if trailer and bracket == "[":
            return "subscript"
        if bracket == "(" and not commas:
            return "paren"
        return "display"

    def _magic(self, o: int, c: int) -> bool:
        """A trailing comma that asks for one element per line (not a one-element tuple's)."""
        if self.tokens[c - 1].text != "," or c - 1 == o:
            return False
        commas = self._top(o + 1, c, ",")
        kind = self._kind(o, commas)
        one_tuple = self.tokens[o].text == "(" and kind != "call"
        return not (len(commas) == 1 and (one_tuple or kind == "subscript"))
