"""Measure a migration: serve the code before and after it and drive the same load at both.

Each side runs under the same app server on loopback (gunicorn prefork workers with threads,
or cheroot threads in one process), against its own fresh database on the same PostgreSQL
server; all sides are up at once and take turns under load. Besides legacy and migrated, the
migrated code runs under gunicorn ``--preload`` (its pool built before the fork), with one
persistent connection per thread instead of the pool (the physical limit), and behind
PgBouncer in transaction mode. Connections opened come from ``pg_stat_database.sessions``;
the peak of server connections from polling ``pg_stat_activity`` while a side is up.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import psycopg2

from claun_migrate.cli.exits import internal_errors_exit_2
from claun_migrate.proof import cputime
from claun_migrate.proof.gunicorn_serve import gunicorn_available, gunicorn_server
from claun_migrate.proof.loadgen import Endpoint, LoadResult, run_load, send
from claun_migrate.proof.pgbouncer import PgBouncer, PgBouncerUnavailable, pgbouncer
from claun_migrate.proof.pgserver import (
    PostgresUnavailable,
    create_database,
    drop_database,
    postgres_server,
)
from claun_migrate.proof.verify import VerifyError, copy_tree, migrate_tree, suite_env
from claun_migrate.proof.wsgi_serve import use_persistent_connections

DEFAULT_ENDPOINTS = (
    "GET /api/profile",
    "GET /api/users/{user_id}",
    "GET /api/jobs",
    "GET /api/jobs/{job_id}",
    "GET /api/stats",
)
START_TIMEOUT = 120.0
COOL_DOWN = 0.3  # seconds between two sides' turns, for what the last one left to settle
BENCH_CANDIDATE = {"email": "candidate@bench.example", "user_type": "candidate"}
BENCH_COMPANY = {"email": "company@bench.example", "user_type": "company"}
BENCH_JOB = {"title": "Engineer", "description": "Benchmarks", "location": "Remote"}
SIDE_TITLES = {
    "before": "before",
    "after": "after",
    "after_preload": "after+preload",
    "limit": "persistent",
    "pgbouncer": "pgbouncer",
}


@dataclass(frozen=True)
class Serving:
    """How a side is served: the app, the server and its sizes, the pool size."""

    app: str
    init: str | None
    server: str
    workers: int
    threads: int
    pool_size: int


@dataclass(frozen=True)
class Side:
    """One configuration measured: which tree and how it reaches the database."""

    label: str
    tree: str
    preload: bool = False
    persistent: bool = False
    pgbouncer: bool = False
    instances: int = 1


@dataclass
class SideResult:
    """What one side of the benchmark measured."""

    load: LoadResult
    connections: int
    peak: int
    cpu: tuple[float, float] | None = None  # seconds: app servers, database (+ PgBouncer)

    def cpu_ms_per_request(self) -> tuple[float, float] | None:
        """App and database CPU milliseconds per request (the warm-up requests count too)."""
        sent = self.load.requests + self.load.warmup_requests
        if self.cpu is None or not sent:
            return None
        return self.cpu[0] * 1000 / sent, self.cpu[1] * 1000 / sent

    def to_dict(self) -> dict[str, object]:
        cpu = self.cpu_ms_per_request()
        return {
            **self.load.to_dict(),
            "connections_opened": self.connections,
            "peak_server_connections": self.peak,
            "app_cpu_ms_per_request": round(cpu[0], 3) if cpu else None,
            "db_cpu_ms_per_request": round(cpu[1], 3) if cpu else None,
        }


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
def peak_connections(server_url: str, interval: float = 0.02) -> Iterator[dict[str, int]]:
    """Poll the client connections per database until exit; yield the peaks, by database.

    One query for all databases, so the polling costs the server the same whatever the
    number of sides.
    """
    conn = psycopg2.connect(server_url)
    conn.autocommit = True  # a fresh pg_stat_activity snapshot at every poll
    peaks: dict[str, int] = {}
    stop = threading.Event()

    def poll() -> None:
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute(
                    "SELECT datname, count(*) FROM pg_stat_activity "
                    "WHERE backend_type = 'client backend' GROUP BY datname"
                )
                for dbname, count in cur.fetchall():
                    peaks[dbname] = max(peaks.get(dbname, 0), count)
                stop.wait(interval)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        stop.set()
        thread.join()
        conn.close()


@contextlib.contextmanager
def serve(
    root: Path, env: dict[str, str], app: str, init: str | None, threads: int, persistent: bool
) -> Iterator[tuple[int, int]]:
    """Start ``root``'s app in a wsgi_serve (cheroot) subprocess, yield its port and process
    id, stop it."""
    command = [sys.executable, "-m", "claun_migrate.proof.wsgi_serve", str(root), "--app", app]
    command += ["--threads", str(threads)]
    command += ["--init", init] if init else []
    command += ["--persistent"] if persistent else []
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
            yield int(line.split()[1]), proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def serve_side(
    root: Path, env: dict[str, str], side: Side, serving: Serving
) -> Iterator[list[tuple[int, int]]]:
    """Start ``side.instances`` servers for ``root`` (the first creates the schema); yield
    their ports and process ids."""
    with contextlib.ExitStack() as stack:
        served = []
        for instance in range(side.instances):
            init = serving.init if instance == 0 else None
            if serving.server == "gunicorn":
                server = gunicorn_server(
                    root,
                    env,
                    app=serving.app,
                    init=init,
                    workers=serving.workers,
                    threads=serving.threads,
                    preload=side.preload,
                    persistent=side.persistent,
                )
            else:
                server = serve(root, env, serving.app, init, serving.threads, side.persistent)
            served.append(stack.enter_context(server))
        yield served


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


def turns(labels: list[str], rounds: int) -> list[str]:
    """The order the sides take turns in: each round rotated by one, every other one reversed.

    Each side then runs at every position and after different sides, so what a side leaves
    behind (the legacy side's exiting backends) does not always fall on the same next side.
    """
    order = []
    for turn in range(rounds):
        rotated = labels[turn % len(labels) :] + labels[: turn % len(labels)]
        order += rotated[::-1] if turn % 2 else rotated
    return order


@dataclass
class _Running:
    """A side whose servers are up: where to send its load and what it measured so far."""

    dbname: str
    opened_before: int
    servers: contextlib.ExitStack
    served: list[tuple[int, int]]
    mix: list[Endpoint]
    headers: dict[str, str]
    load: LoadResult
    extra_pids: list[int]
    app_cpu: float = 0.0
    db_cpu: float = 0.0


class _CpuProbe:
    """CPU seconds a side's app servers and database processes spend, when all are local."""

    def __init__(self, server_url: str) -> None:
        self.conn = psycopg2.connect(server_url)
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backend = cur.fetchone()[0]
        local = cputime.available() and cputime.is_postgres(backend)
        self.postmaster = cputime.parent_pid(backend) if local else None

    def snapshot(self, side: _Running) -> tuple[float, dict[int, float]]:
        """App CPU, and CPU by database process (the postmaster's includes exited backends)."""
        app = sum(cputime.tree_cpu(pid) for _, pid in side.served)
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = %s AND backend_type = 'client backend'",
                (side.dbname,),
            )
            db = {pid: cputime.process_cpu(pid) for (pid,) in cur.fetchall()}
        for pid in side.extra_pids:
            db[pid] = cputime.process_cpu(pid, reaped_children=True)
        return app, db

    def add(self, side: _Running, before: tuple[float, dict[int, float]]) -> None:
        """Count the CPU spent since ``before`` into ``side``."""
        app, db = self.snapshot(side)
        side.app_cpu += app - before[0]
        side.db_cpu += sum(cpu - before[1].get(pid, 0.0) for pid, cpu in db.items())


def run_sides(
    trees: dict[str, Path],
    server_url: str,
    endpoints: Sequence[Endpoint],
    sides: Sequence[Side],
    serving: Serving,
    *,
    duration: float,
    concurrency: int,
    rounds: int = 1,
    bouncer: PgBouncer | None = None,
) -> dict[str, SideResult]:
    """Serve every side at once, each on a fresh database; drive them in turn; count.

    The load runs in ``rounds`` rounds of ``duration / rounds`` seconds per side (``turns``),
    so that a change in the machine's background load falls on all sides alike instead of on
    whichever side ran at the time. Around each turn the CPU time of the side's server
    processes and database processes is read (when the server is local).
    """
    with contextlib.ExitStack() as stack:
        probe = _CpuProbe(server_url)
        stack.callback(probe.conn.close)
        peaks = stack.enter_context(peak_connections(server_url))
        running: dict[str, _Running] = {}
        for side in sides:
            database_url = create_database(server_url)
            stack.callback(drop_database, database_url)
            dbname = urlsplit(database_url).path.lstrip("/")
            url = bouncer.url(database_url) if side.pgbouncer and bouncer else database_url
            env = suite_env({"DATABASE_URL": url, "DB_POOL_MAX_SIZE": str(serving.pool_size)})
            opened_before = sessions(server_url, dbname)
            servers = stack.enter_context(contextlib.ExitStack())
            served = servers.enter_context(serve_side(trees[side.tree], env, side, serving))
            headers, values = seed(served[0][0])
            mix = [Endpoint(e.method, e.path.format_map(_Keep(values)), e.body) for e in endpoints]
            extra = [probe.postmaster] if probe.postmaster else []
            extra += [bouncer.pid] if side.pgbouncer and bouncer and bouncer.pid else []
            running[side.label] = _Running(
                dbname, opened_before, servers, served, mix, headers, LoadResult(0.0), extra
            )
        for label in turns(list(running), rounds):
            time.sleep(COOL_DOWN)
            side = running[label]
            before = probe.snapshot(side)
            side.load.add(
                run_load(
                    "127.0.0.1",
                    [port for port, _ in side.served],
                    side.mix,
                    duration=duration / rounds,
                    concurrency=concurrency,
                    headers=side.headers,
                )
            )
            probe.add(side, before)
        for side in running.values():
            side.servers.close()
        measured = probe.postmaster is not None
        return {
            label: SideResult(
                side.load,
                settled_sessions(server_url, side.dbname) - side.opened_before,
                peaks.get(side.dbname, 0),
                (side.app_cpu, side.db_cpu) if measured else None,
            )
            for label, side in running.items()
        }


class _Keep(dict[str, str]):
    """format_map values that leave unknown ``{names}`` (such as ``{n}``) in place."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def checkout_cost(root: Path, server_url: str, calls: int = 5000) -> tuple[float, float] | None:
    """CPU microseconds of one checkout and return: ``root``'s shipped pool, then the same
    pool with a persistent connection per thread. None when ``root`` ships no pool.

    Measured in this process, in a tight loop: unlike requests/s it hardly moves with the
    machine's load, so it bounds the pool's share of a request's CPU.
    """
    found = sorted(root.rglob("db_pool.py"))
    if not found:
        return None
    name = f"claun_bench_pool_{os.getpid()}"
    spec = importlib.util.spec_from_file_location(name, found[0])
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        costs = []
        for persistent in (False, True):
            if persistent:
                use_persistent_connections(found[0].parent)
            pool = module.ConnectionPool(server_url, min_size=1, max_size=1)
            start = time.process_time()
            for _ in range(calls):
                pool.putconn(pool.getconn())
            costs.append((time.process_time() - start) / calls * 1e6)
            pool.getconn().close()
            pool.close()
        return costs[0], costs[1]
    finally:
        del sys.modules[name]


def plan_sides(
    server: str, *, preload: bool, limit: bool, with_pgbouncer: bool, instances: int
) -> list[Side]:
    """The sides to measure, in order: legacy, migrated, then the variants asked for."""
    sides = [Side("before", "before"), Side("after", "after")]
    if preload and server == "gunicorn":
        sides.append(Side("after_preload", "after", preload=True))
    if limit:
        sides.append(Side("limit", "after", persistent=True))
    if with_pgbouncer:
        sides.append(Side("pgbouncer", "after", pgbouncer=True, instances=instances))
    return sides


def default_server() -> str:
    """gunicorn where it is installed, else cheroot."""
    return "gunicorn" if gunicorn_available() else "cheroot"


def bench(
    path: Path,
    *,
    migrate: Callable[[Path], object] = migrate_tree,
    endpoints: Sequence[Endpoint] = tuple(Endpoint.parse(e) for e in DEFAULT_ENDPOINTS),
    database_url: str | None = None,
    auth: str = "trust",
    app: str = "app.py:app",
    init: str | None = "auto",
    server: str | None = None,
    workers: int = 4,
    threads: int | None = None,
    duration: float = 10.0,
    concurrency: int = 8,
    pool_size: int | None = None,
    preload: bool = True,
    limit: bool = True,
    with_pgbouncer: bool = False,
    pgbouncer_pool_size: int = 4,
    instances: int = 2,
    rounds: int = 10,
) -> dict[str, object]:
    """Benchmark ``path`` as it is against a migrated copy; return the JSON-ready report.

    ``threads`` defaults to 4 per gunicorn worker, 16 under cheroot; ``pool_size`` (the
    migrated pool's ``DB_POOL_MAX_SIZE``, per process) to ``threads``.
    """
    server = server or default_server()
    workers = workers if server == "gunicorn" else 1
    threads = threads or (4 if server == "gunicorn" else 16)
    if init == "auto":
        init = "db_init.py" if (path / "db_init.py").exists() else None
    serving = Serving(app, init, server, workers, threads, pool_size or threads)
    sides = plan_sides(
        server, preload=preload, limit=limit, with_pgbouncer=with_pgbouncer, instances=instances
    )
    load = {"duration": duration, "concurrency": concurrency, "rounds": rounds}
    with tempfile.TemporaryDirectory(prefix="claun-bench-") as work:
        trees = {
            "before": copy_tree(path, Path(work) / "before" / path.name),
            "after": copy_tree(path, Path(work) / "after" / path.name),
        }
        migrate(trees["after"])
        with (
            postgres_server(database_url, auth=auth, max_connections=300) as server_url,
            contextlib.ExitStack() as stack,
        ):
            bouncer = None
            if with_pgbouncer:
                bouncer = stack.enter_context(pgbouncer(server_url, pool_size=pgbouncer_pool_size))
            results = run_sides(
                trees, server_url, endpoints, sides, serving, **load, bouncer=bouncer
            )
            costs = checkout_cost(trees["after"], server_url) if limit else None
    report: dict[str, object] = {label: result.to_dict() for label, result in results.items()}
    rate = {label: result.load.requests_per_second for label, result in results.items()}
    report["speedup"] = round(rate["after"] / rate["before"], 2) if rate["before"] else None
    cpu_before, cpu_after = (results[label].cpu_ms_per_request() for label in ("before", "after"))
    if cpu_before and cpu_after:
        report["cpu_speedup"] = round(sum(cpu_before) / sum(cpu_after), 2)
    if "limit" in rate:
        report["limit_ratio"] = round(rate["after"] / rate["limit"], 3) if rate["limit"] else None
        cpu = {label: results[label].cpu_ms_per_request() for label in ("after", "limit")}
        if cpu["after"] and cpu["limit"]:
            report["limit_cpu_ratio"] = round(sum(cpu["after"]) / sum(cpu["limit"]), 3)
    legacy = results["before"].load
    cpu_after = results["after"].cpu_ms_per_request()
    if costs and cpu_after and legacy.requests:
        # the legacy code opens one connection per data-layer call
        calls = results["before"].connections / (legacy.requests + legacy.warmup_requests)
        extra = costs[0] - costs[1]
        report["pool_checkout_us"] = {"pool": round(costs[0], 2), "persistent": round(costs[1], 2)}
        report["calls_per_request"] = round(calls, 2)
        report["pool_share_of_request_cpu"] = round(extra * calls / (sum(cpu_after) * 1000), 4)
    if "after_preload" in rate and rate["after"]:
        report["preload_ratio"] = round(rate["after_preload"] / rate["after"], 3)
    report["server_connection_bound"] = serving.workers * serving.pool_size
    report["settings"] = {
        **{key: value for key, value in vars(serving).items()},
        **load,
        "sides": [side.label for side in sides],
        "endpoints": [str(e) for e in endpoints],
        "database": "given URL" if database_url else f"embedded PostgreSQL, auth={auth}",
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if with_pgbouncer:
        report["pgbouncer_pool_size"] = pgbouncer_pool_size
        report["settings"]["pgbouncer_instances"] = instances  # type: ignore[index]
    return report


ROWS = (
    ("requests/s", "requests_per_second", "{:.1f}"),
    ("p50 latency ms", "p50_ms", "{:.2f}"),
    ("p95 latency ms", "p95_ms", "{:.2f}"),
    ("p99 latency ms", "p99_ms", "{:.2f}"),
    ("requests", "requests", "{}"),
    ("errors", "errors", "{}"),
    ("connections opened", "connections_opened", "{}"),
    ("peak server conns", "peak_server_connections", "{}"),
    ("app CPU ms/request", "app_cpu_ms_per_request", "{:.2f}"),
    ("db CPU ms/request", "db_cpu_ms_per_request", "{:.2f}"),
)


def render_text(report: dict[str, Any]) -> str:
    """The sides in columns, then the ratios, the connection bounds and the settings."""
    settings = report["settings"]
    labels = settings["sides"]
    lines = [f"{'':<20}" + "".join(f"{SIDE_TITLES[label]:>15}" for label in labels)]
    for title, key, fmt in ROWS:
        values = [report[label][key] for label in labels]
        cells = "".join(f"{'-' if v is None else fmt.format(v):>15}" for v in values)
        lines.append(f"{title:<20}{cells}")
    lines.append(f"speed-up (after/before requests/s): {report['speedup']}x")
    if "cpu_speedup" in report:
        lines.append(f"CPU per request (app + database), before/after: {report['cpu_speedup']}x")
    if "limit_ratio" in report:
        lines.append(
            f"after/persistent requests/s: {report['limit_ratio']} (the pool against one "
            "persistent connection per server thread, no pool)"
        )
    if "limit_cpu_ratio" in report:
        lines.append(
            f"after/persistent CPU per request (app + database): {report['limit_cpu_ratio']}"
        )
    if "pool_share_of_request_cpu" in report:
        cost = report["pool_checkout_us"]
        lines.append(
            f"pool checkout+return: {cost['pool']} us CPU, persistent connection "
            f"{cost['persistent']} us (in-process); at {report['calls_per_request']} data-layer "
            f"calls per request that is {report['pool_share_of_request_cpu']:.2%} of the "
            "migrated side's CPU per request"
        )
    if "preload_ratio" in report:
        lines.append(
            f"after+preload/after requests/s: {report['preload_ratio']} (the same code served "
            "twice: how far the machine's noise moves a ratio)"
        )
    bound = report["server_connection_bound"]
    peaks = ", ".join(
        f"{SIDE_TITLES[label]} {report[label]['peak_server_connections']}"
        for label in labels
        if label in ("after", "after_preload")
    )
    lines.append(
        f"peak server connections: {peaks}; bound workers x max_size = "
        f"{settings['workers']} x {settings['pool_size']} = {bound}"
        + (
            " (under --preload, plus what the master opened before the fork and keeps: here "
            "the init step's connection)"
            if "after_preload" in labels
            else ""
        )
    )
    if "pgbouncer" in report:
        side = report["pgbouncer"]
        clients = settings["pgbouncer_instances"] * bound
        lines.append(
            f"through PgBouncer (transaction mode, pool size {report['pgbouncer_pool_size']}; "
            f"{settings['pgbouncer_instances']} {settings['server']} servers, up to {clients} "
            f"client connections): peak server connections {side['peak_server_connections']}, "
            f"errors {side['errors']}"
        )
    workers = f"{settings['workers']} workers x " if settings["server"] == "gunicorn" else ""
    lines.append(
        f"{settings['database']}; {settings['server']} {workers}{settings['threads']} threads; "
        f"pool max_size {settings['pool_size']}; {settings['concurrency']} clients for "
        f"{settings['duration']}s per side in {settings['rounds']} rounds taking turns; "
        f"{settings['cpus']} CPUs, load average "
        f"{settings['load_average']} at the end; endpoints: {', '.join(settings['endpoints'])}"
    )
    for label in labels:
        for sample in report[label]["error_samples"]:
            lines.append(f"{SIDE_TITLES[label]} error: {sample}")
    return "\n".join(lines)


@click.command("bench")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--duration", default=10.0, show_default=True, help="Seconds of load per side.")
@click.option("--concurrency", default=8, show_default=True, help="Keep-alive client threads.")
@click.option(
    "--rounds",
    default=10,
    show_default=True,
    help="Split each side's load into this many rounds, the sides taking turns.",
)
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
@click.option(
    "--server",
    type=click.Choice(["gunicorn", "cheroot"]),
    help="App server: gunicorn prefork workers (default where installed) or cheroot threads "
    "in one process.",
)
@click.option("--workers", default=4, show_default=True, help="gunicorn worker processes.")
@click.option(
    "--threads", type=int, help="Threads per server process [default: 4 gunicorn, 16 cheroot]."
)
@click.option(
    "--pool-size",
    type=int,
    help="DB_POOL_MAX_SIZE of the migrated pool, per process [default: --threads].",
)
@click.option(
    "--preload/--no-preload",
    default=True,
    show_default=True,
    help="Also serve the migrated code under gunicorn --preload (pool built before the fork).",
)
@click.option(
    "--limit/--no-limit",
    default=True,
    show_default=True,
    help="Also serve the migrated code with one persistent connection per thread, no pool.",
)
@click.option(
    "--pgbouncer",
    "with_pgbouncer",
    is_flag=True,
    help="Also serve the migrated code from several servers through PgBouncer (transaction "
    "pooling; needs the pgbouncer binary).",
)
@click.option(
    "--pgbouncer-pool-size", default=4, show_default=True, help="PgBouncer's server pool size."
)
@click.option(
    "--pgbouncer-servers",
    "instances",
    default=2,
    show_default=True,
    help="App servers behind PgBouncer.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@internal_errors_exit_2
def bench_command(
    path: Path,
    endpoints: tuple[str, ...],
    server: str | None,
    init: str,
    fmt: str,
    **options: Any,
) -> int:
    """Serve PATH as it is and migrated, drive the same requests at both, compare.

    Prints, per side, requests/s, p50/p95/p99 latency, errors, PostgreSQL connections opened
    and the peak of server connections, then the speed-up (after/before requests/s), the
    migrated pool against one persistent connection per thread, and the connection bounds.
    Exit 1 when a request failed.
    """
    if server == "gunicorn" and not gunicorn_available():
        raise click.UsageError("--server gunicorn: gunicorn is not installed (pip install it)")
    try:
        parsed = [Endpoint.parse(spec) for spec in endpoints or DEFAULT_ENDPOINTS]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--endpoint") from exc
    try:
        report = bench(
            path.resolve(), endpoints=parsed, server=server, init=init or None, **options
        )
    except (psycopg2.Error, PostgresUnavailable, PgBouncerUnavailable, RuntimeError) as exc:
        raise VerifyError(str(exc)) from exc
    click.echo(json.dumps(report, indent=2) if fmt == "json" else render_text(report))
    sides = report["settings"]["sides"]  # type: ignore[index]
    return 1 if any(report[side]["errors"] for side in sides) else 0  # type: ignore[index]
