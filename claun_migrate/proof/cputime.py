"""CPU time of local processes from /proc (Linux), for bench's CPU per request.

Throughput on a machine shared with other work moves with that work; the CPU seconds a side's
own processes spent per request move far less, so bench reports both.
"""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def available() -> bool:
    """True where /proc gives per-process CPU times."""
    return Path("/proc/self/stat").exists()


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_cpu(pid: int, reaped_children: bool = False) -> float:
    """User + system CPU seconds of ``pid`` (and of its exited, reaped children); 0 if gone."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def parent_pid(pid: int) -> int | None:
    """The parent of a live local process."""
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def children(pid: int) -> list[int]:
    """The live children of ``pid``."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(child) for child in task.read_text().split()]
        except OSError:
            continue
    return found


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid``, its descendants, and the children they reaped."""
    return process_cpu(pid, reaped_children=True) + sum(tree_cpu(child) for child in children(pid))


def is_postgres(pid: int) -> bool:
    """True when ``pid`` is a local PostgreSQL process (a backend of a server on this machine)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() in ("postgres", "postmaster")
    except OSError:
        return False
