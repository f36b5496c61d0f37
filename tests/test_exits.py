"""Exit codes: a crash exits 2, never 1, which CI reads as 'changes pending' or 'regression'."""

from __future__ import annotations

import click
from click.testing import CliRunner

from claun_migrate.cli.exits import internal_errors_exit_2


@click.command()
@click.argument("what")
@internal_errors_exit_2
def probe(what: str) -> int:
    if what == "crash":
        raise RuntimeError("boom")
    if what == "usage":
        raise click.UsageError("bad")
    return 1 if what == "pending" else 0


def test_an_unexpected_exception_exits_2_with_its_message() -> None:
    result = CliRunner().invoke(probe, ["crash"])
    assert result.exit_code == 2
    assert "internal error: RuntimeError: boom" in result.output


def test_the_command_result_is_the_exit_code() -> None:
    assert CliRunner().invoke(probe, ["pending"]).exit_code == 1
    assert CliRunner().invoke(probe, ["clean"]).exit_code == 0


def test_usage_errors_keep_click_exit_code_2() -> None:
    assert CliRunner().invoke(probe, ["usage"]).exit_code == 2


def test_verify_and_bench_are_wrapped() -> None:
    from claun_migrate.cli import main

    for name in ("verify", "bench", "check", "diff", "apply"):
        assert main.commands[name].callback.__wrapped__ is not None  # type: ignore[union-attr]
