"""Helpers around the legacy fixture backend: run its own suite, read its PATTERNS.md oracle.

Other tests (end-to-end, verify) reuse these, so they take any backend directory: the
fixture itself or a migrated copy of it.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "legacy_backend"
BACKEND_DIR = FIXTURE_DIR / "backend"
PATTERNS_PATH = FIXTURE_DIR / "PATTERNS.md"
DATA_LAYER_PATH = BACKEND_DIR / "app" / "services" / "database.py"
VERDICTS = ("named", "kept", "unsafe", "review")


@dataclass(frozen=True)
class SuiteResult:
    """Outcome of one run of a backend's test suite, by test id (``tests/test_x.py::test_y``)."""

    returncode: int
    passed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    output: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        """True when pytest exited cleanly and at least one test passed."""
        return self.returncode == 0 and bool(self.passed) and not self.failed


def _outcomes(junit_xml: Path) -> dict[str, list[str]]:
    outcomes: dict[str, list[str]] = {"passed": [], "failed": [], "skipped": []}
    if not junit_xml.exists():
        return outcomes
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        name = f"{module}.py::{case.get('name')}"
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            outcomes["failed"].append(name)
        elif "skipped" in tags:
            outcomes["skipped"].append(name)
        else:
            outcomes["passed"].append(name)
    return outcomes


def run_backend_suite(
    backend_dir: Path,
    database_url: str | None,
    extra_args: Sequence[str] = (),
    *,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> SuiteResult:
    """Run ``python -m pytest`` in ``backend_dir`` on PostgreSQL (``database_url``) or SQLite.

    The suite picks its own temporary SQLite file; ``env`` adds variables such as
    ``FIXTURE_RUN_ALL=1``. Per-test outcomes come from a junit xml report.
    """
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DATABASE_"))}
    run_env["PYTHONDONTWRITEBYTECODE"] = "1"
    if database_url:
        run_env["DATABASE_URL"] = database_url
    run_env.update(env or {})
    with tempfile.TemporaryDirectory(prefix="claun-suite-") as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += [f"--junitxml={junit}", *extra_args]
        proc = subprocess.run(
            command,
            cwd=backend_dir,
            env=run_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        outcomes = _outcomes(junit)
    return SuiteResult(
        returncode=proc.returncode,
        passed=tuple(outcomes["passed"]),
        failed=tuple(outcomes["failed"]),
        skipped=tuple(outcomes["skipped"]),
        output=proc.stdout + proc.stderr,
    )


@dataclass(frozen=True)
class Site:
    """One row of the PATTERNS.md table: a positional result access and its expected verdict."""

    number: int
    file: str
    function: str
    site: str
    shape: str
    verdict: str
    reason: str


_ROW = re.compile(r"^\|\s*(\d+)\s*\|(.*)\|\s*$")


def load_sites(path: Path = PATTERNS_PATH) -> list[Site]:
    """The site table of PATTERNS.md (rows whose first cell is a number)."""
    sites = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if not match:
            continue
        cells = [cell.strip() for cell in match.group(2).split(" | ")]
        file, function, site, shape, verdict, reason = cells
        number = int(match.group(1))
        sites.append(Site(number, file, function, site.strip("`"), shape, verdict, reason))
    return sites


def function_lines(source: str, name: str) -> tuple[int, int]:
    """First and last line (1-based, inclusive) of the top-level function ``name``, or of the
    method ``Class.method`` of a top-level class."""
    *owner, function = name.split(".")
    body = ast.parse(source).body
    if owner:
        classes = [n for n in body if isinstance(n, ast.ClassDef) and [n.name] == owner]
        body = classes[0].body if classes else []
    for node in body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return node.lineno, node.end_lineno or node.lineno
    raise LookupError(f"no function {name!r}")


def function_source(source: str, name: str) -> str:
    """The text of the function ``name`` (top-level, or ``Class.method``) in ``source``."""
    first, last = function_lines(source, name)
    return "\n".join(source.splitlines()[first - 1 : last])


def _site_regex(code: str) -> str:
    """The regex of a site's code; the SQL argument of an ``execute(...)`` in it may be found
    wrapped in ``sql_for(conn, ...)``, as the pool codemod routes SQL, with the line wrapped."""
    try:
        calls = [
            node
            for node in ast.walk(ast.parse(code, mode="eval"))
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "execute"
            and node.args
        ]
    except SyntaxError:
        calls = []
    if not calls:
        return re.escape(code)
    sql = calls[0].args[0]
    start = sum(len(line) + 1 for line in code.splitlines()[: sql.lineno - 1]) + sql.col_offset
    end = start + len(ast.get_source_segment(code, sql) or "")
    before, after = re.escape(code[:start]), re.escape(code[end:])
    wrapped = r"\s*(?:sql_for\(\w+,\s*" + re.escape(code[start:end]) + r"\s*\)"
    return before + wrapped + "|" + re.escape(code[start:end]) + r")\s*" + after


def site_matches(source: str, site: Site) -> list[re.Match[str]]:
    """Occurrences of ``site.site`` as a whole expression inside its function in ``source``."""
    pattern = re.compile(r"(?<![\w.\]])" + _site_regex(site.site) + r"(?![\w\[])")
    first, last = function_lines(source, site.function)
    lines = source.splitlines(keepends=True)
    start = sum(len(line) for line in lines[: first - 1])
    end = start + sum(len(line) for line in lines[first - 1 : last])
    return list(pattern.finditer(source, start, end))


def legacy_data_layer() -> str:
    """The fixture's connect-per-call data layer (``app/services/database.py``) without its
    schema: the module up to ``init_database``, so a test can append a schema of its own."""
    source = DATA_LAYER_PATH.read_text(encoding="utf-8")
    first, _ = function_lines(source, "init_database")
    return "".join(source.splitlines(keepends=True)[: first - 1])
