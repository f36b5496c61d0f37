"""A throwaway PgBouncer in transaction pooling mode in front of a PostgreSQL server, for bench.

Needs the ``pgbouncer`` binary (Debian package ``pgbouncer``). PgBouncer refuses to run as
root, so as root it runs as the embedded server's system user. Clients reach it on a loopback
TCP port; it reaches the server as the server URL says (a Unix socket or TCP).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg2
import psycopg2.extensions

from claun_migrate.proof.pgserver import SYSTEM_USER

START_TIMEOUT = 30.0
CONFIG = """[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = {auth_type}
auth_file = {folder}/userlist.txt
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_db_connections = {pool_size}
max_client_conn = {max_clients}
ignore_startup_parameters = extra_float_digits
logfile = {folder}/pgbouncer.log
"""


class PgBouncerUnavailable(RuntimeError):
    """PgBouncer is not installed or did not start."""


def find_pgbouncer() -> str | None:
    """The pgbouncer binary on PATH or in the sbin folders Debian installs it to."""
    found = shutil.which("pgbouncer")
    for candidate in (found, "/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgBouncer:
    """PgBouncer at ``127.0.0.1:port`` pooling at most ``pool_size`` server connections per db."""

    def __init__(self, server_url: str, *, pool_size: int, max_clients: int = 1000) -> None:
        self.server = psycopg2.extensions.parse_dsn(server_url)
        self.pool_size = pool_size
        self.max_clients = max_clients
        self.port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._folder: Path | None = None

    def url(self, database_url: str) -> str:
        """``database_url``'s database, reached through this PgBouncer."""
        dbname = psycopg2.extensions.parse_dsn(database_url)["dbname"]
        user = quote(self.server.get("user", "postgres"))
        password = self.server.get("password")
        auth = f"{user}:{quote(password)}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    @property
    def pid(self) -> int | None:
        """The PgBouncer process's id while it runs."""
        return self._proc.pid if self._proc else None

    def start(self) -> PgBouncer:
        binary = find_pgbouncer()
        if binary is None:
            raise PgBouncerUnavailable(
                "pgbouncer is not installed (Debian: apt-get install pgbouncer)"
            )
        folder = self._folder = Path(tempfile.mkdtemp(prefix="claun-pgbouncer-"))
        user = self.server.get("user", "postgres")
        password = self.server.get("password", "")
        (folder / "userlist.txt").write_text(f'"{user}" "{password}"\n')
        config = CONFIG.format(
            host=self.server.get("host", "127.0.0.1"),
            port=self.server.get("port", "5432"),
            listen_port=self.port,
            auth_type="scram-sha-256" if password else "trust",
            folder=folder,
            pool_size=self.pool_size,
            max_clients=self.max_clients,
        )
        (folder / "pgbouncer.ini").write_text(config)
        run_as = SYSTEM_USER if os.geteuid() == 0 else None
        if run_as:
            for path in (folder, *folder.iterdir()):
                shutil.chown(path, user=run_as)
        self._proc = subprocess.Popen(
            [binary, str(folder / "pgbouncer.ini")],
            user=run_as,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=folder,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                psycopg2.connect(self.url("postgresql:///postgres")).close()
                return
            except psycopg2.OperationalError as exc:
                assert self._proc is not None and self._folder is not None
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    log = self._folder / "pgbouncer.log"
                    tail = log.read_text()[-2000:] if log.exists() else ""
                    self.stop()
                    raise PgBouncerUnavailable(f"pgbouncer did not start: {exc}\n{tail}") from exc
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop PgBouncer and delete its files."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


@contextlib.contextmanager
def pgbouncer(server_url: str, *, pool_size: int) -> Iterator[PgBouncer]:
    """A started PgBouncer in front of ``server_url``, stopped on exit."""
    bouncer = PgBouncer(server_url, pool_size=pool_size)
    try:
        yield bouncer.start()
    finally:
        bouncer.stop()
