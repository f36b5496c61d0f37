"""Render a :class:`~claun_migrate.engine.RunResult` as text, a unified diff, json, github or sarif.

Text lines follow the ``path:line:col: CODE message`` shape of ruff and flake8, so editors and
CI annotate them; json and sarif are for machines.
"""

from __future__ import annotations

import ast
import difflib
import io
import json
import os
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import click

from claun_migrate import __version__
from claun_migrate.codemods.rules import RULES
from claun_migrate.engine import Change, FileError, RunResult, decode

FORMATS = ("text", "json", "github", "sarif")


@dataclass(frozen=True)
class LocatedError(FileError):
    """A file error with a position: a syntax error where Python reports it."""

    line: int = 1
    column: int = 1


def locate_syntax_errors(result: RunResult) -> None:
    """Give files libcst could not parse Python's own message and position (libcst's point
    past the error), so editors jump to the right line."""
    for i, error in enumerate(result.errors):
        if not error.message.startswith("cannot parse") or isinstance(error, LocatedError):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ast.parse(decode(error.path.read_bytes())[0], str(error.path))
        except SyntaxError as exc:
            message = f"cannot parse: SyntaxError: {exc.msg}"
            result.errors[i] = LocatedError(error.path, message, exc.lineno or 1, exc.offset or 1)
        except (OSError, UnicodeDecodeError, LookupError, ValueError):
            continue


def _where(error: FileError) -> str:
    if isinstance(error, LocatedError):
        return f"{display(error.path)}:{error.line}:{error.column}"
    return display(error.path)


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


def finding_lines(result: RunResult) -> str:
    """The findings as ``path:line:col: CODE message`` lines, each with its suggestion."""
    lines = []
    for item in result.findings:
        f = item.finding
        lines.append(f"{display(item.path)}:{f.line}:{f.column}: {f.code} {f.message}")
        if f.suggestion:
            lines.append(f"    suggestion: {f.suggestion}")
    return "".join(line + "\n" for line in lines)


def text(result: RunResult, mode: str, suppressed: int = 0, summary: bool = True) -> str:
    """Per-file lines, the findings, the errors and (unless ``summary`` is off) a summary."""
    verb = {"apply": "changed", "check": "would change", "diff": "would change"}[mode]
    lines = []
    for change in result.changes:
        created = " (new file)" if change.before is None else ""
        lines.append(f"{display(change.path)}: {verb}{created} by {', '.join(change.codemods)}")
    lines += finding_lines(result).splitlines()
    lines += [f"{_where(e)}: error: {e.message}" for e in result.errors]
    if summary:
        lines.append(
            f"{len(result.changes)} files {verb} ({_edits(result)}); "
            f"{len(result.findings)} review items"
            + (f" ({suppressed} suppressed)" if suppressed else "")
            + f"; {len(result.errors)} errors; "
            f"{result.files_parsed} of {result.files_scanned} files parsed"
            + (f", {result.files_cached} from cache." if result.files_cached else ".")
        )
    return "".join(line + "\n" for line in lines)


def statistics(result: RunResult, suppressed: int = 0) -> str:
    """Findings counted per rule, most frequent first, then the files and errors (as ruff)."""
    counts = Counter(item.finding.code for item in result.findings)
    lines = [
        f"{n:>5}  {code:<10} {RULES[code].name if code in RULES else ''}".rstrip()
        for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    lines.append(
        f"{len(result.findings)} review items"
        + (f" ({suppressed} suppressed)" if suppressed else "")
        + f"; {len(result.changes)} files would change; {len(result.errors)} errors"
    )
    return "".join(line + "\n" for line in lines)


def as_dict(
    result: RunResult, mode: str, diff: bool = False, suppressed: int = 0
) -> dict[str, object]:
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
        "suppressed": suppressed,
        "errors": [_error_dict(e) for e in result.errors],
    }


def _error_dict(error: FileError) -> dict[str, object]:
    entry: dict[str, object] = {"file": display(error.path), "message": error.message}
    if isinstance(error, LocatedError):
        entry |= {"line": error.line, "column": error.column}
    return entry


def _data(text: str) -> str:
    """A workflow command's message, escaped as GitHub reads it (one line)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    """A workflow command's property value (file, title), escaped."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def github(result: RunResult, mode: str) -> str:
    """GitHub Actions workflow commands: annotations on the pull request."""
    lines = []
    for change in result.changes:
        level = "notice" if result.written else "error"
        message = (
            f"{'changed' if result.written else 'would change'} by {', '.join(change.codemods)}"
        )
        lines.append(f"::{level} file={_property(display(change.path))},line=1::{message}")
    for item in result.findings:
        f = item.finding
        where = f"file={_property(display(item.path))},line={f.line},col={f.column}"
        message = f"{f.message}. {f.suggestion}".rstrip(". ")
        lines.append(f"::warning {where},title={_property(f.code)}::{_data(message)}")
    for e in result.errors:
        line = f",line={e.line},col={e.column}" if isinstance(e, LocatedError) else ""
        lines.append(f"::error file={_property(display(e.path))}{line}::{_data(e.message)}")
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
    for e in result.errors:
        where = (e.line, e.column) if isinstance(e, LocatedError) else (1, 1)
        results.append(entry(e.path, "error", "error", e.message, *where))
    ids = [rule["id"] for rule in sarif_rules()]
    for item in results:
        if item["ruleId"] in ids:
            item["ruleIndex"] = ids.index(item["ruleId"])
    tool = {
        "driver": {
            "name": "claun-migrate",
            "version": __version__,
            "rules": sarif_rules(),
        }
    }
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": tool, "results": results}],
    }
    return json.dumps(log, indent=2) + "\n"


def sarif_rules() -> list[dict[str, object]]:
    """SARIF reporting descriptors: every registered rule, then the two kinds of run result."""
    rules: list[dict[str, object]] = [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.title},
            "fullDescription": {"text": rule.why},
            "help": {"text": rule.fix, "markdown": rule.fix},
            "defaultConfiguration": {"level": "warning"},
            "properties": {"codemod": rule.codemod, "fix-safety": rule.safety},
        }
        for rule in RULES.values()
    ]
    rules.append(
        {
            "id": "pending-change",
            "name": "pending-change",
            "shortDescription": {"text": "A file `claun-migrate apply` would change"},
            "defaultConfiguration": {"level": "error"},
        }
    )
    rules.append(
        {
            "id": "error",
            "name": "error",
            "shortDescription": {"text": "A file that could not be read, parsed or written"},
            "defaultConfiguration": {"level": "error"},
        }
    )
    return rules


def render(
    result: RunResult,
    mode: str,
    fmt: str,
    diff: bool = False,
    suppressed: int = 0,
    summary: bool = True,
) -> str:
    """``result`` in format ``fmt`` (the diff itself is printed separately in text format)."""
    if fmt == "json":
        return json.dumps(as_dict(result, mode, diff, suppressed), indent=2) + "\n"
    if fmt == "github":
        return github(result, mode)
    if fmt == "sarif":
        return sarif(result, mode)
    return text(result, mode, suppressed, summary)


def color_wanted(choice: str) -> bool:
    """Resolve ``--color auto|always|never``. auto: off when NO_COLOR is set (non-empty), on
    when FORCE_COLOR is (non-empty, not 0), else on when stdout is a terminal."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR", "0") not in ("", "0"):
        return True
    return sys.stdout.isatty()
