"""The pre-commit hooks of .pre-commit-hooks.yaml, run by pre-commit on a sample repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixture_tools import BACKEND_DIR

ROOT = Path(__file__).resolve().parents[1]
HOOKS = ROOT / ".pre-commit-hooks.yaml"

pytestmark = pytest.mark.skipif(
    shutil.which("pre-commit") is None
    and not (Path(sys.executable).parent / "pre-commit").exists(),
    reason="pre-commit is not installed (pip install -e '.[test]')",
)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def pre_commit(repo: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PRE_COMMIT_HOME": str(home),
        "GIT_CEILING_DIRECTORIES": str(repo.parent),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "pre-commit"), *args, "--color", "never"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding the legacy backend, committed."""
    repo = Path(shutil.copytree(BACKEND_DIR, tmp_path / "repo"))
    # the hook reads the repository's configuration; one codemod keeps the test quick
    (repo / "pyproject.toml").write_text('[tool.claun-migrate]\nselect = ["pool-connections"]\n')
    git(repo, "init", "-q")
    git(repo, "-c", "user.email=t@e", "-c", "user.name=t", "add", "-A")
    git(repo, "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "legacy")
    return repo


def local_config(repo: Path) -> None:
    """Our hooks as a local repository running the installed claun-migrate (`language: system`),
    every other field as .pre-commit-hooks.yaml declares it."""
    hooks = HOOKS.read_text().replace("language: python", "language: system")
    body = "".join("      " + line + "\n" if line.strip() else "\n" for line in hooks.splitlines())
    (repo / ".pre-commit-config.yaml").write_text(f"repos:\n  - repo: local\n    hooks:\n{body}")


@pytest.mark.slow
def test_the_check_hook_fails_while_a_migration_is_pending_then_passes(
    repo: Path, tmp_path: Path
) -> None:
    local_config(repo)
    pending = pre_commit(repo, "run", "--all-files", home=tmp_path / "home")
    assert pending.returncode == 1, pending.stdout + pending.stderr
    assert "claun-migrate check" in pending.stdout and "Failed" in pending.stdout
    assert "app/services/database.py: would change by pool-connections" in pending.stdout
    assert "claun-migrate diff" not in pending.stdout  # manual stage only
    subprocess.run([sys.executable, "-m", "claun_migrate", "apply", "."], cwd=repo, check=True)
    clean = pre_commit(repo, "run", "--all-files", home=tmp_path / "home")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "claun-migrate check" in clean.stdout and "Passed" in clean.stdout


@pytest.mark.slow
def test_the_diff_hook_runs_in_the_manual_stage(repo: Path, tmp_path: Path) -> None:
    local_config(repo)
    result = pre_commit(
        repo,
        "run",
        "claun-migrate-diff",
        "--hook-stage",
        "manual",
        "--all-files",
        home=tmp_path / "home",
    )
    assert result.returncode == 1
    assert "+++ b/app/services/database.py" in result.stdout


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("CLAUN_TEST_INSTALLS") != "1",
    reason="installs this repository from PyPI into a fresh environment (about 100 s): "
    "set CLAUN_TEST_INSTALLS=1",
)
def test_try_repo_installs_the_hook_from_this_repository(repo: Path, tmp_path: Path) -> None:
    """The real `language: python` hook: pre-commit installs this repository (core only) from
    its last commit."""
    result = pre_commit(
        repo, "try-repo", str(ROOT), "claun-migrate-check", "--all-files", home=tmp_path / "home"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "app/services/database.py: would change by pool-connections" in result.stdout
