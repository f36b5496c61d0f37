"""CPU time from /proc, as bench reads it for its app servers and database processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from claun_migrate.proof import cputime

pytestmark = pytest.mark.skipif(not cputime.available(), reason="needs Linux /proc")
BUSY = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"


def test_tree_cpu_counts_a_live_child() -> None:
    busy_then_wait = BUSY + "\nprint('busy', flush=True)\nimport sys\nsys.stdin.read()"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {busy_then_wait!r}])",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline() == b"busy\n"
        assert len(cputime.children(parent.pid)) == 1
        own = cputime.process_cpu(parent.pid, reaped_children=True)
        assert cputime.tree_cpu(parent.pid) - own >= 0.25
    finally:
        parent.communicate(b"")


def test_reaped_children_count_for_their_parent() -> None:
    before = cputime.process_cpu(os.getpid(), reaped_children=True)
    subprocess.run([sys.executable, "-c", BUSY], check=True)
    after = cputime.process_cpu(os.getpid(), reaped_children=True)
    assert after - before >= 0.25
    assert cputime.process_cpu(os.getpid()) < after


def test_a_gone_process_has_no_cpu_and_no_parent() -> None:
    done = subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert done.returncode == 0
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert cputime.process_cpu(gone.pid) == 0.0
    assert cputime.parent_pid(gone.pid) is None
    assert cputime.parent_pid(os.getpid()) == os.getppid()
