"""bench under gunicorn: prefork workers, --preload, and the persistent-connection limit."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import threading
import types
from pathlib import Path

import psycopg2
import pytest
from click.testing import CliRunner

from claun_migrate.cli import main
from claun_migrate.proof import cputime
from claun_migrate.proof.gunicorn_serve import gunicorn_available
from claun_migrate.proof.wsgi_serve import use_persistent_connections
from claun_migrate.runtime import db_pool

FIXTURE = Path(__file__).parent.parent / "fixtures/legacy_backend/backend"
needs_gunicorn = pytest.mark.skipif(not gunicorn_available(), reason="gunicorn is not installed")


def backend_pool_module(tmp_path: Path) -> types.ModuleType:
    """The shipped pool module as a backend holds it: a copy under ``tmp_path``, imported."""
    shutil.copy(db_pool.__file__, tmp_path / "db_pool.py")
    spec = importlib.util.spec_from_file_location("bench_test_db_pool", tmp_path / "db_pool.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.postgres
def test_persistent_variant_gives_each_thread_its_own_kept_connection(
    tmp_path: Path, postgres_url: str
) -> None:
    module = backend_pool_module(tmp_path)
    try:
        assert use_persistent_connections(tmp_path) == 1
        pool = module.ConnectionPool(postgres_url, min_size=0, max_size=1)
        conn = pool.getconn()
        conn.cursor().execute("SELECT 1")
        pool.putconn(conn)
        assert conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        assert pool.getconn() is conn and not conn.closed
        assert module._owner_of(conn) is pool  # how the runtime's module-level putconn finds it
        other: list[object] = []
        thread = threading.Thread(target=lambda: other.append(pool.getconn()))
        thread.start()
        thread.join()
        assert other[0] is not conn  # max_size=1 would have made this thread wait
        for held in (conn, other[0]):
            held.close()  # type: ignore[attr-defined]
    finally:
        sys.modules.pop("bench_test_db_pool", None)


def test_persistent_variant_patches_nothing_outside_the_root(tmp_path: Path) -> None:
    assert use_persistent_connections(tmp_path) == 0


@pytest.mark.postgres
@pytest.mark.slow
@needs_gunicorn
def test_gunicorn_sides_serve_without_errors_within_workers_x_max_size(
    postgres_server_url: str,
) -> None:
    args = ["bench", str(FIXTURE), "--server", "gunicorn", "--workers", "2", "--threads", "2"]
    args += ["--duration", "1", "--rounds", "2", "--concurrency", "4"]
    args += ["--database-url", postgres_server_url]
    result = CliRunner().invoke(main, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["settings"]["sides"] == ["before", "after", "after_preload", "limit"]
    measured_cpu = cputime.available() and not os.environ.get("CLAUN_TEST_DATABASE_URL")
    for side in report["settings"]["sides"]:
        assert report[side]["errors"] == 0 and report[side]["requests"] > 0, side
        if measured_cpu:  # the embedded server runs here: its backends' CPU is readable
            assert report[side]["app_cpu_ms_per_request"] > 0, side
            assert report[side]["db_cpu_ms_per_request"] > 0, side
    bound = report["server_connection_bound"]
    assert bound == 2 * 2
    assert 1 <= report["after"]["peak_server_connections"] <= bound
    # under --preload the master keeps the connection each init step opened before the fork
    # (the fixture's main layer and its library blueprint: two pools); each worker rebuilt its
    # own pools instead of sharing the master's sockets
    assert report["after_preload"]["peak_server_connections"] <= bound + 2
    assert report["after_preload"]["connections_opened"] >= 2
    if measured_cpu:  # every request of the mix makes at least one data-layer call
        assert report["calls_per_request"] >= 1
        assert set(report["pool_checkout_us"]) == {"pool", "persistent"}
    assert report["limit_ratio"] == pytest.approx(
        report["after"]["requests_per_second"] / report["limit"]["requests_per_second"],
        rel=0.01,
    )
