"""Render a :class:`~claun_migrate.engine.RunResult` as text, a unified diff, json, github or sarif.

Text lines follow the ``path:line:col: CODE message`` shape of ruff and flake8, so editors and
CI annotate them; json and sarif are for machines.
"""

from __future__ import annotations

import difflib
import io
import json
import os
import sys
from pathlib import Path

import click

from claun_migrate import __version__
from claun_migrate.engine import Change, RunResult

FORMATS = ("text", "json", "github", "sarif")


def display(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except (ValueError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return path.as_posix()


def _lines(text: str) -> list[str]:
    """Lines split at newlines only: ``str.splitlines`` also splits at form feeds and other
    separators that a patch must keep inside a line."""
    return io.StringIO(text, newline="").readlines()


def unified_diff(change: Change, color: bool = False) -> str:
    """The change as a ``git apply``-able unified diff (``/dev/null`` for created files)."""
    name = display(change.path)
    lines = difflib.unified_diff(
        _lines(change.before or ""),
        _lines(change.after),
        "/dev/null" if change.before is None else f"a/{name}",
        f"b/{name}",
    )
    out = []
    for line in lines:
        line = line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
        if color:
            styles = {"+++": "bold", "---": "bold", "@@": "cyan", "+": "green", "-": "red"}
            style = next((s for p, s in styles.items() if line.startswith(p)), None)
            if style == "bold":
                line = click.style(line, bold=True)
            elif style:
                line = click.style(line, fg=style)
        out.append(line)
    return "".join(out)


def _edits(result: RunResult) -> str:
    return ", ".join(f"{name}: {n} edits" for name, n in sorted(result.edits.items())) or "none"


def text(result: RunResult, mode: str) -> str:
    """Per-file lines, the review items and a one-line summary."""
    verb = {"apply": "changed", "check": "would change", "diff": "would change"}[mode]
    lines = []
    for change in result.changes:
        created = " (new file)" if change.before is None else ""
        lines.append(f"{display(change.path)}: {verb}{created} by {', '.join(change.codemods)}")
    for item in result.findings:
        f = item.finding
        lines.append(f"{display(item.path)}:{f.line}:{f.column}: {f.code} {f.message}")
        if f.suggestion:
            lines.append(f"    suggestion: {f.suggestion}")
    lines += [f"{display(e.path)}: error: {e.message}" for e in result.errors]
    lines.append(
        f"{len(result.changes)} files {verb} ({_edits(result)}); "
        f"{len(result.findings)} review items; {len(result.errors)} errors; "
        f"{result.files_parsed} of {result.files_scanned} files parsed"
        + (f", {result.files_cached} from cache." if result.files_cached else ".")
    )
    return "\n".join(lines) + "\n"


def as_dict(result: RunResult, mode: str, diff: bool = False) -> dict[str, object]:
    """One json-ready object: files changed, edits per codemod, findings, errors."""
    files: list[dict[str, object]] = []
    for change in result.changes:
        entry: dict[str, object] = {
            "file": display(change.path),
            "created": change.before is None,
            "codemods": list(change.codemods),
        }
        if diff:
            entry["diff"] = unified_diff(change)
        files.append(entry)
    findings = [
        {"file": display(i.path), "codemod": i.codemod, **i.finding.to_dict()}
        for i in result.findings
    ]
    return {
        "mode": mode,
        "written": result.written,
        "codemods": result.selected,
        "files_scanned": result.files_scanned,
        "files_parsed": result.files_parsed,
        "files_cached": result.files_cached,
        "files_changed": files,
        "edits": dict(sorted(result.edits.items())),
        "findings": findings,
        "errors": [{"file": display(e.path), "message": e.message} for e in result.errors],
    }


def github(result: RunResult, mode: str) -> str:
    """GitHub Actions workflow commands: annotations on the pull request."""
    lines = []
    for change in result.changes:
        level = "notice" if result.written else "error"
        message = (
            f"{'changed' if result.written else 'would change'} by {', '.join(change.codemods)}"
        )
        lines.append(f"::{level} file={display(change.path)},line=1::{message}")
    for item in result.findings:
        f = item.finding
        location = f"file={display(item.path)},line={f.line},col={f.column},title={f.code}"
        lines.append(f"::warning {location}::{f.message}. {f.suggestion}".rstrip(". "))
    lines += [f"::error file={display(e.path)}::{e.message}" for e in result.errors]
    return "\n".join(lines) + ("\n" if lines else "")


def sarif(result: RunResult, mode: str) -> str:
    """SARIF 2.1.0 for code-scanning dashboards: review items and pending changes."""

    def entry(path: Path, rule: str, level: str, message: str, line: int = 1, col: int = 1):
        location = {
            "physicalLocation": {
                "artifactLocation": {"uri": display(path)},
                "region": {"startLine": line, "startColumn": col},
            }
        }
        return {
            "ruleId": rule,
            "level": level,
            "message": {"text": message},
            "locations": [location],
        }

    results = [
        entry(c.path, "pending-change", "error", f"would change by {', '.join(c.codemods)}")
        for c in result.changes
        if not result.written
    ]
    for i in result.findings:
        f = i.finding
        message = f"{f.message}. Suggestion: {f.suggestion}" if f.suggestion else f.message
        results.append(entry(i.path, f.code, "warning", message, f.line, f.column))
    results += [entry(e.path, "error", "error", e.message) for e in result.errors]
    tool = {"driver": {"name": "claun-migrate", "version": __version__}}
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": tool, "results": results}],
    }
    return json.dumps(log, indent=2) + "\n"


def render(result: RunResult, mode: str, fmt: str, diff: bool = False) -> str:
    """``result`` in format ``fmt`` (the diff itself is printed separately in text format)."""
    if fmt == "json":
        return json.dumps(as_dict(result, mode, diff), indent=2) + "\n"
    if fmt == "github":
        return github(result, mode)
    if fmt == "sarif":
        return sarif(result, mode)
    return text(result, mode)


def color_wanted(choice: str) -> bool:
    """Resolve ``--color auto|always|never`` (auto: stdout is a terminal and NO_COLOR unset)."""
    if choice == "auto":
        return sys.stdout.isatty() and "NO_COLOR" not in os.environ
    return choice == "always"
