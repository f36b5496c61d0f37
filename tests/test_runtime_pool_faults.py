"""The shipped pool while the server is down, stalled or full, on a PostgreSQL server of its own.

These tests stop, freeze and restart the server, so they use a private embedded server rather
than the session's; ``benchmarks/pool_faults.py`` runs the same faults under load.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from claun_migrate.proof.pgserver import EmbeddedPostgres, PostgresUnavailable
from claun_migrate.runtime.db_pool import ConnectionPool, PoolTimeout

pytestmark = pytest.mark.postgres
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "pool_faults.py"


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedPostgres]:
    try:
        server = EmbeddedPostgres(max_connections=6).start()
    except (PostgresUnavailable, OSError) as exc:
        if os.environ.get("CLAUN_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield server
    server.stop()


@pytest.fixture
def pools() -> Iterator[list[ConnectionPool]]:
    made: list[ConnectionPool] = []
    yield made
    for pool in made:
        pool.close()


def pg_ctl(server: EmbeddedPostgres, *args: str) -> None:
    server._run(["pg_ctl", "-D", str(server.pgdata), *args])


def start_again(server: EmbeddedPostgres) -> None:
    """Start a stopped server with the options it last ran with (postmaster.opts)."""
    pg_ctl(server, "-w", "-l", str(server.pgdata.parent / "server.log"), "restart")


def select_one(conn: psycopg2.extensions.connection) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        return cur.fetchone()[0]


def test_while_the_server_is_down_callers_wait_and_connects_back_off(server, pools, caplog):
    pool = ConnectionPool(server.url(), min_size=2, max_size=4, timeout=1.5)
    pools.append(pool)
    pg_ctl(server, "-m", "immediate", "stop")
    outcomes: list[tuple[BaseException, float]] = []

    def request() -> None:
        started = time.monotonic()
        try:
            pool.getconn()
        except BaseException as exc:
            outcomes.append((exc, time.monotonic() - started))

    try:
        with caplog.at_level("WARNING", logger="claun.db_pool"):
            threads = [threading.Thread(target=request) for _ in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        start_again(server)

    assert len(outcomes) == 16 and {type(exc) for exc, _ in outcomes} == {PoolTimeout}
    assert max(waited for _, waited in outcomes) < 1.5 + 0.5
    message = str(outcomes[0][0])
    assert "connecting failed" in message and "No such file or directory" in message
    errors = pool.stats()["connection_errors"]
    assert 1 <= errors <= 10  # 16 callers in 1.5 s: a few probes, not a connect storm
    assert caplog.text.count("connect failed") == errors

    started = time.monotonic()
    conn = pool.getconn(timeout=10)  # the server is back: the next probe connects
    assert select_one(conn) == 1 and time.monotonic() - started < 3
    pool.putconn(conn)


def test_a_full_server_makes_callers_wait_for_the_connections_the_pool_holds(server, pools):
    pool = ConnectionPool(server.url(), min_size=0, max_size=10, timeout=10)
    pools.append(pool)
    errors: list[BaseException] = []
    stop = time.monotonic() + 2

    def work() -> None:
        try:
            while time.monotonic() < stop:
                with pool.connection() as conn:
                    select_one(conn)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    stats = pool.stats()
    assert errors == [] and stats["timeouts"] == 0
    assert stats["size"] == stats["connects"] == 6  # all the server allows
    assert 1 <= stats["connection_errors"] <= 15  # growth retried with back-off


@contextlib.contextmanager
def frozen_postmaster(server: EmbeddedPostgres) -> Iterator[None]:
    """The postmaster stopped with SIGSTOP: connects hang; open sessions keep working."""
    pid = int((server.pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_connect_timeout_bounds_getconn_when_the_postmaster_hangs(server, pools):
    pool = ConnectionPool(server.url(), min_size=1, max_size=2, timeout=2, connect_timeout=2)
    pools.append(pool)
    held = pool.getconn()
    with frozen_postmaster(server):
        started = time.monotonic()
        with pytest.raises(PoolTimeout, match="timeout expired"):
            pool.getconn()
        waited = time.monotonic() - started
        assert select_one(held) == 1  # the open session was never affected
    assert 1.9 < waited < 3.5
    pool.putconn(held)


def test_a_pool_that_never_connected_raises_the_connect_error_at_once(server, pools):
    pool = ConnectionPool(server.url(), min_size=0, max_size=2, timeout=30, connect_timeout=2)
    pools.append(pool)
    with frozen_postmaster(server):
        started = time.monotonic()
        with pytest.raises(psycopg2.OperationalError, match="timeout expired"):
            pool.getconn()
    assert time.monotonic() - started < 3.5  # the connect timeout, not the pool's 30 s
    wrong = f"postgresql://postgres@/postgres?host={server.root}&port=1"
    started = time.monotonic()
    with pytest.raises(psycopg2.OperationalError):
        ConnectionPool(wrong, min_size=1, timeout=30)
    assert time.monotonic() - started < 1


@pytest.mark.slow
def test_fault_script_short_run_sees_no_getconn_error_and_leaks_nothing(capsys):
    spec = importlib.util.spec_from_file_location("pool_faults", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    results = module.main(["--seconds", "3", "--threads", "16", "--timeout", "5"])

    out = capsys.readouterr().out
    assert "connect attempts/s" in out and "after close()" in out
    for result in results.values():
        assert result["getconn_errors"] == 0 and result["stats"]["timeouts"] == 0, result
        assert result["longest_wait"] < result["timeout"]
        assert result["server_connections_after_run"] == result["stats"]["size"]
        assert result["server_connections_after_close"] == 0
        assert result["ok"] > 0
    faults, capacity = results["faults"], results["capacity"]
    assert set(faults["errors"]) <= {"query in flight on a killed connection"}
    assert faults["outage"] > 0.5 and 0 < faults["connect_attempts_per_second"] < 30
    assert capacity["errors"] == {} and capacity["stats"]["connection_errors"] > 0
