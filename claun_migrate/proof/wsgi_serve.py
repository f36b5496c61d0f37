"""Load a backend's WSGI app for ``bench`` and serve it under cheroot's threaded server.

Run as ``python -m claun_migrate.proof.wsgi_serve ROOT --app SPEC [--init SPEC] [--threads N]`` in
its own process: it imports the app from ROOT, runs the init step (the schema), prints
``PORT <n>`` on stdout and serves until terminated. ``--init-only`` runs the init step and
exits (before gunicorn starts its workers). cheroot rather than werkzeug's server because
werkzeug closes every connection after one response, and clients of a production server keep
them alive. ``prepare`` is shared with the gunicorn entry module (``gunicorn_serve``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import runpy
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from cheroot import wsgi


def make_server(app: Any, threads: int = 16) -> wsgi.Server:
    """A threaded HTTP/1.1 keep-alive server for ``app`` on a free loopback port, bound."""
    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=threads)
    server.prepare()
    return server


def load(spec: str, root: Path) -> Any:
    """Resolve ``module:attr``, ``file.py:attr`` (loaded by path) or either with ``attr()``."""
    target, _, attr = spec.partition(":")
    call = attr.endswith("()")
    attr = attr.removesuffix("()")
    if target.endswith(".py"):
        # loaded under another name: backend/app.py sits beside the package backend/app/
        module_spec = importlib.util.spec_from_file_location("claun_served_app", root / target)
        assert module_spec and module_spec.loader, f"cannot load {target}"
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    obj = getattr(module, attr)
    return obj() if call else obj


def run_init(init: str, root: Path) -> None:
    """Run the init step: a script ``file.py`` as ``__main__``, or ``module:func``."""
    if ":" not in init:
        runpy.run_path(str(root / init), run_name="__main__")
    else:
        load(init.removesuffix("()") + "()", root)


def use_persistent_connections(root: Path) -> int:
    """Make every shipped pool under ``root`` hand each thread one persistent connection.

    The physical limit ``bench`` compares the pool with: no lock, no liveness poll, no
    checkout bookkeeping, a connection per thread kept for the process's life. The pool's
    class is patched, so whatever name the backend imported keeps working. Returns how many
    pool classes were patched (0: the backend has no shipped pool loaded).
    """
    import psycopg2
    import psycopg2.extensions

    local = threading.local()
    idle = psycopg2.extensions.TRANSACTION_STATUS_IDLE

    def getconn(self: Any, timeout: float | None = None) -> Any:
        conn = getattr(local, "conn", None)
        if conn is None or conn.closed:
            conn = local.conn = psycopg2.connect(self.dsn, **self.connect_kwargs)
            self._out[id(conn)] = (conn, 0.0)  # the runtime's putconn(conn) finds its pool here
        return conn

    def putconn(self: Any, conn: Any, close: bool = False) -> None:
        if not conn.closed and conn.get_transaction_status() != idle:
            conn.rollback()

    patched = 0
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        pool = getattr(module, "ConnectionPool", None)
        if path.startswith(str(root)) and isinstance(pool, type) and hasattr(pool, "getconn"):
            pool.getconn, pool.putconn = getconn, putconn  # type: ignore[attr-defined]
            patched += 1
    return patched


def prepare(root: Path, app_spec: str, init: str | None = None, persistent: bool = False) -> Any:
    """Import ``root``'s app (cwd and import path set to ``root``), run ``init``, return the app.

    ``persistent`` swaps the shipped pool for one persistent connection per thread; it is an
    error when no shipped pool is loaded.
    """
    root = root.resolve()
    os.chdir(root)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    app = load(app_spec, root)
    if persistent and not use_persistent_connections(root):
        raise RuntimeError(f"no shipped connection pool (ConnectionPool) is loaded from {root}")
    if init:
        run_init(init, root)
    return app


def main(argv: list[str] | None = None) -> None:
    """Load the app, run the init step, announce the port, serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--app", required=True, help="file.py:app or package:create_app()")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--init", help="run once before serving: a script file.py or module:func")
    parser.add_argument("--init-only", action="store_true", help="run the init step and exit")
    parser.add_argument(
        "--persistent", action="store_true", help="one persistent connection per thread, no pool"
    )
    args = parser.parse_args(argv)
    port_channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stdout carries only the port line; the app's prints go to stderr
    sys.stdout = sys.stderr
    app = prepare(args.root, args.app, args.init, args.persistent)
    if args.init_only:
        return
    server = make_server(app, args.threads)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"PORT {server.bind_addr[1]}", file=port_channel, flush=True)
    port_channel.close()
    server.serve()


if __name__ == "__main__":
    main()
