"""What codemods share: review findings and companion files, kept in the codemod context.

Codemods know nothing about files or output formats: they record findings and the files they
want beside the one they transform in ``context.scratch``, and the engine reports and writes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.metadata import PositionProvider

FINDINGS = "claun.findings"
COMPANIONS = "claun.companions"


@dataclass(frozen=True)
class Finding:
    """A site left for a person: where, which rule, why, and the edit we would suggest."""

    line: int
    column: int
    code: str
    message: str
    suggestion: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def report(
    context: CodemodContext, node: cst.CSTNode, code: str, message: str, suggestion: str = ""
) -> None:
    """Record a review finding at ``node`` (the codemod must depend on PositionProvider)."""
    position = context.get_metadata(PositionProvider, node).start
    findings: list[Finding] = context.scratch.setdefault(FINDINGS, [])
    finding = Finding(position.line, position.column + 1, code, message, suggestion)
    if finding not in findings:
        findings.append(finding)


def add_companion(context: CodemodContext, relative_path: str, text: str) -> None:
    """Ask for ``text`` to be written at ``relative_path``, relative to the transformed file."""
    context.scratch.setdefault(COMPANIONS, {})[relative_path] = text


def findings(context: CodemodContext) -> list[Finding]:
    """The findings recorded so far in ``context``."""
    return list(context.scratch.get(FINDINGS, []))


def companions(context: CodemodContext) -> dict[str, str]:
    """The companion files requested so far in ``context``."""
    return dict(context.scratch.get(COMPANIONS, {}))
