"""Measure a migration: serve the code before and after it and drive the same load at both.

Each side runs in its own process under the same threaded server (cheroot) on loopback, against
its own fresh database on the same PostgreSQL server. The connections each side opened are
read from ``pg_stat_database.sessions`` once its server process has exited.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click
import psycopg2

from claun_migrate.cli.exits import internal_errors_exit_2
from claun_migrate.proof.loadgen import Endpoint, LoadResult, run_load, send
from claun_migrate.proof.pgserver import (
    PostgresUnavailable,
    create_database,
    drop_database,
    postgres_server,
)
from claun_migrate.proof.verify import VerifyError, copy_tree, migrate_tree, suite_env

DEFAULT_ENDPOINTS = (
    "GET /api/profile",
    "GET /api/users/{user_id}",
    "GET /api/jobs",
    "GET /api/jobs/{job_id}",
    "GET /api/stats",
)
START_TIMEOUT = 120.0
BENCH_CANDIDATE = {"email": "candidate@bench.example", "user_type": "candidate"}
BENCH_COMPANY = {"email": "company@bench.example", "user_type": "company"}
BENCH_JOB = {"title": "Engineer", "description": "Benchmarks", "location": "Remote"}


@dataclass
class SideResult:
    """What one side of the benchmark measured."""

    load: LoadResult
    connections: int

    def to_dict(self) -> dict[str, object]:
        return {**self.load.to_dict(), "connections_opened": self.connections}


def sessions(server_url: str, dbname: str) -> int:
    """Connections ever opened to ``dbname`` (read through the maintenance database)."""
    conn = psycopg2.connect(server_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (dbname,))
            row = cur.fetchone()
            return int(row[0]) if row and row[0] is not None else 0
    finally:
        conn.close()


def settled_sessions(server_url: str, dbname: str, seconds: float = 5.0) -> int:
    """``sessions`` once it stops moving (closing backends report their statistics late)."""
    last = sessions(server_url, dbname)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = sessions(server_url, dbname)
        if now == last:
            return now
        last = now
    return last


@contextlib.contextmanager
def serve(
    root: Path, env: dict[str, str], app: str, init: str | None, threads: int
) -> Iterator[int]:
    """Start ``root``'s app in a wsgi_serve subprocess and yield its port; stop it on exit."""
    command = [sys.executable, "-m", "claun_migrate.proof.wsgi_serve", str(root), "--app", app]
    command += ["--threads", str(threads)]
    if init == "auto":
        init = "db_init.py" if (root / "db_init.py").exists() else None
    command += ["--init", init] if init else []
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log
        )
        try:
            assert proc.stdout is not None
            started, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
            line = proc.stdout.readline().decode() if started else ""
            if not line.startswith("PORT "):
                proc.kill()
                log.seek(0)
                error = log.read().decode(errors="replace")[-2000:]
                raise VerifyError(f"the app in {root} did not start: {error}")
            yield int(line.split()[1])
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def seed(port: int) -> tuple[dict[str, str], dict[str, str]]:
    """Create the fixture's benchmark data through its API: a candidate, a company, a job.

    Returns the candidate's request headers (a bearer token) and values for endpoint paths
    (``user_id``, ``job_id``); whatever the app does not offer is left out.
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(path: str, body: dict[str, object], token: str = "") -> dict[str, object]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, data = send(conn, Endpoint("POST", path, json.dumps(body)), headers, 0)
        return json.loads(data) if status == 201 else {}

    try:
        user = {"password": "bench-pw", "name": "Bench"}
        candidate = post("/api/auth/register", user | BENCH_CANDIDATE)
        company = post("/api/auth/register", user | BENCH_COMPANY)
        job = post("/api/jobs", BENCH_JOB, str(company.get("token", ""))) if company else {}
    finally:
        conn.close()
    headers = {"Authorization": f"Bearer {candidate['token']}"} if candidate else {}
    values = {"user_id": candidate.get("user_id"), "job_id": job.get("id")}
    return headers, {key: str(value) for key, value in values.items() if value is not None}


def run_side(
    root: Path,
    server_url: str,
    endpoints: Sequence[Endpoint],
    *,
    app: str,
    init: str | None,
    threads: int,
    duration: float,
    concurrency: int,
    pool_size: int,
) -> SideResult:
    """Serve ``root`` against a fresh database, drive the load, count connections opened."""
    database_url = create_database(server_url)
    dbname = urlsplit(database_url).path.lstrip("/")
    env = suite_env({"DATABASE_URL": database_url, "DB_POOL_MAX_SIZE": str(pool_size)})
    try:
        opened_before = sessions(server_url, dbname)
        with serve(root, env, app, init, threads) as port:
            headers, values = seed(port)
            mix = [Endpoint(e.method, e.path.format_map(_Keep(values)), e.body) for e in endpoints]
            load = run_load(
                "127.0.0.1",
                port,
                mix,
                duration=duration,
                concurrency=concurrency,
                headers=headers,
            )
        return SideResult(load, settled_sessions(server_url, dbname) - opened_before)
    finally:
        drop_database(database_url)


class _Keep(dict[str, str]):
    """format_map values that leave unknown ``{names}`` (such as ``{n}``) in place."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def bench(
    path: Path,
    *,
    migrate: Callable[[Path], object] = migrate_tree,
    endpoints: Sequence[Endpoint] = tuple(Endpoint.parse(e) for e in DEFAULT_ENDPOINTS),
    database_url: str | None = None,
    auth: str = "trust",
    app: str = "app.py:app",
    init: str | None = "auto",
    threads: int = 16,
    duration: float = 10.0,
    concurrency: int = 8,
    pool_size: int = 10,
) -> dict[str, object]:
    """Benchmark ``path`` as it is against a migrated copy; return the JSON-ready report."""
    options = {
        "app": app,
        "init": init,
        "threads": threads,
        "duration": duration,
        "concurrency": concurrency,
        "pool_size": pool_size,
    }
    with tempfile.TemporaryDirectory(prefix="claun-bench-") as work:
        before = copy_tree(path, Path(work) / "before" / path.name)
        after = copy_tree(path, Path(work) / "after" / path.name)
        migrate(after)
        with postgres_server(database_url, auth=auth, max_connections=300) as server_url:
            sides = {
                label: run_side(root, server_url, endpoints, **options)  # type: ignore[arg-type]
                for label, root in (("before", before), ("after", after))
            }
    rates = [side.load.requests_per_second for side in sides.values()]
    return {
        "before": sides["before"].to_dict(),
        "after": sides["after"].to_dict(),
        "speedup": round(rates[1] / rates[0], 2) if rates[0] else None,
        "settings": {
            **options,
            "endpoints": [str(e) for e in endpoints],
            "database": "given URL" if database_url else f"embedded PostgreSQL, auth={auth}",
            "cpus": os.cpu_count(),
        },
    }


def render_text(report: dict[str, object]) -> str:
    """Both sides side by side, then the speed-up and the settings."""
    before, after = report["before"], report["after"]
    assert isinstance(before, dict) and isinstance(after, dict)
    rows = [
        ("requests/s", "requests_per_second", "{:.1f}"),
        ("p50 latency ms", "p50_ms", "{:.2f}"),
        ("p95 latency ms", "p95_ms", "{:.2f}"),
        ("p99 latency ms", "p99_ms", "{:.2f}"),
        ("requests", "requests", "{}"),
        ("errors", "errors", "{}"),
        ("connections opened", "connections_opened", "{}"),
    ]
    lines = [f"{'':<20}{'before':>12}{'after':>12}"]
    for title, key, fmt in rows:
        lines.append(f"{title:<20}{fmt.format(before[key]):>12}{fmt.format(after[key]):>12}")
    lines.append(f"speed-up (after/before requests/s): {report['speedup']}x")
    settings = report["settings"]
    assert isinstance(settings, dict)
    lines.append(
        f"{settings['database']}; {settings['concurrency']} clients for {settings['duration']}s; "
        f"{settings['threads']} server threads; pool size {settings['pool_size']}; "
        f"{settings['cpus']} CPUs; "
        f"endpoints: {', '.join(settings['endpoints'])}"
    )
    for label, side in (("before", before), ("after", after)):
        for sample in side["error_samples"]:
            lines.append(f"{label} error: {sample}")
    return "\n".join(lines)


@click.command("bench")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--duration", default=10.0, show_default=True, help="Seconds of load per side.")
@click.option("--concurrency", default=8, show_default=True, help="Keep-alive client threads.")
@click.option(
    "--endpoint",
    "endpoints",
    multiple=True,
    metavar="'METHOD /path [JSON]'",
    help="A request of the mix (repeatable); {user_id} and {job_id} are the seeded user and "
    f"job, {{n}} a unique number. Default: {', '.join(DEFAULT_ENDPOINTS)}.",
)
@click.option(
    "--auth",
    type=click.Choice(["trust", "scram"]),
    default="trust",
    show_default=True,
    help="Embedded server: trust over a Unix socket, or SCRAM passwords over TCP.",
)
@click.option("--database-url", help="Use this PostgreSQL server instead of an embedded one.")
@click.option("--app", default="app.py:app", show_default=True, help="WSGI app in PATH.")
@click.option(
    "--init",
    default="auto",
    show_default=True,
    help="What creates the schema: a script (file.py, run as __main__) or module:callable; "
    "auto runs PATH/db_init.py when there is one.",
)
@click.option("--threads", default=16, show_default=True, help="Server worker threads.")
@click.option(
    "--pool-size", default=10, show_default=True, help="DB_POOL_MAX_SIZE of the after side."
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@internal_errors_exit_2
def bench_command(
    path: Path,
    duration: float,
    concurrency: int,
    endpoints: tuple[str, ...],
    auth: str,
    database_url: str | None,
    app: str,
    init: str,
    threads: int,
    pool_size: int,
    fmt: str,
) -> int:
    """Serve PATH as it is and migrated, drive the same requests at both, compare.

    Prints requests/s, p50/p95/p99 latency, errors and PostgreSQL connections opened for
    both sides and the speed-up (after/before requests/s). Exit 1 when a request failed.
    """
    try:
        parsed = [Endpoint.parse(spec) for spec in endpoints or DEFAULT_ENDPOINTS]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--endpoint") from exc
    try:
        report = bench(
            path.resolve(),
            endpoints=parsed,
            database_url=database_url,
            auth=auth,
            app=app,
            init=init or None,
            threads=threads,
            duration=duration,
            concurrency=concurrency,
            pool_size=pool_size,
        )
    except (psycopg2.Error, PostgresUnavailable, RuntimeError) as exc:
        raise VerifyError(str(exc)) from exc
    click.echo(json.dumps(report, indent=2) if fmt == "json" else render_text(report))
    errors = [report[side]["errors"] for side in ("before", "after")]  # type: ignore[index]
    return 1 if any(errors) else 0
