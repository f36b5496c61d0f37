"""What a run covers and which findings it shows: codemod names pick codemods, rule codes filter
findings, excludes drop files, and ``# noqa: CODE`` / ``# claun-migrate: ignore[CODE]`` on the
reported line keeps a finding on purpose.

Everything here runs around the engine (before it: files; after it: findings), so the engine
knows nothing about configuration.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click

from claun_migrate.codemods import CODEMODS
from claun_migrate.codemods.rules import RULES
from claun_migrate.config import Config
from claun_migrate.engine import Located, RunResult, decode, discover

CODE_PREFIX = re.compile(r"^[A-Z]+[0-9]*$")
_CODES = r"[A-Za-z]+[0-9]+(?:[\s,]+[A-Za-z]+[0-9]+)*"
NOQA = re.compile(rf"#\s*noqa(?::\s*(?P<codes>{_CODES}))?", re.IGNORECASE)
IGNORE = re.compile(rf"#\s*claun-migrate:\s*ignore(?:\[\s*(?P<codes>{_CODES})\s*\])?")


def _matches(code: str, prefixes: Iterable[str]) -> bool:
    return any(code.startswith(prefix) for prefix in prefixes)


@dataclass
class Selection:
    """Codemods for the engine, and rule-code prefixes that filter findings."""

    codemods: list[str] | None = None
    ignored_codemods: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    ignored_codes: list[str] = field(default_factory=list)

    def shows(self, code: str) -> bool:
        """Whether a finding with ``code`` is reported."""
        if self.codes and not _matches(code, self.codes):
            return False
        return not _matches(code, self.ignored_codes)


def split(selectors: Sequence[str], where: str) -> tuple[list[str], list[str]]:
    """Codemod names and rule-code prefixes in ``selectors``; anything else is a usage error."""
    codemods, codes = [], []
    for item in selectors:
        if item in CODEMODS:
            codemods.append(item)
        elif CODE_PREFIX.match(item.upper()) and any(c.startswith(item.upper()) for c in RULES):
            codes.append(item.upper())
        else:
            raise click.UsageError(
                f"{where}: unknown codemod or rule {item!r}; codemods: {', '.join(CODEMODS)}; "
                f"rules: {', '.join(RULES)} (or a prefix such as CM1)"
            )
    return codemods, codes


def selection(config: Config, select: Sequence[str], ignore: Sequence[str]) -> Selection:
    """Command-line ``--select`` replaces the configuration's; ``--ignore`` adds to it."""
    where = f"{config.path} [tool.claun-migrate]" if config.path else "configuration"
    chosen_codemods, chosen_codes = (
        split(select, "--select") if select else split(config.select, f"{where} select")
    )
    config_codemods, config_codes = split(config.ignore, f"{where} ignore")
    cli_codemods, cli_codes = split(ignore, "--ignore")
    for pattern, codes in config.per_file_ignores.items():
        named, _ = split(codes, f"{where} per-file-ignores {pattern!r}")
        if named:
            raise click.UsageError(
                f"{where} per-file-ignores {pattern!r}: takes rule codes, not codemods "
                f"({', '.join(named)}); use exclude to keep a file out of the run"
            )
    return Selection(
        codemods=chosen_codemods or None,
        ignored_codemods=config_codemods + cli_codemods,
        codes=chosen_codes,
        ignored_codes=config_codes + cli_codes,
    )


def _excluded(path: Path, root: Path, patterns: Sequence[str]) -> bool:
    """Whether ``path``, relative to ``root``, or one of its folders matches a pattern."""
    try:
        parts = path.resolve().relative_to(root.resolve()).parts
    except ValueError:
        parts = path.parts
    candidates = {"/".join(parts[: i + 1]) for i in range(len(parts))} | set(parts)
    return any(fnmatch.fnmatch(c, p.rstrip("/")) for c in candidates for p in patterns)


def files(paths: Sequence[Path], exclude: Sequence[str], config: Config) -> list[Path]:
    """The Python files of the run: ``--exclude`` as the engine applies it, then the
    configuration's excludes relative to its folder, for files named on the command line too
    (pre-commit passes file names)."""
    found = discover(paths, exclude)
    if not config.exclude:
        return found
    return [path for path in found if not _excluded(path, config.root, config.exclude)]


def _suppressed_on(line: str, code: str) -> bool:
    for pattern in (NOQA, IGNORE):
        for match in pattern.finditer(line):
            codes = match.group("codes")
            if codes is None or code in re.split(r"[\s,]+", codes.upper()):
                return True
    return False


def filter_findings(result: RunResult, chosen: Selection, config: Config) -> int:
    """Drop the findings not selected, ignored per file, or suppressed inline; return how many
    were suppressed (kept on purpose), which count neither for the exit code nor ``--strict``.

    The reported line is read from the file as it is and as the run leaves it, since positions
    of later codemods refer to the text earlier ones produced.
    """
    texts: dict[Path, list[list[str]]] = {}
    after = {change.path: change.after for change in result.changes}

    def lines(path: Path) -> list[list[str]]:
        if path not in texts:
            versions = [after[path]] if path in after else []
            with contextlib.suppress(OSError, SyntaxError, UnicodeDecodeError, LookupError):
                versions.append(decode(path.read_bytes())[0])
            texts[path] = [text.splitlines() for text in versions]
        return texts[path]

    kept: list[Located] = []
    suppressed = 0
    for item in result.findings:
        code = item.finding.code
        if not chosen.shows(code):
            continue
        per_file = [
            c
            for pattern, codes in config.per_file_ignores.items()
            if _excluded(item.path, config.root, [pattern])
            for c in codes
        ]
        number = item.finding.line - 1
        inline = any(
            0 <= number < len(text) and _suppressed_on(text[number], code)
            for text in lines(item.path)
        )
        if _matches(code, [c.upper() for c in per_file]) or inline:
            suppressed += 1
        else:
            kept.append(item)
    result.findings = kept
    return suppressed
