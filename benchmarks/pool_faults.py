"""The shipped pool under faults, on an embedded PostgreSQL server (loopback only, time-bounded).

    python benchmarks/pool_faults.py [--seconds 20] [--threads 64] [--pool 8] [--timeout 10]

Two runs of ``--threads`` threads checking out connections from one pool of ``--pool`` and
running a short query, back to back, for ``--seconds`` each:
1. faults: every 2 s every backend of the pool is terminated (``pg_terminate_backend``), and
   half-way through the server stops for one second and restarts;
2. capacity: the server's ``max_connections`` is below the pool's ``max_size`` (no other fault).
For each run it prints the requests that succeeded, the errors callers saw (split into
``getconn`` errors and queries that failed in flight on a killed connection), the connect
attempts per second while the server was down, the longest ``getconn`` wait against its
timeout, and the server connections left after the threads stopped and after ``close()``.
"""

from __future__ import annotations

import argparse
import collections
import logging
import threading
import time
from typing import Any

import psycopg2

from claun_migrate.proof.pgserver import EmbeddedPostgres
from claun_migrate.runtime.db_pool import ConnectionPool

APP = "claun-pool-faults"


class _CountingHandler(logging.Handler):
    """Counts the pool's log records by level instead of printing them."""

    def __init__(self) -> None:
        super().__init__()
        self.records: collections.Counter[str] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.records[record.levelname] += 1


class _Admin:
    """A connection of its own for counting and killing backends; reconnects when killed.

    Opened before the pool, so it is not refused when the pool holds every connection the
    server allows.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = self._connect()

    def _connect(self) -> psycopg2.extensions.connection:
        conn = psycopg2.connect(self.url, connect_timeout=5, application_name="claun-admin")
        conn.autocommit = True
        return conn

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        for attempt in range(2):
            try:
                with self.conn.cursor() as cur:
                    cur.execute(sql)
                    return cur.fetchall()
            except psycopg2.Error:
                if attempt:
                    raise
                self.conn.close()
                self.conn = self._connect()
        raise AssertionError("unreachable")

    def pool_backends(self) -> int:
        sql = f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{APP}'"
        return int(self.query(sql)[0][0])

    def settle(self, expected: int, seconds: float = 5.0) -> int:
        """Server connections of the pool, after closed ones have left pg_stat_activity."""
        deadline = time.monotonic() + seconds
        count = self.pool_backends()
        while count != expected and time.monotonic() < deadline:
            time.sleep(0.05)
            count = self.pool_backends()
        return count


def _restart(server: EmbeddedPostgres, down: float) -> None:
    """Stop the server at once, keep it down for ``down`` seconds, start it with its options."""
    data = str(server.pgdata)
    server._run(["pg_ctl", "-D", data, "-m", "immediate", "stop"])
    time.sleep(down)
    log = str(server.root / "server.log")  # type: ignore[operator]
    server._run(["pg_ctl", "-D", data, "-w", "-l", log, "restart"])  # reuses postmaster.opts


def run(
    server: EmbeddedPostgres,
    *,
    seconds: float,
    threads: int,
    size: int,
    timeout: float,
    faults: bool,
) -> dict[str, Any]:
    """One run; returns the figures it prints."""
    url = server.url()
    admin = _Admin(url)
    log = _CountingHandler()
    logger = logging.getLogger("claun.db_pool")
    logger.addHandler(log)
    pool = ConnectionPool(url, min_size=size, max_size=size, timeout=timeout, application_name=APP)
    lock = threading.Lock()
    errors: collections.Counter[str] = collections.Counter()
    ok = 0
    longest_wait = 0.0
    stop = threading.Event()

    def work() -> None:
        nonlocal ok, longest_wait
        while not stop.is_set():
            started = time.monotonic()
            try:
                conn = pool.getconn()
            except Exception as exc:
                with lock:
                    errors[f"getconn {exc!r}"] += 1
                    longest_wait = max(longest_wait, time.monotonic() - started)
                continue
            waited = time.monotonic() - started
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_sleep(0.001)")
                conn.commit()
                kind = None
            except Exception as exc:
                lost = isinstance(exc, psycopg2.Error) and (
                    conn.closed
                    or (exc.pgcode or "").startswith("57P")  # terminated, server shutting down
                    or "server closed the connection" in str(exc)
                )
                kind = "query in flight on a killed connection" if lost else f"query {exc!r}"
            finally:
                pool.putconn(conn)
            with lock:
                longest_wait = max(longest_wait, waited)
                if kind is None:
                    ok += 1
                else:
                    errors[kind] += 1

    samples: list[tuple[float, int]] = []  # (time, connect attempts so far)

    def sample() -> None:
        while not stop.is_set():
            stats = pool.stats()
            samples.append((time.monotonic(), stats["connects"] + stats["connection_errors"]))
            time.sleep(0.05)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    sampler = threading.Thread(target=sample)
    for thread in [*workers, sampler]:
        thread.start()
    started = time.monotonic()
    end = started + seconds
    kills = 0
    outage = (0.0, 0.0)
    restarted = not faults
    next_kill = started + 2
    try:
        while time.monotonic() < end:
            now = time.monotonic()
            if not restarted and now >= started + seconds / 2:
                down_at = time.monotonic()
                _restart(server, down=1.0)
                outage = (down_at, time.monotonic())
                restarted = True
                next_kill = time.monotonic() + 2
            elif faults and now >= next_kill:
                admin.query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE application_name = '{APP}'",
                )
                kills += 1
                next_kill += 2
            time.sleep(0.02)
    finally:
        stop.set()
        for thread in [*workers, sampler]:
            thread.join()
    elapsed = time.monotonic() - started
    stats = pool.stats()
    after_run = admin.settle(stats["size"])
    pool.close()
    after_close = admin.settle(0)
    admin.conn.close()
    logger.removeHandler(log)

    attempts_per_second = 0.0
    if outage[1]:
        before = [(t, n) for t, n in samples if t < outage[0]][-1:]
        window = before + [(t, n) for t, n in samples if outage[0] <= t <= outage[1] + 1.0]
        if len(window) > 1:
            attempts_per_second = (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
    return {
        "seconds": elapsed,
        "ok": ok,
        "errors": dict(errors),
        "getconn_errors": sum(n for kind, n in errors.items() if kind.startswith("getconn")),
        "kills": kills,
        "outage": outage[1] - outage[0],
        "connect_attempts_per_second": attempts_per_second,
        "longest_wait": longest_wait,
        "timeout": timeout,
        "stats": stats,
        "log_records": log.records,
        "server_connections_after_run": after_run,
        "server_connections_after_close": after_close,
    }


def report(title: str, result: dict[str, Any]) -> None:
    stats = result["stats"]
    print(f"\n{title}")
    print(f"  requests ok                      {result['ok']} in {result['seconds']:.1f}s")
    errors = ", ".join(f"{kind}: {n}" for kind, n in sorted(result["errors"].items()))
    print(f"  errors seen by callers           {errors or 'none'}")
    print(f"  getconn errors                   {result['getconn_errors']}")
    if result["kills"] or result["outage"]:
        print(f"  backend kills (every 2 s)        {result['kills']}")
        print(f"  server down and restarting       {result['outage']:.1f}s")
        print(f"  connect attempts/s, down..up+1s  {result['connect_attempts_per_second']:.1f}")
    print(
        f"  longest getconn wait             {result['longest_wait']:.2f}s "
        f"(timeout {result['timeout']:g}s)"
    )
    print(
        f"  pool stats                       size {stats['size']}, connects {stats['connects']}, "
        f"connection errors {stats['connection_errors']}, discarded {stats['discarded']}, "
        f"timeouts {stats['timeouts']}"
    )
    logged = ", ".join(f"{n} {level}" for level, n in sorted(result["log_records"].items()))
    print(f"  pool log records                 {logged or 'none'}")
    print(
        f"  server connections               {result['server_connections_after_run']} after the "
        f"run (pool size {stats['size']}), {result['server_connections_after_close']} after close()"
    )


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run")
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--pool", type=int, default=8, help="the pool's max_size")
    parser.add_argument("--timeout", type=float, default=10.0, help="getconn timeout")
    args = parser.parse_args(argv)
    options = {"seconds": args.seconds, "threads": args.threads, "size": args.pool}
    results = {}
    with EmbeddedPostgres(max_connections=args.pool + 20) as server:
        results["faults"] = run(server, timeout=args.timeout, faults=True, **options)
    report(
        f"{args.threads} threads, pool of {args.pool}: backends killed every 2 s, one restart",
        results["faults"],
    )
    low = max(3, args.pool - 2)  # one of them is the script's own admin connection
    with EmbeddedPostgres(max_connections=low) as server:
        results["capacity"] = run(server, timeout=args.timeout, faults=False, **options)
    report(
        f"{args.threads} threads, pool of {args.pool}: server max_connections = {low}",
        results["capacity"],
    )
    return results


if __name__ == "__main__":
    main()
