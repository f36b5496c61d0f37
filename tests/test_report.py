"""Reports: the unified diff must apply with ``git apply``, whatever the file holds."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from claun_migrate.engine import Change
from claun_migrate.report import unified_diff


@pytest.mark.parametrize("separator", ["\x0c", "\x85", "\u2028", "\x1c"])
def test_diff_of_a_file_with_a_line_separator_inside_a_line_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, separator: str
) -> None:
    before = f"x = 1\n#{separator} page\nfoo = 2\n"
    after = before.replace("foo", "bar")
    (tmp_path / "a.py").write_text(before, encoding="utf-8", newline="")
    monkeypatch.chdir(tmp_path)
    patch = unified_diff(Change(tmp_path / "a.py", before, after))
    subprocess.run(["git", "init", "-q"], check=True)
    applied = subprocess.run(
        ["git", "apply", "-"],
        input=patch.encode("utf-8"),
        capture_output=True,
        env={**os.environ, "GIT_CEILING_DIRECTORIES": str(tmp_path.parent)},
    )
    assert applied.returncode == 0, applied.stderr.decode()
    assert (tmp_path / "a.py").read_bytes().decode("utf-8") == after


def test_github_annotations_stay_one_line_each_whatever_the_message_holds() -> None:
    from claun_migrate.codemods._support import Finding
    from claun_migrate.engine import Located, RunResult
    from claun_migrate.report import github

    finding = Finding(3, 5, "CM103", "two `id` columns, 100%", "SELECT a,\n  b: c")
    result = RunResult(selected=[], findings=[Located(Path("a,b:c.py"), "named-rows", finding)])
    (line,) = github(result, "check").splitlines()
    assert line == (
        "::warning file=a%2Cb%3Ac.py,line=3,col=5,title=CM103::"
        "two `id` columns, 100%25. SELECT a,%0A  b: c"
    )
