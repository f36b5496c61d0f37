"""``check``, ``diff`` and ``apply``: exit codes, output formats and what gets written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixture_tools import BACKEND_DIR

from claun_migrate.cli import main

DATA_LAYER = "app/services/database.py"


@pytest.fixture
def backend(tmp_path: Path) -> Path:
    return Path(shutil.copytree(BACKEND_DIR, tmp_path / "backend"))


def invoke(command: str, *args: str | Path):
    """Run ``command``; named-rows is left out unless selected, to keep these tests fast."""
    select = [] if "--select" in args else ["--select", "pool-connections"]
    return CliRunner().invoke(main, [command, *select, *[str(a) for a in args]])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_check_exits_1_while_changes_are_pending_and_lists_them(backend: Path) -> None:
    result = invoke("check", backend)
    assert result.exit_code == 1
    assert f"{DATA_LAYER}: would change by pool-connections" in result.output


def test_diff_exits_1_prints_a_unified_diff_and_writes_nothing(backend: Path) -> None:
    before = snapshot(backend)
    result = invoke("diff", backend, "--color", "never")
    assert result.exit_code == 1
    assert f"+++ b/{backend.name}/{DATA_LAYER}" in result.stdout or "+++ b/" in result.stdout
    assert "-        conn.close()\n" in result.stdout
    assert "\x1b[" not in result.stdout
    assert snapshot(backend) == before


def test_apply_dry_run_is_diff(backend: Path) -> None:
    assert invoke("apply", "--dry-run", backend).stdout == invoke("diff", backend).stdout
    assert invoke("apply", "--dry-run", backend).exit_code == 1


def test_diff_colours_when_asked(backend: Path) -> None:
    assert "\x1b[32m+" in invoke("diff", backend, "--color", "always").stdout


def test_apply_writes_summarises_and_then_check_and_diff_are_clean(backend: Path) -> None:
    applied = invoke("apply", backend)
    assert applied.exit_code == 0, applied.output
    summary = applied.output.splitlines()[-1]
    assert "files changed" in summary and "pool-connections:" in summary
    assert "review items" in summary
    assert "getconn(" in (backend / DATA_LAYER).read_text()
    assert invoke("check", backend).exit_code == 0
    assert invoke("diff", backend).exit_code == 0
    assert "\n0 files changed" in "\n" + invoke("apply", backend).output


def test_review_items_fail_check_only_with_strict(backend: Path) -> None:
    invoke("apply", "--select", "named-rows", backend)
    assert invoke("check", "--select", "named-rows", backend).exit_code == 0
    strict = invoke("check", "--strict", "--select", "named-rows", backend)
    assert strict.exit_code == 1 and "CM105" in strict.stdout


def test_a_connect_per_call_left_in_the_tree_fails_check_and_changes_nothing(backend: Path):
    caller = "from app.services.database import get_db_connection\nconn = get_db_connection()\n"
    (backend / "app/export.py").write_text(caller)
    before = (backend / DATA_LAYER).read_text()
    result = invoke("apply", backend)
    assert (backend / DATA_LAYER).read_text() == before, "its source is left as it is"
    assert "POOL001" in result.stdout and "POOL002" in result.stdout
    checked = invoke("check", backend)
    assert checked.exit_code == 1
    assert "app/export.py:2" in checked.stdout


def test_json_report_has_files_edits_findings_and_errors(backend: Path) -> None:
    report = json.loads(invoke("check", "--format", "json", backend).stdout)
    assert set(report) >= {"files_changed", "edits", "findings", "errors"}
    assert any(f["file"].endswith(DATA_LAYER) for f in report["files_changed"])
    assert report["edits"]["pool-connections"] > 0
    assert report["errors"] == []
    assert all(
        {"file", "line", "column", "code", "message", "suggestion"} <= set(f)
        for f in report["findings"]
    )


def test_json_diff_carries_the_patch_per_file(backend: Path) -> None:
    report = json.loads(invoke("diff", "--format", "json", backend).stdout)
    assert all(
        entry["diff"].startswith(("--- a/", "--- /dev/null")) for entry in report["files_changed"]
    )


@pytest.mark.parametrize("fmt", ["github", "sarif"])
def test_ci_formats_name_the_pending_files(backend: Path, fmt: str) -> None:
    result = invoke("check", "--format", fmt, backend)
    assert result.exit_code == 1
    assert DATA_LAYER in result.stdout


def test_select_limits_the_codemods_and_pulls_in_required_ones(backend: Path) -> None:
    report = json.loads(
        invoke("check", "--select", "sqlite-per-request", "--format", "json", backend).stdout
    )
    assert report["codemods"] == ["pool-connections", "sqlite-per-request"]


@pytest.mark.parametrize(
    "args",
    [
        ["--select", "no-such-codemod"],
        ["--select", "sqlite-per-request", "--ignore", "pool-connections"],
        ["--format", "xml"],
    ],
)
def test_usage_errors_exit_2(backend: Path, args: list[str]) -> None:
    assert invoke("check", *args, backend).exit_code == 2


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    assert invoke("check", tmp_path / "nowhere").exit_code == 2


def test_unparsable_file_exits_2_names_the_file_and_the_rest_is_applied(backend: Path) -> None:
    broken = backend / "app/routes/broken.py"
    broken.write_text("from app.services.database import get_db_connection\ndef (:\n")
    result = invoke("apply", backend)
    assert result.exit_code == 2
    assert "broken.py: error: cannot parse" in result.output
    assert "getconn(" in (backend / DATA_LAYER).read_text()


def test_internal_error_exits_2_not_1(backend: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("engine bug")

    monkeypatch.setattr("claun_migrate.cli.migrate.migrate", broken)
    result = invoke("check", backend)
    assert result.exit_code == 2
    assert "internal error: RuntimeError: engine bug" in result.output
