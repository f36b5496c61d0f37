"""Habits of the Python toolchain: -q/-v, --statistics, --exit-zero, the no-files warning,
NO_COLOR/FORCE_COLOR, and options that do not apply are refused instead of ignored."""

from __future__ import annotations

import io
import shutil
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixture_tools import BACKEND_DIR

from claun_migrate.cli import main
from claun_migrate.cli.migrate import _progress
from claun_migrate.report import color_wanted

DATA_LAYER = BACKEND_DIR / "app" / "services" / "database.py"
LEGACY_CALL = (
    'import psycopg2.pool\n\npool = psycopg2.pool.SimpleConnectionPool(1, 10, "dbname=x")\n'
)


@pytest.fixture
def finding(tmp_path: Path) -> Path:
    """A folder whose one file has one review item (POOL003) and nothing to change."""
    (tmp_path / "export.py").write_text(LEGACY_CALL)
    return tmp_path


def invoke(*args: str | Path, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def test_quiet_prints_the_findings_without_the_summary(finding: Path) -> None:
    loud = invoke("check", finding).output.splitlines()
    quiet = invoke("check", "-q", finding).output.splitlines()
    assert quiet == loud[:-1]
    assert loud[-1].startswith("0 files would change") and "POOL003" in quiet[0]


def test_verbose_names_the_configuration_and_the_codemods(finding: Path) -> None:
    (finding / "pyproject.toml").write_text('[tool.claun-migrate]\nignore = ["CM105"]\n')
    result = invoke("check", "-v", finding)
    assert f"configuration: {finding / 'pyproject.toml'}" in result.stderr
    assert "1 Python files under" in result.stderr
    assert "codemods: pool-connections, sqlite-per-request, named-rows;" in result.stderr


def test_quiet_and_verbose_together_are_refused(finding: Path) -> None:
    assert invoke("check", "-q", "-v", finding).exit_code == 2


def test_statistics_count_findings_per_rule(finding: Path) -> None:
    (finding / "second.py").write_text(LEGACY_CALL)
    result = invoke("check", "--statistics", "--strict", finding)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "    2  POOL003    simple-connection-pool",
        "2 review items; 0 files would change; 0 errors",
    ]


def test_exit_zero_keeps_the_report_but_exits_0(finding: Path) -> None:
    (finding / "pyproject.toml").write_text("")
    shutil.copy(DATA_LAYER, finding / "database.py")
    pending = invoke("diff", finding)
    assert pending.exit_code == 1
    zero = invoke("diff", "--exit-zero", finding)
    assert zero.exit_code == 0 and zero.stdout == pending.stdout


def test_exit_zero_still_exits_2_on_an_error(finding: Path) -> None:
    (finding / "broken.py").write_text("get_db_connection(\n")
    assert invoke("check", "--exit-zero", finding).exit_code == 2


def test_no_python_file_is_a_warning_on_stderr_and_exit_0(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    result = invoke("check", tmp_path)
    assert result.exit_code == 0
    assert result.stderr == f"warning: no Python files found under {tmp_path}\n"
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--statistics", "--format", "json"],
        ["check", "--strict", "--exit-zero"],
        ["apply", "--verify", "--format", "sarif"],
        ["apply", "--verify", "--format", "github"],
        ["apply", "--verify", "--dry-run"],
    ],
)
def test_options_that_do_not_apply_together_are_refused(finding: Path, args: list[str]) -> None:
    before = (finding / "export.py").read_text()
    result = invoke(*args, finding)
    assert result.exit_code == 2
    assert "Error:" in result.output
    assert (finding / "export.py").read_text() == before


@pytest.mark.parametrize(
    ("env", "choice", "wanted"),
    [
        ({}, "always", True),
        ({"NO_COLOR": "1"}, "always", True),
        ({"FORCE_COLOR": "1"}, "never", False),
        ({"NO_COLOR": "1"}, "auto", False),
        ({"FORCE_COLOR": "1"}, "auto", True),
        ({"FORCE_COLOR": "0"}, "auto", False),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, "auto", False),
        ({"NO_COLOR": ""}, "auto", False),
    ],
)
def test_color_follows_the_flag_then_no_color_then_force_color(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], choice: str, wanted: bool
) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert color_wanted(choice) is wanted  # CliRunner's stdout is never a terminal


def test_force_color_colours_the_diff_when_piped(finding: Path) -> None:
    shutil.copy(DATA_LAYER, finding / "database.py")
    plain = invoke("diff", finding, env={"FORCE_COLOR": "", "NO_COLOR": ""}).stdout
    forced = invoke("diff", finding, env={"FORCE_COLOR": "1", "NO_COLOR": ""}).stdout
    assert "\x1b[" not in plain and "\x1b[32m+" in forced


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_work_over_the_delay_is_announced_on_a_terminal_then_wiped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    with _progress("checking 3 files", quiet=False, after=0.0):
        deadline = time.monotonic() + 10
        while "checking" not in err.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert err.getvalue() == "claun-migrate: checking 3 files...\r\x1b[K"


@pytest.mark.parametrize(("stream", "quiet"), [(io.StringIO, False), (Terminal, True)])
def test_no_progress_when_piped_or_quiet(
    monkeypatch: pytest.MonkeyPatch, stream: type[io.StringIO], quiet: bool
) -> None:
    err = stream()
    monkeypatch.setattr(sys, "stderr", err)
    with _progress("checking 3 files", quiet=quiet, after=0.0):
        time.sleep(0.2)
    assert err.getvalue() == ""
