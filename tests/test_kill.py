"""Crash safety of ``claun-migrate apply`` as a process: SIGKILL, SIGINT, two runs at once.

The tree: the legacy fixture backend plus a few hundred generated modules (some route modules
calling ``execute_sql`` as ``benchmarks/tool_speed.py`` generates them, the rest plain code).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "fixtures/legacy_backend/backend"
BUDGET = 20.0  # seconds of kill rounds after the reference run (at least 3 rounds)

ROUTE = '''from app.services.database import execute_sql


def user_{i}(user_id):
    """Load user {i} as the API returns it"""
    rows = execute_sql("SELECT id, email, name FROM users WHERE id = %s", (user_id,), fetch=True)
    if not rows:
        return None
    row = rows[0]
    return {{"id": row[0], "email": row[1], "name": row[2], "rank": {i}}}
'''

PLAIN = '''"""Plain module {i}: no data layer here"""


def compute_{i}(values, factor={i}):
    return [value * factor for value in values if value % 3]
'''


def make_tree(root: Path, routes: int = 24, plain: int = 240) -> Path:
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    generated = root / "app" / "generated"
    generated.mkdir()
    (generated / "__init__.py").write_text("")
    for i in range(routes):
        (generated / f"route_{i:03}.py").write_text(ROUTE.format(i=i))
    for i in range(plain):
        (generated / f"plain_{i:03}.py").write_text(PLAIN.format(i=i))
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the tree (dot-files too), by relative path."""
    files = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            path = Path(folder) / name
            files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def restore(root: Path, files: dict[str, bytes]) -> None:
    for rel in set(snapshot(root)) - set(files):
        (root / rel).unlink()
    for rel, data in files.items():
        path = root / rel
        if not path.exists() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CLAUN_MIGRATE_CACHE_DIR": str(tmp_path / "state")}


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "claun_migrate", *args]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def journals(state: Path) -> list[Path]:
    folder = state / "journal"
    return list(folder.glob("*.json")) if folder.is_dir() else []


def test_sigkill_at_any_moment_leaves_the_tree_original_or_migrated(
    tmp_path: Path, env: dict[str, str]
) -> None:
    state = Path(env["CLAUN_MIGRATE_CACHE_DIR"])
    root = make_tree(tmp_path / "backend")
    original = snapshot(root)
    reference = start(env, "apply", "-j", "2", str(root))
    began = time.monotonic()
    opened = closed = None
    while reference.poll() is None:  # time the write phase: while a journal exists
        now = time.monotonic()
        if journals(state):
            opened = opened or now
        elif opened and not closed:
            closed = now
        time.sleep(0.001)
    code, out, err = finish(reference)
    assert code == 0, out + err
    whole = time.monotonic() - began
    window = (closed or time.monotonic()) - (opened or began)
    migrated = snapshot(root)
    assert migrated != original
    seed = int(os.environ.get("CLAUN_KILL_SEED", time.time()))
    rng = random.Random(seed)
    rounds, hit, deadline, reach = 0, 0, time.monotonic() + BUDGET, whole
    while rounds < 3 or (time.monotonic() < deadline and rounds < 10):
        restore(root, original)
        apply = start(env, "apply", str(root))
        started = time.monotonic()
        if rounds % 3 == 2:  # anywhere in the run
            time.sleep(rng.uniform(0, reach + window))
        else:  # inside the write phase
            while not journals(state) and apply.poll() is None and time.monotonic() < started + 60:
                time.sleep(0.001)
            reach = time.monotonic() - started
            time.sleep(rng.uniform(0, 0.8 * window))
        apply.kill()
        apply.wait()
        left = journals(state)  # what the killed run left behind
        hit += bool(left)
        command = "apply" if rounds % 2 else "check"  # the next command, whichever it is
        code, out, err = finish(start(env, command, str(root)))
        assert bool(left) == ("was interrupted" in err), err
        after = snapshot(root)
        mixed = sorted(
            rel
            for rel in set(after) | set(migrated) | set(original)
            if after.get(rel) not in (original.get(rel), migrated.get(rel))
            or (after.get(rel) == original.get(rel)) != (after == original)
        )
        assert after in (original, migrated), (
            f"seed {seed} round {rounds}: mixed tree, differing: {mixed[:8]}\n{err}"
        )
        if command == "apply":
            assert (code, after == migrated) == (0, True), f"seed {seed} round {rounds}\n{err}"
        else:
            assert code == (0 if after == migrated else 1), out + err
        assert list((state / "journal").iterdir()) == []  # no journal, nor a half-written one
        assert list((state / "staging").iterdir()) == []
        rounds += 1
    assert hit, "no kill landed while a journal was open"


def child_pids(pid: int) -> set[int]:
    children: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with open(task / "children") as handle:
            children.update(int(c) for c in handle.read().split())
    return children


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc")
def test_sigint_stops_at_once_exits_130_and_leaves_no_worker(
    tmp_path: Path, env: dict[str, str]
) -> None:
    root = make_tree(tmp_path / "backend", routes=60, plain=20)
    original = snapshot(root)
    apply = start(env, "apply", "-j", "2", "--no-cache", str(root))
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while not workers and apply.poll() is None and time.monotonic() < deadline:
        workers = child_pids(apply.pid)
        time.sleep(0.01)
    assert workers, "the pool never started"
    time.sleep(0.3)
    apply.send_signal(signal.SIGINT)
    sent = time.monotonic()
    code, out, err = finish(apply)
    stopped = time.monotonic() - sent
    assert code == 130, out + err
    assert stopped < 3.0  # "within a second" on an idle machine; CI machines are shared
    assert "interrupted" in err and "Traceback" not in err
    time.sleep(0.5)
    assert not [pid for pid in workers if alive(pid)]
    assert snapshot(root) == original


def test_sigkill_during_the_transform_leaves_no_worker(tmp_path: Path, env: dict[str, str]):
    root = make_tree(tmp_path / "backend", routes=60, plain=20)
    apply = start(env, "apply", "-j", "2", "--no-cache", str(root))
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while not workers and apply.poll() is None and time.monotonic() < deadline:
        workers = child_pids(apply.pid)
        time.sleep(0.01)
    assert workers, "the pool never started"
    apply.kill()
    apply.wait()
    deadline = time.monotonic() + 3
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if alive(pid)]


def test_two_applies_at_once_are_serialised(tmp_path: Path, env: dict[str, str]) -> None:
    root = make_tree(tmp_path / "backend", routes=10, plain=10)
    env = {**env, "CLAUN_MIGRATE_LOCK_WAIT": "120"}
    first, second = start(env, "apply", str(root)), start(env, "apply", str(root))
    outcomes = [finish(first), finish(second)]
    assert [code for code, _, _ in outcomes] == [0, 0], outcomes
    summaries = sorted(out.splitlines()[-1].split(" files changed")[0] for _, out, _ in outcomes)
    assert summaries[0] == "0" and summaries[1] != "0", summaries
    code, out, _ = finish(start(env, "check", str(root)))
    assert code == 0, out


def test_a_second_apply_told_not_to_wait_exits_2(tmp_path: Path, env: dict[str, str]) -> None:
    root = make_tree(tmp_path / "backend", routes=10, plain=10)
    first = start(env, "apply", "--no-cache", str(root))
    lock_dir = Path(env["CLAUN_MIGRATE_CACHE_DIR"]) / "locks"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first.poll() is None:
        if any(p.read_text().strip() == str(first.pid) for p in lock_dir.glob("*.lock")):
            break
        time.sleep(0.01)
    code, out, err = finish(start({**env, "CLAUN_MIGRATE_LOCK_WAIT": "0"}, "apply", str(root)))
    assert finish(first)[0] == 0
    assert code == 2, out + err
    assert f"another claun-migrate run is using {os.path.realpath(root)}" in err
