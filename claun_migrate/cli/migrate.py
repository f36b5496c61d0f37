"""The ``check``, ``diff`` and ``apply`` commands: one engine run, three ways to act on it.

Exit codes (as ruff and pyupgrade): 0 nothing to change, 1 changes pending (and, for
``check --strict``, review items), 2 usage error, a file that could not be read, parsed or
written, or an internal error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from claun_migrate import report
from claun_migrate.cli.exits import internal_errors_exit_2
from claun_migrate.codemods import CODEMODS
from claun_migrate.engine import RunResult, SelectionError, TreeBusy, migrate
from claun_migrate.engine.cache import default_dir
from claun_migrate.proof.verify import apply_verified


def _names(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> list[str]:
    return [name.strip() for item in value for name in item.split(",") if name.strip()]


def migration_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options shared by check, diff and apply."""
    known = ", ".join(CODEMODS)
    options = [
        click.argument(
            "paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path)
        ),
        click.option("--select", multiple=True, callback=_names, help=f"Only these ({known})."),
        click.option("--ignore", multiple=True, callback=_names, help="Skip these codemods."),
        click.option("--exclude", multiple=True, help="Skip paths matching this glob."),
        click.option("--jobs", "-j", type=click.IntRange(min=1), help="Processes (default: CPUs)."),
        click.option(
            "--no-cache",
            is_flag=True,
            help="Recompute every file instead of reusing results of unchanged ones "
            "(cache: $CLAUN_MIGRATE_CACHE_DIR, else ~/.cache/claun-migrate).",
        ),
        click.option(
            "--format", "fmt", type=click.Choice(report.FORMATS), default="text", show_default=True
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def run(
    paths: tuple[Path, ...],
    *,
    write: bool,
    select: list[str],
    ignore: list[str],
    exclude: tuple[str, ...],
    jobs: int | None,
    no_cache: bool = False,
) -> RunResult:
    """One engine run; an unknown or contradictory codemod selection is a usage error."""
    try:
        return migrate(
            paths,
            write=write,
            select=select or None,
            ignore=ignore,
            exclude=exclude,
            jobs=jobs,
            cache_dir=None if no_cache else default_dir(),
            confirm=write,
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


def exit_code(result: RunResult, *, pending_fails: bool, findings_fail: bool = False) -> int:
    """2 if a file failed, 1 if changes (or, if asked, findings) remain, else 0."""
    if result.errors:
        return 2
    if pending_fails and result.changes and not result.written:
        return 1
    if pending_fails and any(f.finding.pending for f in result.findings):
        return 1  # connect-per-call left in the tree is a pending migration, never clean
    return 1 if findings_fail and result.findings else 0


def _show_diff(result: RunResult, fmt: str, color: str) -> None:
    if fmt == "text":
        colored = report.color_wanted(color)
        for change in result.changes:
            click.echo(report.unified_diff(change, colored), nl=False, color=colored)
        click.echo(report.render(result, "diff", fmt), nl=False, err=True)
    else:
        click.echo(report.render(result, "diff", fmt, diff=True), nl=False)


@click.command()
@migration_options
@click.option("--strict", is_flag=True, help="Review items fail the check too.")
@internal_errors_exit_2
def check(strict: bool, fmt: str, paths: tuple[Path, ...], **options: Any) -> int:
    """List what `apply` would change and the review items; write nothing.

    Exit 1 while anything `apply` would change remains (or, with --strict, any review item).
    """
    result = run(paths, write=False, **options)
    click.echo(report.render(result, "check", fmt), nl=False)
    return exit_code(result, pending_fails=True, findings_fail=strict)


COLOR = click.option(
    "--color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True
)


@click.command()
@migration_options
@COLOR
@internal_errors_exit_2
def diff(color: str, fmt: str, paths: tuple[Path, ...], **options: Any) -> int:
    """Print the unified diff `apply` would write (same as `apply --dry-run`); write nothing.

    Exit 1 if changes are pending.
    """
    result = run(paths, write=False, **options)
    _show_diff(result, fmt, color)
    return exit_code(result, pending_fails=True)


@click.command()
@migration_options
@click.option("--dry-run", is_flag=True, help="Print the diff instead of writing (as `diff`).")
@click.option(
    "--verify",
    "verify_first",
    is_flag=True,
    help="Migrate a copy and run PATH's tests on it first (as `verify`); write only if nothing "
    "that passed before fails after.",
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
        return apply_verified(paths, "json" if fmt == "json" else "text", options)
    result = run(paths, write=not dry_run, **options)
    if dry_run:
        _show_diff(result, fmt, color)
        return exit_code(result, pending_fails=True)
    click.echo(report.render(result, "apply", fmt), nl=False)
    return exit_code(result, pending_fails=False)


COMMANDS = (check, diff, apply)
