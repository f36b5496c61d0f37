"""Drive register, login and profile on a real exported backend, legacy and migrated.

Copies BACKEND (the folder holding ``app.py`` beside the ``app/`` package, e.g. an export of
ClaunNetworking's ``backend/``) to a temporary folder; with ``--apply`` also migrates a second
copy with ``claun-migrate apply`` and reports its exit code. Then, for each database
(PostgreSQL: an embedded server, ``DATABASE_URL`` set to a fresh database; SQLite:
``DATABASE_URL`` unset) and each side, a subprocess with the copy on ``sys.path`` loads
``app.py`` by path (``import app`` would get the package), creates the tables (the data
layer's ``init_database()``), and through Flask's test client posts ``/api/register``
(expects 201), ``/api/login`` (200) and gets ``/api/profile`` with the session (200). It
prints one row per database and side, with what the backend printed or raised.

It reports, it does not assert. Exit 0 when every status was the expected one, 1 when one
differs (or the app does not load), 2 on a setup error (no app.py, a backend dependency not
installed, no PostgreSQL).

Run: ``python benchmarks/real_backend.py BACKEND [--apply] [--db postgresql,sqlite]
[--tool claun-migrate] [--python PYTHON]`` (``--python``: an interpreter that has the
backend's dependencies, e.g. a throwaway venv; default: this one).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

STEPS = [("register", "POST", 201), ("login", "POST", 200), ("profile", "GET", 200)]
DEFAULT_PATHS = {"register": "/api/register", "login": "/api/login", "profile": "/api/profile"}
LOG_PREFIX = re.compile(r"^\[[^\]]*\] ")
SETUP_ERROR = "setup"
DATABASES = ("postgresql", "sqlite")


# ---- child side: runs inside the backend's interpreter, imports nothing of claun_migrate ----


def _flask_app(module: object) -> object:
    """The Flask application a module defines, or the one its ``create_app()`` builds."""
    from flask import Flask

    for value in vars(module).values():
        if isinstance(value, Flask):
            return value
    factory = getattr(module, "create_app", None)
    if callable(factory):
        return factory()
    raise LookupError("no Flask application and no create_app() in the entry module")


def _init_function(module: object, backend: Path) -> object | None:
    """``init_database``/``init_db`` of the module the entry's data functions come from."""
    names = ("init_database", "init_db")
    owners = [sys.modules.get(getattr(v, "__module__", "") or "") for v in vars(module).values()]
    loaded = [m for m in list(sys.modules.values()) if m is not None]
    for candidate in [module, *owners, *loaded]:
        path = getattr(candidate, "__file__", None)
        if candidate is None or not path or backend not in Path(path).resolve().parents:
            continue
        for name in names:
            if callable(getattr(candidate, name, None)):
                return getattr(candidate, name)
    return None


def _missing_dependency(exc: BaseException, backend: Path) -> str | None:
    """The name of a third-party module that is not installed, if that is what ``exc`` is."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    if (backend / top).exists() or (backend / f"{top}.py").exists():
        return None  # a module of the backend itself: the migration's business, not setup
    return exc.name


def child(backend: Path, entry: str, paths: dict[str, str]) -> dict:
    """Load the backend and drive the three requests; return what happened."""
    result: dict = {"steps": {}, "load": "", "init": "", "profile_json": ""}
    sys.path.insert(0, str(backend))
    os.chdir(backend)
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            spec = importlib.util.spec_from_file_location("backend_entry", backend / entry)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            app = _flask_app(module)
    except Exception as exc:  # the report names it; the parent decides the exit code
        missing = _missing_dependency(exc, backend)
        result["load"] = f"{type(exc).__name__}: {exc}"
        result["missing"] = missing
        return result
    from flask import got_request_exception

    raised: list[str] = []
    got_request_exception.connect(lambda sender, exception, **_: raised.append(repr(exception)))
    app.config["PROPAGATE_EXCEPTIONS"] = False
    init = _init_function(module, backend.resolve())
    output = io.StringIO()
    if init is None:
        result["init"] = "no init_database()/init_db() found"
    else:
        try:
            quiet = contextlib.redirect_stdout(output), contextlib.redirect_stderr(output)
            with quiet[0], quiet[1], app.app_context():
                init()
        except Exception as exc:
            result["init"] = f"{type(exc).__name__}: {exc}"
    user = {
        "email": f"probe-{secrets.token_hex(4)}@example.com",
        "password": "probe-password-1",
        "name": "Probe User",
        "user_type": "candidate",
        "phone": "",
    }
    client = app.test_client()
    headers: dict[str, str] = {}
    for name, method, _ in STEPS:
        output = io.StringIO()
        raised.clear()
        body = None if method == "GET" else user
        try:
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                response = client.open(
                    paths[name],
                    method=method,
                    json=body,
                    headers=headers,
                    base_url="https://localhost",  # HTTPS-forcing middleware would redirect http
                )
            status = response.status_code
            token = (response.get_json(silent=True) or {}).get("token")
            if isinstance(token, str):  # token-based backends: send it as a bearer token
                headers = {"Authorization": f"Bearer {token}"}
            if name == "profile" and status == 200:
                result["profile_json"] = response.get_data(as_text=True).strip()[:300]
        except Exception as exc:
            status = None
            raised.append("".join(traceback.format_exception_only(exc)).strip())
        printed = [LOG_PREFIX.sub("", x) for x in output.getvalue().splitlines() if x.strip()]
        result["steps"][name] = {"status": status, "detail": "; ".join(raised + printed[-2:])}
    return result


# ---- parent side ----


def run_side(
    python: str, backend: Path, entry: str, paths: dict[str, str], url: str | None
) -> dict:
    """Run the child on one copy with one database; return its result."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.setdefault("SECRET_KEY", secrets.token_hex(16))
    if url:
        env["DATABASE_URL"] = url
    done = subprocess.run(
        [
            python,
            str(Path(__file__).resolve()),
            *("--child", str(backend), "--entry", entry),
            *[f"--{name}={path}" for name, path in paths.items()],
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"steps": {}, "load": "child failed: " + " | ".join(tail), "init": ""}


def copy_backend(backend: Path, target: Path) -> Path:
    ignore = shutil.ignore_patterns(".git", "__pycache__", ".venv", "venv", "node_modules")
    shutil.copytree(backend, target, ignore=ignore)
    return target


def print_rows(rows: list[tuple[str, str, dict]]) -> bool:
    """Print the table; return whether every status was the expected one."""
    all_expected = True
    header = ["database", "side", *[f"{n} ({e})" for n, _, e in STEPS], "notes"]
    lines = [header]
    for database, side, result in rows:
        cells, notes = [database, side], []
        if result.get("load"):
            notes.append(f"load: {result['load']}")
        if result.get("init"):
            notes.append(f"init: {result['init']}")
        for name, _, expected in STEPS:
            step = result.get("steps", {}).get(name)
            status = step["status"] if step else None
            cells.append("-" if status is None else str(status))
            all_expected &= status == expected
            if step and status != expected and step["detail"]:
                notes.append(f"{name}: {step['detail']}")
        if result.get("profile_json"):
            notes.append(f"profile: {result['profile_json'][:120]}")
        cells.append(" || ".join(notes))
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    for n, line in enumerate(lines):
        fixed = [c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)]
        print(" | ".join([*fixed, line[-1]]))
        if n == 0:
            print("-+-".join("-" * w for w in widths) + "-+------")
    return all_expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", type=Path, help="folder holding app.py and the app/ package")
    parser.add_argument("--apply", action="store_true", help="also migrate a copy and drive it")
    parser.add_argument("--db", default=",".join(DATABASES), help="postgresql,sqlite (default)")
    parser.add_argument("--tool", default="claun-migrate", help="the claun-migrate executable")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the backend")
    parser.add_argument("--entry", default="app.py", help="the file defining the Flask app")
    for name, path in DEFAULT_PATHS.items():
        parser.add_argument(f"--{name}", default=path, help=f"{name} URL (default {path})")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    paths = {name: getattr(args, name) for name in DEFAULT_PATHS}
    if args.child:
        print(json.dumps(child(args.backend, args.entry, paths)))
        return 0
    if not (args.backend / args.entry).is_file():
        print(f"real_backend: {args.backend / args.entry}: no such file", file=sys.stderr)
        return 2
    databases = [d.strip() for d in args.db.split(",") if d.strip()]
    unknown = sorted(set(databases) - set(DATABASES))
    if unknown or not databases:
        print(f"real_backend: --db takes {', '.join(DATABASES)}, not {unknown}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="real-backend-") as tmp:
        sides = {"legacy": copy_backend(args.backend, Path(tmp, "legacy"))}
        if args.apply:
            tool = shutil.which(args.tool)
            if tool is None:
                print(f"real_backend: {args.tool}: executable not found", file=sys.stderr)
                return 2
            migrated = copy_backend(args.backend, Path(tmp, "migrated"))
            env = {**os.environ, "CLAUN_MIGRATE_CACHE_DIR": str(Path(tmp, "cache"))}
            done = subprocess.run([tool, "apply", str(migrated)], capture_output=True, env=env)
            summary = done.stdout.decode(errors="replace").strip().splitlines()[-1:]
            print(f"claun-migrate apply: exit {done.returncode}  {' '.join(summary)}")
            sides["migrated"] = migrated
        rows = []
        with contextlib.ExitStack() as stack:
            server_url = None
            if "postgresql" in databases:
                try:
                    from claun_migrate.proof.pgserver import create_database, postgres_server

                    server_url = stack.enter_context(
                        postgres_server(os.environ.get("CLAUN_TEST_DATABASE_URL"))
                    )
                except Exception as exc:
                    print(f"real_backend: no PostgreSQL: {exc}", file=sys.stderr)
                    return 2
            for database in databases:
                for side, copy in sides.items():
                    url = create_database(server_url) if database == "postgresql" else None
                    result = run_side(args.python, copy, args.entry, paths, url)
                    if result.get("missing"):
                        print(
                            f"real_backend: the backend needs {result['missing']!r}, which is not "
                            f"installed for {args.python} (pip install it, or pass --python)",
                            file=sys.stderr,
                        )
                        return 2
                    rows.append((database, side, result))
        return 0 if print_rows(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
