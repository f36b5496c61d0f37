"""Serve a backend's WSGI app under cheroot's threaded server on loopback, for ``bench``.

Run as ``python -m claun_migrate.proof.wsgi_serve ROOT --app SPEC [--init SPEC] [--threads N]`` in
its own process: it imports the app from ROOT, runs the init step (the schema), prints
``PORT <n>`` on stdout and serves until terminated. Both sides of a benchmark use exactly
this server and these settings. cheroot rather than werkzeug's server because werkzeug closes
every connection after one response, and clients of a production server keep them alive.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import runpy
import signal
import sys
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


def main(argv: list[str] | None = None) -> None:
    """Load the app, run the init step, announce the port, serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--app", required=True, help="file.py:app or package:create_app()")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--init", help="run once before serving: a script file.py or module:func")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    os.chdir(root)
    sys.path.insert(0, str(root))
    port_channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stdout carries only the port line; the app's prints go to stderr
    sys.stdout = sys.stderr
    app = load(args.app, root)
    if args.init and ":" not in args.init:
        runpy.run_path(str(root / args.init), run_name="__main__")
    elif args.init:
        load(args.init.removesuffix("()") + "()", root)
    server = make_server(app, args.threads)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"PORT {server.bind_addr[1]}", file=port_channel, flush=True)
    port_channel.close()
    server.serve()


if __name__ == "__main__":
    main()
