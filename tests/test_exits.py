"""Exit codes: a crash exits 2, never 1, which CI reads as 'changes pending' or 'regression'."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from claun_migrate import cli
from claun_migrate.cli import main
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


class PlantedBug(Exception):
    """No command handles it: it can only be caught as an unexpected error."""


def _boom(*args: object, **kwargs: object) -> None:
    raise PlantedBug("planted bug")


# each command, and a function it calls once its arguments are parsed
CRASH_SITES = {
    "check": "claun_migrate.cli.migrate.migrate",
    "diff": "claun_migrate.cli.migrate.migrate",
    "apply": "claun_migrate.cli.migrate.migrate",
    "rule": "claun_migrate.report.rules.markdown",
    "verify": "claun_migrate.proof.verify.verify",
    "bench": "claun_migrate.proof.bench.bench",
}


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_a_crash_inside_any_command_exits_2_not_1(
    command: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(CRASH_SITES[command], _boom)
    args = ["CM105"] if command == "rule" else [str(tmp_path)]
    result = CliRunner().invoke(main, [command, *args])
    assert result.exit_code == 2, result.output
    assert "internal error: PlantedBug: planted bug" in result.output


def test_a_crash_while_loading_a_command_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.COMMANDS, "check", ("claun_migrate.cli.nowhere:check", "", False))
    result = CliRunner().invoke(main, ["check", "."])
    assert result.exit_code == 2
    assert "internal error: ModuleNotFoundError" in result.output
