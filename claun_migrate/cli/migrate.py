"""The ``check``, ``diff`` and ``apply`` commands: one engine run, three ways to act on it.

Exit codes (as ruff and pyupgrade): 0 nothing to change, 1 changes pending (and, for
``check --strict``, findings not suppressed), 2 usage error, a file that could not be read,
parsed or written, or an internal error.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from claun_migrate import report
from claun_migrate.cli import selection
from claun_migrate.cli.exits import internal_errors_exit_2
from claun_migrate.codemods import CODEMODS
from claun_migrate.config import Config, ConfigError, load
from claun_migrate.engine import RunResult, SelectionError, TreeBusy, migrate
from claun_migrate.engine.cache import default_dir


def _names(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    return [name.strip() for item in value for name in item.split(",") if name.strip()]


def migration_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options shared by check, diff and apply."""
    known = ", ".join(CODEMODS)
    options = [
        click.argument(
            "paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path)
        ),
        click.option(
            "--select",
            multiple=True,
            callback=_names,
            help=f"Only these codemods ({known}) and/or rule codes (CM105, CM1, POOL...); "
            "replaces the configuration's select.",
        ),
        click.option(
            "--ignore",
            multiple=True,
            callback=_names,
            help="Skip these codemods and/or rule codes (added to the configuration's).",
        ),
        click.option("--exclude", multiple=True, help="Skip paths matching this glob."),
        click.option(
            "--config",
            "config_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="pyproject.toml to read [tool.claun-migrate] from (default: the nearest one "
            "with that table, upward from PATH).",
        ),
        click.option("--jobs", "-j", type=click.IntRange(min=1), help="Processes (default: CPUs)."),
        click.option(
            "--no-cache",
            is_flag=True,
            help="Recompute every file instead of reusing results of unchanged ones "
            "(cache: $CLAUN_MIGRATE_CACHE_DIR, else ~/.cache/claun-migrate).",
        ),
        click.option(
            "--unsafe-fixes/--no-unsafe-fixes",
            default=None,
            help="Also make the edits marked unsafe: they change SQL text and the names its rows "
            "report (e.g. COUNT(*) AS count). Overrides the configuration's unsafe-fixes.",
        ),
        click.option(
            "--format", "fmt", type=click.Choice(report.FORMATS), default="text", show_default=True
        ),
        click.option("-q", "--quiet", is_flag=True, help="Print findings and changes only."),
        click.option(
            "-v", "--verbose", is_flag=True, help="Also print the configuration used and timing."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@dataclass
class Run:
    """An engine run with the findings filtered, and how many were suppressed on purpose."""

    result: RunResult
    suppressed: int = 0
    no_files: bool = False


def run(
    paths: tuple[Path, ...],
    *,
    write: bool,
    select: list[str],
    ignore: list[str],
    exclude: tuple[str, ...],
    jobs: int | None,
    no_cache: bool = False,
    config_file: Path | None = None,
    quiet: bool = False,
    verbose: bool = False,
    unsafe_fixes: bool | None = None,
) -> Run:
    """One engine run over the configured files; bad selections or configuration are usage
    errors; no Python file at all is a warning (exit 0, as ruff)."""
    if quiet and verbose:
        raise click.UsageError("-q and -v contradict each other")
    started = time.perf_counter()
    config = _config(paths, config_file)
    chosen = selection.selection(config, select, ignore)
    files = selection.files(paths, exclude, config)
    unsafe = config.unsafe_fixes if unsafe_fixes is None else unsafe_fixes
    if verbose:
        click.echo(f"configuration: {config.path or 'none found (defaults)'}", err=True)
        click.echo(f"unsafe fixes: {'on' if unsafe else 'off'}", err=True)
        click.echo(f"{len(files)} Python files under {', '.join(map(str, paths))}", err=True)
    if not files:
        if not quiet:
            click.echo(
                "warning: no Python files found under " + ", ".join(map(str, paths)), err=True
            )
        return Run(RunResult(selected=[]), no_files=True)
    try:
        with _progress(f"{'applying' if write else 'checking'} {len(files)} files", quiet):
            result = migrate(
                files,
                write=write,
                select=chosen.codemods,
                ignore=chosen.ignored_codemods,
                jobs=jobs,
                cache_dir=None if no_cache else default_dir(),
                confirm=write,
                unsafe_fixes=unsafe,
                line_length=config.line_length,
            )
    except SelectionError as exc:
        raise click.UsageError(str(exc)) from exc
    except TreeBusy as exc:
        click.echo(f"claun-migrate: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        # the engine has removed its temporary files and stopped its workers
        click.echo("claun-migrate: interrupted; the tree is as it was or wholly written", err=True)
        sys.exit(130)
    report.locate_syntax_errors(result)
    suppressed = selection.filter_findings(result, chosen, config)
    if verbose:
        took = time.perf_counter() - started
        click.echo(f"codemods: {', '.join(result.selected)}; {took:.2f}s", err=True)
    return Run(result, suppressed)


@contextlib.contextmanager
def _progress(what: str, quiet: bool, after: float = 1.0) -> Iterator[None]:
    """On a terminal, say what is running once it has taken ``after`` seconds (stderr only),
    and wipe the line when it ends."""
    if quiet or not sys.stderr.isatty():
        yield
        return
    shown = threading.Event()

    def show() -> None:
        shown.set()
        click.echo(f"claun-migrate: {what}...", nl=False, err=True)

    timer = threading.Timer(after, show)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        if shown.is_set():
            click.echo("\r\x1b[K", nl=False, err=True)


def _config(paths: tuple[Path, ...], config_file: Path | None) -> Config:
    try:
        return load(list(paths), config_file)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


def exit_code(
    outcome: Run, *, pending_fails: bool, findings_fail: bool = False, exit_zero: bool = False
) -> int:
    """2 if a file failed, 1 if changes (or, if asked, findings) remain, else 0."""
    result = outcome.result
    if result.errors:
        return 2
    if exit_zero:
        return 0
    if pending_fails and result.changes and not result.written:
        return 1
    if pending_fails and any(f.finding.pending for f in result.findings):
        return 1  # connect-per-call left in the tree is a pending migration, never clean
    return 1 if findings_fail and result.findings else 0


def _show_diff(outcome: Run, fmt: str, color: str, quiet: bool) -> None:
    result = outcome.result
    if fmt == "text":
        colored = report.color_wanted(color)
        for change in result.changes:
            click.echo(report.unified_diff(change, colored), nl=False, color=colored)
        text = report.render(result, "diff", fmt, suppressed=outcome.suppressed, summary=not quiet)
        click.echo(text, nl=False, err=True)
    else:
        click.echo(
            report.render(result, "diff", fmt, diff=True, suppressed=outcome.suppressed), nl=False
        )


EXIT_ZERO = click.option(
    "--exit-zero", is_flag=True, help="Exit 0 even when changes or findings remain (not errors)."
)


@click.command()
@migration_options
@click.option("--strict", is_flag=True, help="Findings not suppressed fail the check too.")
@click.option("--statistics", is_flag=True, help="Count findings per rule instead of listing.")
@EXIT_ZERO
@internal_errors_exit_2
def check(
    strict: bool,
    statistics: bool,
    exit_zero: bool,
    fmt: str,
    paths: tuple[Path, ...],
    **options: Any,
) -> int:
    """List what `apply` would change and the review items; write nothing.

    Exit 1 while anything `apply` would change remains (or, with --strict, any finding that is
    not suppressed).
    """
    if statistics and fmt != "text":
        raise click.UsageError("--statistics prints text; drop --format or --statistics")
    if strict and exit_zero:
        raise click.UsageError("--strict and --exit-zero contradict each other")
    outcome = run(paths, write=False, **options)
    if outcome.no_files and fmt == "text":
        return 0
    if statistics:
        click.echo(report.statistics(outcome.result, outcome.suppressed), nl=False)
    else:
        text = report.render(
            outcome.result,
            "check",
            fmt,
            suppressed=outcome.suppressed,
            summary=not options["quiet"],
        )
        click.echo(text, nl=False)
    return exit_code(outcome, pending_fails=True, findings_fail=strict, exit_zero=exit_zero)


COLOR = click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="auto: colour on a terminal, unless NO_COLOR is set; FORCE_COLOR forces it.",
)


@click.command()
@migration_options
@COLOR
@EXIT_ZERO
@internal_errors_exit_2
def diff(color: str, exit_zero: bool, fmt: str, paths: tuple[Path, ...], **options: Any) -> int:
    """Print the unified diff `apply` would write (same as `apply --dry-run`); write nothing.

    Exit 1 if changes are pending.
    """
    outcome = run(paths, write=False, **options)
    if not (outcome.no_files and fmt == "text"):
        _show_diff(outcome, fmt, color, options["quiet"])
    return exit_code(outcome, pending_fails=True, exit_zero=exit_zero)


@click.command()
@migration_options
@click.option("--dry-run", is_flag=True, help="Print the diff instead of writing (as `diff`).")
@click.option(
    "--verify",
    "verify_first",
    is_flag=True,
    help="Migrate a copy and run PATH's tests on it first (as `verify`); write only if nothing "
    "that passed before fails after. Needs the verify extra; --format text or json.",
)
@COLOR
@internal_errors_exit_2
def apply(
    dry_run: bool,
    verify_first: bool,
    color: str,
    fmt: str,
    paths: tuple[Path, ...],
    **options: Any,
) -> int:
    """Write the migration (atomically), then print a summary: files, edits, review items."""
    if verify_first and dry_run:
        raise click.UsageError("--verify writes; to test without writing, use `verify`")
    if verify_first:
        return _apply_verified(paths, fmt, options)
    outcome = run(paths, write=not dry_run, **options)
    if outcome.no_files and fmt == "text":
        return 0
    if dry_run:
        _show_diff(outcome, fmt, color, options["quiet"])
        return exit_code(outcome, pending_fails=True)
    text = report.render(
        outcome.result, "apply", fmt, suppressed=outcome.suppressed, summary=not options["quiet"]
    )
    click.echo(text, nl=False)
    return exit_code(outcome, pending_fails=False)


def _apply_verified(paths: tuple[Path, ...], fmt: str, options: dict[str, Any]) -> int:
    """``apply --verify``: the findings go to stderr first (the verify report owns stdout)."""
    from claun_migrate.cli import missing_extra

    if fmt not in ("text", "json"):
        raise click.UsageError(f"apply --verify reports in text or json, not {fmt}")
    try:
        from claun_migrate.proof.verify import apply_verified
    except ModuleNotFoundError as exc:
        raise missing_extra("apply --verify", exc) from exc
    outcome = run(paths, write=False, **options)
    if outcome.no_files:
        return 0
    click.echo(report.finding_lines(outcome.result), nl=False, err=True)
    config = _config(paths, options["config_file"])
    chosen = selection.selection(config, options["select"], options["ignore"])
    engine_options = {
        "select": chosen.codemods or [],
        "ignore": chosen.ignored_codemods,
        "exclude": (*options["exclude"], *config.exclude),
        "jobs": options["jobs"],
        "unsafe_fixes": (
            config.unsafe_fixes if options["unsafe_fixes"] is None else options["unsafe_fixes"]
        ),
    }
    return apply_verified(paths, fmt, engine_options)
