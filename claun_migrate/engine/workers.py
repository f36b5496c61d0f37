"""Transform files in worker processes that never outlive the run.

Workers ignore SIGINT (the parent decides), close the tree lock they inherit through fork, and
exit by themselves when their parent disappears (a SIGKILL gives the parent no chance to stop
them). On any interruption the parent terminates them at once instead of waiting for their
queued work.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

from claun_migrate.engine.transaction import forget_inherited_locks

PARALLEL_MIN_FILES = 8
T = TypeVar("T")


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.2)
        if os.getppid() != parent:
            os._exit(1)


def _init_worker(parent: int | None) -> None:
    """``parent``: the run's pid when workers are forked from it (else their parent is a
    fork server that ends with the run)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    forget_inherited_locks()
    watched = parent or os.getppid()
    if os.getppid() != watched:  # the run died before this worker started
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(watched,), daemon=True).start()


def run_jobs(function: Callable[[Any], T], jobs: Sequence[Any], workers: int) -> list[T]:
    """``function`` over ``jobs``, in order, in up to ``workers`` processes."""
    if workers <= 1 or len(jobs) < PARALLEL_MIN_FILES:
        return [function(job) for job in jobs]
    workers = min(workers, len(jobs))
    context = multiprocessing.get_context()
    forked = context.get_start_method() == "fork"
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(os.getpid() if forked else None,),
    )
    try:
        results = list(pool.map(function, jobs, chunksize=max(1, len(jobs) // (workers * 4))))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        children = multiprocessing.active_children()
        for child in children:
            child.terminate()
        for child in children:
            child.join(1)
        raise
    pool.shutdown()
    return results
