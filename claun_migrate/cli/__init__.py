"""The ``claun-migrate`` command line.

Subcommands are imported only when one runs: ``--help`` and ``--version`` must not pay for
libcst, sqlglot or psycopg2, and ``verify``/``bench`` need the ``verify`` extra.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from claun_migrate import __version__

VERIFY_EXTRA = "pip install 'claun-migrate[verify]'"

# name -> (module:attribute, short help shown by --help, needs the verify extra)
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "check": (
        "claun_migrate.cli.migrate:check",
        "List what `apply` would change and the review items; write nothing.",
        False,
    ),
    "diff": (
        "claun_migrate.cli.migrate:diff",
        "Print the unified diff `apply` would write; write nothing.",
        False,
    ),
    "apply": (
        "claun_migrate.cli.migrate:apply",
        "Write the migration (atomically), then print a summary.",
        False,
    ),
    "rule": (
        "claun_migrate.cli.rule:rule",
        "Explain a rule code (CM105, POOL001, ...), or list them all.",
        False,
    ),
    "verify": (
        "claun_migrate.proof.verify:verify_command",
        "Run PATH's test suite before and after migration on SQLite and PostgreSQL.",
        True,
    ),
    "bench": (
        "claun_migrate.proof.bench:bench_command",
        "Serve PATH as it is and migrated, drive the same requests at both, compare.",
        True,
    ),
}


def missing_extra(command: str, exc: ModuleNotFoundError) -> click.ClickException:
    """The error for a command whose optional dependencies are not installed (exit 2)."""
    error = click.ClickException(
        f"`{command}` needs the verify extra (missing module {exc.name!r}): {VERIFY_EXTRA}"
    )
    error.exit_code = 2
    return error


class LazyGroup(click.Group):
    """A group that imports a subcommand's module when that subcommand runs.

    Any exception that escapes a command exits 2 with its message: 1 means "changes pending"
    or "a test broke" to CI, so a crash must never look like it.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _, extra = COMMANDS[cmd_name]
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if extra and exc.name and not exc.name.startswith("claun_migrate"):
                raise missing_extra(cmd_name, exc) from exc
            raise
        command: click.Command = getattr(module, attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_text) for name, (_, help_text, _) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            click.echo(f"claun-migrate: internal error: {type(exc).__name__}: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="claun-migrate")
def main() -> None:
    """Migrate a connect-per-call Flask data layer to a connection pool,
    per-request SQLite connections and named row access, and prove the result.

    \b
    Exit codes: 0 clean; 1 changes pending or findings (check, diff), a test that broke
    (verify, apply --verify) or a failed request (bench); 2 usage or internal error.
    `verify` and `bench` need the verify extra: pip install 'claun-migrate[verify]'.
    """


if __name__ == "__main__":  # pragma: no cover
    main()
