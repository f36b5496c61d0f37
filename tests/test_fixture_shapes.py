"""The library shapes of the fixture (connectors and sites met in real backends), migrated by
the CLI on a copy of the fixture: what the pool codemod must have done to each new module, and
what it must block (the shapes of ``shapes_pending/library_blocked.py``, planted in the copy)."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixture_tools import BACKEND_DIR, FIXTURE_DIR

from claun_migrate.codemods.data_layer import analyse

BLOCKED = FIXTURE_DIR / "shapes_pending" / "library_blocked.py"
PENDING_CURSOR = FIXTURE_DIR / "shapes_pending" / "cursor_returned_inline.py"
BLOCKED_AT = "app/services/library_blocked.py"
POOL_ONLY = ("--select", "pool-connections", "--jobs", "1")
LIBRARY_MODULES = (
    "app/services/library_db.py",
    "app/services/library_links.py",
    "app/routes/library.py",
)


def cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "claun_migrate", *map(str, args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


@dataclass
class Run:
    backend: Path
    applied: dict
    check: subprocess.CompletedProcess[str]
    checked: dict

    def text(self, relative: str) -> str:
        return (self.backend / relative).read_text(encoding="utf-8")

    def pool_findings(self, report: dict) -> set[tuple[str, int, str]]:
        return {
            (Path(f["file"]).relative_to("backend").as_posix(), f["line"], f["code"])
            for f in report["findings"]
            if f["code"] in ("POOL001", "POOL002")
        }


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("shapes")
    backend = Path(
        shutil.copytree(BACKEND_DIR, root / "backend", ignore=shutil.ignore_patterns("__pycache__"))
    )
    shutil.copy(BLOCKED, backend / BLOCKED_AT)
    applied = cli("apply", *POOL_ONLY, "--no-cache", "--format", "json", "backend", cwd=root)
    assert applied.returncode == 0, applied.stderr
    check = cli("check", *POOL_ONLY, "--format", "json", "backend", cwd=root)
    return Run(backend, json.loads(applied.stdout), check, json.loads(check.stdout))


def _functions(source: str) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)}


def _calls(node: ast.AST, name: str) -> list[ast.Call]:
    return [
        c
        for c in ast.walk(node)
        if isinstance(c, ast.Call)
        and (getattr(c.func, "id", None) == name or getattr(c.func, "attr", None) == name)
    ]


def _puts_back_in_finally(function: ast.FunctionDef, var: str = "conn") -> int:
    """How many ``try`` blocks of ``function`` end with ``putconn(var)`` in ``finally``."""
    return sum(
        1
        for node in ast.walk(function)
        if isinstance(node, ast.Try)
        and any(
            isinstance(a, ast.Name) and a.id == var
            for s in node.finalbody
            for c in _calls(s, "putconn")
            for a in c.args
        )
    )


def test_no_new_module_keeps_a_driver_connect_or_a_close(run: Run) -> None:
    for relative in LIBRARY_MODULES:
        tree = ast.parse(run.text(relative))
        assert _calls(tree, "connect") == [], relative
        assert [c for c in _calls(tree, "close") if ast.unparse(c) == "conn.close()"] == []
        assert "import psycopg2\n" not in run.text(relative), relative


def test_keyword_connector_borrows_with_its_arguments_and_its_cursor_factory(run: Run) -> None:
    source = run.text("app/services/library_db.py")
    assert "from .db_pool import getconn, putconn\n" in source
    assert "from .db_sqlite import get_db, sql_for\n" in source
    (call,) = _calls(_functions(source)["open_library"], "getconn")
    keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
    assert keywords.pop("cursor_factory") == "RealDictCursor"
    assert keywords == {
        name: f"settings.get('{name}')" for name in ("dbname", "user", "password", "host", "port")
    }
    assert "row_factory" not in source
    assert 'get_db(current_app.config.get("LIBRARY_PATH", DATABASE_PATH))' in source


def test_helpers_give_the_connection_back_in_finally_guarded_or_not(run: Run) -> None:
    functions = _functions(run.text("app/services/library_db.py"))
    for name in ("fetch_one", "execute_query", "init_library"):
        assert _puts_back_in_finally(functions[name]) == 1, name
    guarded = functions["fetch_all"].body[-1]
    assert isinstance(guarded, ast.Try)
    assert ast.unparse(guarded.finalbody[0]) == "if conn is not None:\n    putconn(conn)"
    assert ast.unparse(functions["db_close"].body[-1]) == "putconn(conn)"
    for name in ("fetch_one", "fetch_all", "execute_query"):
        (execute,) = _calls(functions[name], "execute")
        assert ast.unparse(execute.args[0]) == "sql_for(conn, sql)", name


def test_bare_connect_import_and_sqlite_alias_are_followed(run: Run) -> None:
    source = run.text("app/services/library_links.py")
    assert "from psycopg2 import connect" not in source
    assert "import sqlite3 as lite\n" in source  # still needed for lite.Error
    function = _functions(source)["link_or_none"]
    assert [ast.unparse(c) for c in _calls(function, "getconn")] == [
        "getconn(DATABASE_URL, cursor_factory=RowCursor)"
    ]
    assert [ast.unparse(c) for c in _calls(function, "get_db")] == ["get_db(DATABASE_PATH)"]
    assert ast.unparse(function.body[1].handlers[0].body[-1]) == "return None"


def test_route_sites_are_wrapped_once_per_connection_and_closing_becomes_borrowed(run: Run) -> None:
    source = run.text("app/routes/library.py")
    assert "from app.services.db_pool import borrowed, putconn\n" in source
    functions = _functions(source)
    wraps = {name: _puts_back_in_finally(functions[name]) for name in functions}
    assert wraps == {
        "book_json": 0,
        "list_books": 0,
        "get_book": 0,
        "add_book": 1,  # straight close with an early return and an except that returns 500
        "remove_book": 0,
        "book_loans": 1,  # never closed
        "lend_book": 2,  # two open/close pairs in sequence
        "return_book": 1,  # released by db_close on three paths
        "library_stats": 0,
    }
    assert _calls(functions["return_book"], "db_close") == []
    (item,) = functions["library_stats"].body[0].items
    assert ast.unparse(item) == "borrowed(open_library()) as conn"


def test_the_migration_reports_no_pool_finding_on_the_library_modules(run: Run) -> None:
    reported = {file for file, _, _ in run.pool_findings(run.applied)}
    assert reported == {BLOCKED_AT}


def test_blocked_shapes_are_reported_and_left_byte_identical(run: Run) -> None:
    source = BLOCKED.read_text(encoding="utf-8")
    assert run.text(BLOCKED_AT) == source
    functions = _functions(source)
    module = ast.parse(source).body
    (shelf,) = _calls(functions["shelf_size"], "open_pair")
    (branches,) = [n for n in module if isinstance(n, ast.If)]
    twice = [branches.body[0].lineno, branches.orelse[0].lineno]
    (catalogue,) = [n for n in module if isinstance(n, ast.ClassDef)]
    returned = functions["open_cursor"].body[-1]
    (reopened,) = [
        n for n in ast.walk(functions["renew"]) if isinstance(n, ast.Assign) and n.col_offset > 4
    ]
    assert run.pool_findings(run.checked) == {
        (BLOCKED_AT, shelf.lineno, "POOL001"),  # (conn, cursor) kept whole in `pair`
        (BLOCKED_AT, functions["open_pair"].lineno, "POOL002"),
        (BLOCKED_AT, returned.lineno, "POOL001"),  # a cursor of the connection is returned
        (BLOCKED_AT, functions["open_cursor"].body[1].lineno, "POOL002"),
        *((BLOCKED_AT, line, "POOL002") for line in twice),  # defined twice
        (BLOCKED_AT, catalogue.body[1].lineno, "POOL002"),  # a method
        (BLOCKED_AT, reopened.lineno, "POOL001"),  # `conn` opened again while in use
        (BLOCKED_AT, functions["checkout_desk"].lineno, "POOL002"),
    }


def test_check_exits_1_while_a_blocked_shape_remains(run: Run) -> None:
    assert run.check.returncode == 1, run.check.stderr
    assert run.checked["files_changed"] == []


def test_a_returned_cursor_call_is_blocked() -> None:
    model = analyse({"pkg/__init__.py": "", "pkg/store.py": PENDING_CURSOR.read_text()})
    assert "pkg/store.py" not in model.edits
    assert {p.code for p in model.problems["pkg/store.py"]} == {"POOL001", "POOL002"}
