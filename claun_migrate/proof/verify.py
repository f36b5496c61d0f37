"""Prove a migration: run the backend's own tests before and after it, on SQLite and PostgreSQL.

The code as it is and a migrated copy are tested in temporary copies, each run in a fresh
subprocess with a fresh database, and per-test outcomes are read from pytest's junit XML.
A test that passed before and does not pass after is a regression; nothing else fails.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import click
import psycopg2

from claun_migrate.cli.exits import internal_errors_exit_2
from claun_migrate.engine import skipped_dir
from claun_migrate.proof.pgserver import (
    PostgresUnavailable,
    create_database,
    drop_database,
    postgres_server,
)

DATABASES = ("sqlite", "postgres")
OUTCOMES = ("passed", "failed", "error", "skipped")


class VerifyError(click.ClickException):
    """Verification could not be carried out (exit code 2): not the same as a regression."""

    exit_code = 2


def copy_tree(src: Path, dst: Path) -> Path:
    """Copy a code tree without VCS data, virtual environments and caches."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        return {name for name in names if skipped_dir(folder, name)}

    shutil.copytree(src, dst, ignore=ignore, symlinks=True)
    return dst


@dataclass
class SuiteResult:
    """The outcome of one run of a test suite: per-test outcomes and failure messages."""

    outcomes: dict[str, str]
    messages: dict[str, str] = field(default_factory=dict)
    returncode: int = 0
    seconds: float = 0.0
    output: str = ""

    def counts(self) -> dict[str, int]:
        counter = Counter(self.outcomes.values())
        return {outcome: counter[outcome] for outcome in OUTCOMES}

    def summary(self) -> str:
        counts = self.counts()
        return (
            f"{counts['passed']} passed, {counts['failed']} failed, {counts['error']} errors, "
            f"{counts['skipped']} skipped ({self.seconds:.1f}s)"
        )


def parse_junit(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Per-test outcomes and first message lines from a pytest junit XML file."""
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        test = f"{classname}::{name}" if classname else name
        outcome = "passed"
        for tag in ("skipped", "failure", "error"):  # later tags win: an error beats a failure
            child = case.find(tag)
            if child is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                lines = (child.get("message") or child.text or "").strip().splitlines()
                messages[test] = lines[0][:200] if lines else ""
        outcomes[test] = outcome
    return outcomes, messages


def suite_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without our own and pytest's settings, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CLAUN_", "PYTEST_", "DATABASE_"))
    }
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def run_suite(
    root: Path, command: Sequence[str], env: dict[str, str], timeout: float = 900
) -> SuiteResult:
    """Run ``command`` in ``root`` and collect per-test outcomes through PYTEST_ADDOPTS.

    A command that writes no junit XML (not pytest) counts as one test named by the command.
    """
    with tempfile.TemporaryDirectory(prefix="claun-suite-") as tmp:
        junit = Path(tmp) / "junit.xml"
        env = {
            **env,
            "PYTEST_ADDOPTS": f"-p no:cacheprovider --junitxml={junit} -o junit_family=xunit2",
        }
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                list(command),
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                timeout=timeout,
            )
        except FileNotFoundError as exc:
            raise VerifyError(f"test command {shlex.join(command)!r} cannot start: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise VerifyError(f"test command timed out after {timeout:.0f}s") from exc
        seconds = time.perf_counter() - start
        if junit.exists():
            outcomes, messages = parse_junit(junit)
        else:
            name = shlex.join(command)
            outcomes = {name: "passed" if proc.returncode == 0 else "failed"}
            messages = {} if proc.returncode == 0 else {name: f"exit code {proc.returncode}"}
        return SuiteResult(outcomes, messages, proc.returncode, seconds, proc.stdout[-4000:])


@dataclass
class Comparison:
    """Before/after suite results on one database."""

    database: str
    before: SuiteResult
    after: SuiteResult

    @property
    def regressions(self) -> list[str]:
        """Tests that passed before and do not pass after (failed, error, skipped or gone)."""
        return sorted(
            test
            for test, outcome in self.before.outcomes.items()
            if outcome == "passed" and self.after.outcomes.get(test) != "passed"
        )

    @property
    def improvements(self) -> list[str]:
        """Tests that did not pass before and pass after."""
        return sorted(
            test
            for test, outcome in self.after.outcomes.items()
            if outcome == "passed" and self.before.outcomes.get(test) != "passed"
        )

    def to_dict(self) -> dict[str, object]:
        def change(test: str) -> dict[str, str]:
            return {
                "test": test,
                "before": self.before.outcomes.get(test, "missing"),
                "after": self.after.outcomes.get(test, "missing"),
                "message": self.after.messages.get(test, ""),
            }

        return {
            "database": self.database,
            "before": {**self.before.counts(), "seconds": round(self.before.seconds, 2)},
            "after": {**self.after.counts(), "seconds": round(self.after.seconds, 2)},
            "regressions": [change(test) for test in self.regressions],
            "improvements": [change(test) for test in self.improvements],
        }


class Progress:
    """A spinner line per running suite on a terminal, plain start/end lines otherwise."""

    def __init__(self, stream: IO[str] | None = None, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()

    @contextlib.contextmanager
    def suite(self, label: str) -> Iterator[Callable[[SuiteResult], None]]:
        """Show ``label`` as running until the block ends; call the yielded function to finish."""
        done = threading.Event()
        if self.tty:
            spinner = threading.Thread(target=self._spin, args=(label, done), daemon=True)
            spinner.start()
        elif self.enabled:
            print(f"{label}: running", file=self.stream, flush=True)
        try:
            yield lambda result: self._line(f"{label}: {result.summary()}")
        finally:
            done.set()
            if self.tty:
                spinner.join()

    def _spin(self, label: str, done: threading.Event) -> None:
        start = time.monotonic()
        for frame in itertools.cycle("|/-\\"):
            if done.wait(0.1):
                break
            elapsed = time.monotonic() - start
            self.stream.write(f"\r{frame} {label}: running {elapsed:.0f}s\x1b[K")
            self.stream.flush()
        self.stream.write("\r\x1b[K")

    def _line(self, text: str) -> None:
        if self.enabled:
            if self.tty:
                self.stream.write("\r\x1b[K")
            print(text, file=self.stream, flush=True)


def verify_trees(
    before: Path,
    after: Path,
    *,
    databases: Sequence[str] = DATABASES,
    command: Sequence[str] | None = None,
    database_url: str | None = None,
    progress: Progress | None = None,
    timeout: float = 900,
    env: dict[str, str] | None = None,
) -> list[Comparison]:
    """Run the suite of two code trees on each database and compare the outcomes.

    ``env`` adds variables to both runs (say, a switch that un-skips tests).
    """
    command = list(command or [sys.executable, "-m", "pytest"])
    progress = progress or Progress(enabled=False)
    env = env or {}
    comparisons = []
    with contextlib.ExitStack() as stack:
        server = (
            stack.enter_context(postgres_server(database_url)) if "postgres" in databases else ""
        )
        for database in databases:
            results = {}
            for label, root in (("before", before), ("after", after)):
                with tempfile.TemporaryDirectory(prefix="claun-db-") as tmp:
                    if database == "sqlite":
                        run_env = suite_env({**env, "DATABASE_PATH": str(Path(tmp) / "claun.db")})
                    else:
                        run_env = suite_env({**env, "DATABASE_URL": create_database(server)})
                    try:
                        with progress.suite(f"{database} {label}") as finish:
                            results[label] = run_suite(root, command, run_env, timeout)
                            finish(results[label])
                    finally:
                        if "DATABASE_URL" in run_env:
                            drop_database(run_env["DATABASE_URL"])
                if label == "before" and not results["before"].counts()["passed"]:
                    raise VerifyError(
                        f"no test passed before the migration ({results['before'].summary()}),"
                        f" so there is nothing to compare; output:\n{results['before'].output}"
                    )
            comparisons.append(Comparison(database, results["before"], results["after"]))
    return comparisons


def migrate_tree(root: Path, **options: object) -> None:
    """Apply the migration to ``root`` in place, as ``apply`` does (same engine options).

    ``root`` is a throwaway copy, so its results are not cached.
    """
    from claun_migrate.engine import migrate

    options.pop("no_cache", None)
    options = {key: value for key, value in options.items() if value or key != "select"}
    result = migrate([root], write=True, **options)  # type: ignore[arg-type]
    if result.errors:
        problems = "; ".join(f"{error.path}: {error.message}" for error in result.errors)
        raise VerifyError(f"the migration failed on some files: {problems}")


def tree_files(root: Path) -> dict[str, bytes]:
    """Every file ``copy_tree`` would copy, by POSIX path relative to ``root``."""
    files = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not skipped_dir(folder, d)]
        for name in names:
            path = Path(folder) / name
            if not path.is_symlink():
                files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def apply_verified(
    paths: Sequence[Path], fmt: str, options: dict[str, object], **verify_options: object
) -> int:
    """``apply --verify``: migrate a copy, verify it, then write exactly the verified files.

    PATH is written only when no test regressed and PATH still holds what was copied;
    otherwise it is left as it was. Returns the exit code (0 written, 1 regression).
    """
    from claun_migrate.engine import write_files

    if len(paths) != 1 or not paths[0].is_dir():
        raise click.UsageError("apply --verify takes one directory: the backend with its tests")
    path = paths[0].resolve()
    verify_options.setdefault("database_url", os.environ.get("DATABASE_URL"))
    with tempfile.TemporaryDirectory(prefix="claun-apply-") as work:
        before = copy_tree(path, Path(work) / "before" / path.name)
        after = copy_tree(path, Path(work) / "after" / path.name)
        migrate_tree(after, **options)
        original, verified = tree_files(before), tree_files(after)  # before the suites run
        with postgres_errors():
            comparisons = verify_trees(before, after, progress=Progress(), **verify_options)
        changed = sorted(rel for rel, data in verified.items() if original.get(rel) != data)
        if passed(comparisons):
            writes = {path / rel: (verified[rel], original.get(rel)) for rel in changed}
            problems = write_files(path, writes)  # one transaction: all files or none
            if problems:
                first = f"{problems[0].path}: {problems[0].message}"
                raise VerifyError(f"{path} changed during verification; nothing written ({first})")
    written = [str(path / rel) for rel in changed] if passed(comparisons) else []
    if fmt == "json":
        data = json.loads(render_json(comparisons)) | {"written": written}
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(render_text(comparisons))
        click.echo(
            f"applied: {len(written)} file(s) written to {path}"
            if passed(comparisons)
            else f"not applied: {path} left unchanged"
        )
    return 0 if passed(comparisons) else 1


def verify(
    path: Path,
    workdir: Path,
    *,
    migrate: Callable[[Path], object] = migrate_tree,
    **options: object,
) -> tuple[list[Comparison], Path]:
    """Verify ``migrate`` on copies of ``path`` made under ``workdir``.

    Returns the comparisons and the migrated copy; ``options`` go to ``verify_trees``.
    """
    with postgres_errors():
        before = copy_tree(path, workdir / "before" / path.name)
        after = copy_tree(path, workdir / "after" / path.name)
        migrate(after)
        return verify_trees(before, after, **options), after  # type: ignore[arg-type]


@contextlib.contextmanager
def postgres_errors() -> Iterator[None]:
    """Report a PostgreSQL server that cannot be started or reached as a VerifyError."""
    try:
        yield
    except (psycopg2.Error, PostgresUnavailable) as exc:
        raise VerifyError(f"PostgreSQL: {exc}") from exc


def passed(comparisons: Sequence[Comparison]) -> bool:
    """True when no test that passed before fails after, on any database."""
    return not any(comparison.regressions for comparison in comparisons)


def render_text(comparisons: Sequence[Comparison]) -> str:
    """The before/after table per database, then regressions and improvements by name."""
    lines = [f"{'database':<10}{'suite':<8}{'passed':>8}{'failed':>8}{'errors':>8}{'skipped':>9}"]
    for comparison in comparisons:
        for label, result in (("before", comparison.before), ("after", comparison.after)):
            counts = result.counts()
            lines.append(
                f"{comparison.database:<10}{label:<8}{counts['passed']:>8}{counts['failed']:>8}"
                f"{counts['error']:>8}{counts['skipped']:>9}"
            )
    for comparison in comparisons:
        data = comparison.to_dict()
        for key, title in (
            ("regressions", "pass before, fail after"),
            ("improvements", "did not pass before, pass after"),
        ):
            changes = data[key]
            assert isinstance(changes, list)
            if changes:
                lines.append(f"{comparison.database}: {len(changes)} {title}:")
                for change in changes:
                    message = f"  {change['message']}" if change["message"] else ""
                    outcome = f"{change['before']} -> {change['after']}"
                    lines.append(f"  {change['test']} ({outcome}){message}")
    regressions = sum(len(comparison.regressions) for comparison in comparisons)
    lines.append(
        "verdict: ok, nothing that passed before fails after"
        if not regressions
        else f"verdict: FAILED, {regressions} test(s) passed before and fail after"
    )
    return "\n".join(lines)


def render_json(comparisons: Sequence[Comparison]) -> str:
    """One JSON object: ``ok`` and the per-database comparisons."""
    return json.dumps(
        {"ok": passed(comparisons), "databases": [c.to_dict() for c in comparisons]}, indent=2
    )


def _pairs(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    if any("=" not in item for item in value):
        raise click.BadParameter("expected KEY=VALUE")
    return dict(item.split("=", 1) for item in value)


@click.command("verify")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--database",
    type=click.Choice(["sqlite", "postgres", "both"]),
    default="both",
    show_default=True,
    help="Databases to run the suite on.",
)
@click.option("--tests", "tests", metavar="CMD", help="Test command, run in PATH's copies.")
@click.option(
    "--database-url",
    envvar="DATABASE_URL",
    help="PostgreSQL server to create the test databases on (default: $DATABASE_URL, "
    "else an embedded server).",
)
@click.option(
    "--env",
    "env",
    multiple=True,
    callback=_pairs,
    metavar="KEY=VALUE",
    help="Set a variable for every suite run (repeatable).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--timeout", default=900.0, show_default=True, help="Seconds per suite run.")
@click.option(
    "--unsafe-fixes",
    is_flag=True,
    help="Migrate with the unsafe fixes too (SQL aliases), as `apply --unsafe-fixes` does.",
)
@internal_errors_exit_2
def verify_command(
    path: Path,
    database: str,
    tests: str | None,
    database_url: str | None,
    env: dict[str, str],
    fmt: str,
    timeout: float,
    unsafe_fixes: bool,
) -> int:
    """Run PATH's test suite before and after migration on SQLite and PostgreSQL.

    Each suite runs on a temporary copy with a fresh database; PATH is not changed. Exit 0 when
    nothing that passed before fails after, 1 when something does, 2 when the suite cannot run.
    """
    with tempfile.TemporaryDirectory(prefix="claun-verify-") as work:
        comparisons, _ = verify(
            path.resolve(),
            Path(work),
            migrate=functools.partial(migrate_tree, unsafe_fixes=unsafe_fixes),
            databases=DATABASES if database == "both" else (database,),
            command=shlex.split(tests) if tests else None,
            database_url=database_url,
            progress=Progress(),
            timeout=timeout,
            env=env,
        )
    click.echo(render_json(comparisons) if fmt == "json" else render_text(comparisons))
    return 0 if passed(comparisons) else 1
