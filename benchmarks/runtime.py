"""Side-by-side costs of the shipped runtime against the alternatives, on one PostgreSQL server.

    python benchmarks/runtime.py [--url URL] [--auth trust|scram] [--rows 50000]

Without ``--url`` (or ``DATABASE_URL``) it starts an embedded server. Three tables:
1. checkout + return of one connection: this pool (plain, through ``get_pool()``, with a
   ``DISCARD ALL`` reset), psycopg2's ``ThreadedConnectionPool``, psycopg_pool and
   SQLAlchemy's ``QueuePool`` when installed (``pip install -e '.[bench]'``), and the
   liveness check itself against a ``SELECT 1``;
2. ``SELECT 1`` the way ``execute_sql(fetch=True)`` runs it: pooled, on one persistent
   connection, and connect-per-call (the legacy code);
3. fetching ``--rows`` rows x 10 columns as tuples, ``Row``, ``DictCursor``, ``RealDictCursor``;
   then tuples and ``Row`` beside a million live objects with the garbage collector running
   as it does in an application (no ``gc.collect()`` between turns; the runtime never pauses
   the collector), against rows built into a new list.
Each figure is the best of several runs; ratios are against the first line of its table.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import time
from collections.abc import Callable

import psycopg2
import psycopg2.extras
import psycopg2.pool

from claun_migrate.proof.pgserver import postgres_server
from claun_migrate.runtime import db_pool
from claun_migrate.runtime.db_pool import ConnectionPool
from claun_migrate.runtime.db_rows import Row, RowCursor

Result = tuple[str, float]
Action = tuple[str, Callable[[], object]]


def compare(
    actions: list[Action], number: int, repeat: int = 9, collect: bool = True
) -> list[Result]:
    """Best seconds per call of each action; the actions take turns so drift hits all alike.

    ``collect``: each turn starts from a collected heap, not the last turn's garbage.
    """
    best = dict.fromkeys([name for name, _ in actions], float("inf"))
    for _ in range(repeat):
        for name, action in actions:
            if collect:
                gc.collect()
            started = time.perf_counter()
            for _ in range(number):
                action()
            best[name] = min(best[name], (time.perf_counter() - started) / number)
    return list(best.items())


def print_table(title: str, results: list[Result], unit: str, scale: float) -> None:
    print(f"\n{title}")
    base = results[0][1]
    for name, seconds in results:
        print(f"  {name:<44} {seconds * scale:>10.2f} {unit:<3} {seconds / base:>7.2f}x")


def bench_checkout(url: str, number: int) -> None:
    with contextlib.ExitStack() as stack:
        ours = stack.enter_context(ConnectionPool(url, min_size=1, max_size=4))
        resetting = stack.enter_context(
            ConnectionPool(url, min_size=1, max_size=4, reset="DISCARD ALL")
        )
        threaded = psycopg2.pool.ThreadedConnectionPool(1, 4, url)
        stack.callback(threaded.closeall)
        stack.callback(db_pool.close_pool)

        def migrated_code_path() -> None:
            conn = db_pool.get_pool(url, cursor_factory=RowCursor).getconn()
            db_pool.get_pool(url).putconn(conn)

        actions: list[Action] = [
            ("this pool (liveness check on)", lambda: ours.putconn(ours.getconn())),
            ("this pool through get_pool() (migrated code)", migrated_code_path),
            ("this pool, reset='DISCARD ALL'", lambda: resetting.putconn(resetting.getconn())),
            ("psycopg2 ThreadedConnectionPool", lambda: threaded.putconn(threaded.getconn())),
        ]
        with contextlib.suppress(ImportError):
            import psycopg_pool

            pool3 = stack.enter_context(psycopg_pool.ConnectionPool(url, min_size=1, max_size=4))
            actions.append(("psycopg_pool (psycopg 3)", lambda: pool3.putconn(pool3.getconn())))
        with contextlib.suppress(ImportError):
            from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2
            from sqlalchemy.pool import QueuePool

            def creator() -> psycopg2.extensions.connection:
                return psycopg2.connect(url)

            queue = QueuePool(creator, pool_size=4)
            ping = QueuePool(creator, pool_size=4, pre_ping=True, dialect=PGDialect_psycopg2())
            stack.callback(queue.dispose)
            stack.callback(ping.dispose)
            actions.append(("SQLAlchemy QueuePool", lambda: queue.connect().close()))
            actions.append(("SQLAlchemy QueuePool (pre_ping)", lambda: ping.connect().close()))
        print_table("checkout + return, one thread", compare(actions, number), "us", 1e6)

        conn = psycopg2.connect(url)
        stack.callback(conn.close)
        conn.autocommit = True
        cur = conn.cursor()
        poll = db_pool._poller(conn)
        checks: list[Action] = [
            ("liveness check: poll() on the socket", lambda: poll(0)),
            ("liveness check: SELECT 1 round trip", lambda: cur.execute("SELECT 1")),
        ]
        print_table("liveness check alone", compare(checks, number), "us", 1e6)


def bench_query(url: str, number: int) -> None:
    pool = ConnectionPool(url, min_size=1, max_size=4)
    persistent = psycopg2.connect(url)

    def select_one(conn: psycopg2.extensions.connection) -> None:
        cur = conn.cursor()
        cur.execute("SELECT 1")
        cur.fetchall()

    def pooled() -> None:
        conn = pool.getconn()
        try:
            select_one(conn)
        finally:
            pool.putconn(conn)  # rolls back the open transaction

    def on_persistent() -> None:
        select_one(persistent)
        persistent.rollback()

    def connect_per_call() -> None:
        conn = psycopg2.connect(url)
        try:
            select_one(conn)
        finally:
            conn.close()

    pair = [("one persistent connection", on_persistent), ("this pool", pooled)]
    results = compare(pair, max(1, number // 10), 30)  # short turns: quiet moments count
    results += compare([("connect per call (legacy)", connect_per_call)], max(5, number // 20), 3)
    print_table("SELECT 1 as execute_sql(fetch=True) runs it", results, "us", 1e6)
    pool.close()
    persistent.close()


def bench_rows(url: str, rows: int) -> None:
    sql = (
        "SELECT i, i + 1, 'name' || i, i * 2, 'x', i % 7, 'user' || i || '@example.com', "
        f"i % 2 = 0, i / 3.0, now() FROM generate_series(1, {rows}) AS i"
    )
    conn = psycopg2.connect(url)
    factories = [
        ("plain tuples", None),
        ("Row (RowCursor)", RowCursor),
        ("psycopg2 DictCursor", psycopg2.extras.DictCursor),
        ("psycopg2 RealDictCursor", psycopg2.extras.RealDictCursor),
    ]

    def fetch_with(factory: type | None) -> Callable[[], object]:
        def fetch() -> object:
            with conn.cursor(cursor_factory=factory) as cur:
                cur.execute(sql)
                return cur.fetchall()

        return fetch

    results = compare([(name, fetch_with(factory)) for name, factory in factories], 1, 9)
    print_table(f"fetchall of {rows} rows x 10 columns", results, "ms", 1e3)

    heap = [{"n": [i]} for i in range(300_000)]  # a dict and a list each: objects gc tracks
    factories = [
        ("plain tuples", None),
        ("Row (RowCursor, tuples replaced in place)", RowCursor),
        ("Row built into a new list", NewListRowCursor),
    ]
    results = compare(
        [(name, fetch_with(factory)) for name, factory in factories], 1, 9, collect=False
    )
    print_table(
        f"same, beside {len(heap) * 2:,} live objects, the collector left to run",
        results,
        "ms",
        1e3,
    )
    conn.close()


class NewListRowCursor(RowCursor):
    """``RowCursor`` building a new list of rows: every tuple lives until the end."""

    def fetchall(self) -> list[Row]:  # type: ignore[override]
        rows = psycopg2.extensions.cursor.fetchall(self)
        return list(map(self._row_class(), rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--auth", choices=["trust", "scram"], default="trust")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--iterations", type=int, default=2_000)
    args = parser.parse_args(argv)
    with postgres_server(args.url, auth=args.auth) as url:
        print(f"server: {args.url or f'embedded PostgreSQL ({args.auth})'}")
        bench_checkout(url, args.iterations * 5)
        bench_query(url, args.iterations)
        bench_rows(url, args.rows)


if __name__ == "__main__":
    main()
