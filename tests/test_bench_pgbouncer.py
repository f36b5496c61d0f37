"""bench --pgbouncer: several gunicorn servers share one PostgreSQL through PgBouncer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from claun_migrate.cli import main
from claun_migrate.proof.gunicorn_serve import gunicorn_available
from claun_migrate.proof.pgbouncer import find_pgbouncer

FIXTURE = Path(__file__).parent.parent / "fixtures/legacy_backend/backend"


@pytest.fixture(scope="module")
def pgbouncer_binary() -> str:
    """The pgbouncer binary; installed with apt-get as root when missing; CI never skips."""
    found = find_pgbouncer()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for args in (["update", "-q"], ["install", "-y", "-q", "pgbouncer"]):
            subprocess.run(["apt-get", *args], env=env, capture_output=True, timeout=600)
        found = find_pgbouncer()
    if found is None:
        reason = "pgbouncer is not installed and could not be installed with apt-get"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PgBouncer bench: {reason}")
        pytest.skip(reason)
    return found


@pytest.mark.postgres
@pytest.mark.slow
def test_through_pgbouncer_server_connections_stay_within_its_pool_and_nothing_fails(
    pgbouncer_binary: str, postgres_server_url: str
) -> None:
    server = "gunicorn" if gunicorn_available() else "cheroot"
    args = ["bench", str(FIXTURE), "--server", server, "--workers", "2", "--threads", "2"]
    args += ["--duration", "1", "--rounds", "2", "--concurrency", "6", "--no-preload", "--no-limit"]
    args += ["--pgbouncer", "--pgbouncer-pool-size", "2", "--pgbouncer-servers", "2"]
    args += ["--database-url", postgres_server_url, "--format", "json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    side = report["pgbouncer"]
    assert side["errors"] == 0 and side["requests"] > 0
    assert report["pgbouncer_pool_size"] == 2
    assert 1 <= side["peak_server_connections"] <= 2
    # the app servers together could hold more client connections than PgBouncer's pool
    assert report["settings"]["pgbouncer_instances"] * report["server_connection_bound"] > 2
