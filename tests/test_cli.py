"""The top-level command: version, help, lazy subcommands and the missing-extra message."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from claun_migrate import __version__
from claun_migrate.cli import COMMANDS, main

HEAVY = ("libcst", "sqlglot", "psycopg2", "flask", "claun_migrate.engine")


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"claun-migrate, version {__version__}\n"


def test_help_lists_every_command_and_the_meaning_of_each_exit_code() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1]
    assert re.findall(r"^  (\S+)", commands, re.MULTILINE) == list(COMMANDS)
    assert "0 clean; 1 changes pending" in result.output
    assert "2 usage or internal error" in result.output


@pytest.mark.parametrize("args", [["--help"], ["--version"]])
def test_help_and_version_import_nothing_heavy(args: list[str]) -> None:
    code = (
        "import sys\nfrom claun_migrate.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_every_command_resolves_to_a_command_with_help() -> None:
    for name in COMMANDS:
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert result.output.startswith(f"Usage: main {name} ")


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command 'no-such-command'" in result.output


@pytest.mark.parametrize("command", ["verify", "bench"])
def test_proof_commands_without_the_extra_name_it_and_exit_2(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("claun_migrate.proof.verify", "claun_migrate.proof.bench"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # as if not installed
    result = CliRunner().invoke(main, [command, "."])
    assert result.exit_code == 2
    assert f"`{command}` needs the verify extra (missing module 'psycopg2')" in result.output
    assert "pip install 'claun-migrate[verify]'" in result.output


def test_apply_verify_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delitem(sys.modules, "claun_migrate.proof.verify", raising=False)
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    result = CliRunner().invoke(main, ["apply", "--verify", str(tmp_path)])
    assert result.exit_code == 2
    assert "pip install 'claun-migrate[verify]'" in result.output
