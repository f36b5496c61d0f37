"""``claun-migrate rule CODE``: what a rule flags, why, an example, the fix (as ``ruff rule``)."""

from __future__ import annotations

import json

import click

from claun_migrate.cli.exits import internal_errors_exit_2


@click.command()
@click.argument("code", required=False)
@click.option("--all", "show_all", is_flag=True, help="Print every rule.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@internal_errors_exit_2
def rule(code: str | None, show_all: bool, fmt: str) -> int:
    """Explain a rule code (CM105, POOL001, ...), or list them all with --all."""
    from claun_migrate.codemods.rules import RULES
    from claun_migrate.report.rules import markdown

    if bool(code) == show_all:
        raise click.UsageError("give one rule CODE, or --all")
    if code and code.upper() not in RULES:
        raise click.UsageError(f"unknown rule {code}; known: {', '.join(RULES)}")
    chosen = list(RULES.values()) if show_all else [RULES[code.upper()]]  # type: ignore[union-attr]
    if fmt == "json":
        data = [r.to_dict() for r in chosen]
        click.echo(json.dumps(data if show_all else data[0], indent=2))
    else:
        click.echo("\n".join(markdown(r) for r in chosen), nl=False)
    return 0
