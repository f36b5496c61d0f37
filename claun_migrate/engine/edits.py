"""Count a codemod's edits in near-linear time: the changed hunks between two texts.

``difflib.SequenceMatcher`` is quadratic on long files (a 200 KB generated module took minutes).
Like patience diff, this matches lines that occur once on each side (longest increasing run,
n log n), trims equal ends, and recurses into the gaps; a gap without such a line is one hunk.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence


def count_edits(before: str, after: str) -> int:
    """The number of runs of changed lines that turn ``before`` into ``after``."""
    a, b = before.splitlines(), after.splitlines()
    total = 0
    stack = [(0, len(a), 0, len(b))]
    while stack:
        alo, ahi, blo, bhi = stack.pop()
        while alo < ahi and blo < bhi and a[alo] == b[blo]:
            alo, blo = alo + 1, blo + 1
        while alo < ahi and blo < bhi and a[ahi - 1] == b[bhi - 1]:
            ahi, bhi = ahi - 1, bhi - 1
        if alo == ahi and blo == bhi:
            continue
        anchors = _anchors(a, alo, ahi, b, blo, bhi) if alo < ahi and blo < bhi else []
        if not anchors:
            total += 1
            continue
        for i, j in anchors:
            stack.append((alo, i, blo, j))
            alo, blo = i + 1, j + 1
        stack.append((alo, ahi, blo, bhi))
    return total


def _anchors(
    a: Sequence[str], alo: int, ahi: int, b: Sequence[str], blo: int, bhi: int
) -> list[tuple[int, int]]:
    """Pairs of lines unique on both sides, the longest run in the same order on both."""
    count_a = Counter(a[alo:ahi])
    count_b = Counter(b[blo:bhi])
    where_b = {line: j for j, line in enumerate(b[blo:bhi], blo) if count_b[line] == 1}
    pairs = [
        (i, where_b[line])
        for i, line in enumerate(a[alo:ahi], alo)
        if count_a[line] == 1 and line in where_b
    ]
    tails: list[int] = []
    tail_index: list[int] = []
    previous = [-1] * len(pairs)
    for k, (_, j) in enumerate(pairs):
        at = bisect.bisect_left(tails, j)
        if at == len(tails):
            tails.append(j)
            tail_index.append(k)
        else:
            tails[at] = j
            tail_index[at] = k
        previous[k] = tail_index[at - 1] if at else -1
    chain = []
    k = tail_index[-1] if tail_index else -1
    while k >= 0:
        chain.append(pairs[k])
        k = previous[k]
    return chain[::-1]
