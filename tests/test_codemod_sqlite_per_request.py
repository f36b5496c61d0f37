"""sqlite-per-request: ``init_app(app)`` where apps are made, when SQLite gets request conns."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

from libcst.codemod import CodemodContext, TransformSuccess, transform_module

from claun_migrate.codemods._support import ENGINE, companions, stamp
from claun_migrate.codemods.sqlite_per_request import SqlitePerRequestCommand

LAYER = """\
import sqlite3

def get_db():
    return sqlite3.connect("app.db")
"""


def tree(tmp_path: Path, files: dict[str, str]) -> dict[str, str]:
    sources = {}
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text))
        sources[str(path)] = dedent(text)
    return sources


def run(tmp_path: Path, files: dict[str, str], name: str) -> tuple[str, CodemodContext]:
    sources = tree(tmp_path, files)
    gathered = SqlitePerRequestCommand.gather(sources)
    path = str(tmp_path / name)
    context = CodemodContext(filename=path, scratch={ENGINE: True})
    result = transform_module(SqlitePerRequestCommand(context, **gathered), sources[path])
    assert isinstance(result, TransformSuccess), result
    return result.code, context


def test_module_level_app_is_wired_with_an_absolute_import(tmp_path):
    files = {
        "backend/app/__init__.py": "",
        "backend/app/services/__init__.py": "",
        "backend/app/services/database.py": LAYER,
        "backend/app.py": "from flask import Flask\n\napp = Flask(__name__)\n",
    }
    code, context = run(tmp_path, files, "backend/app.py")
    assert code == (
        "from flask import Flask\n\nfrom app.services.db_sqlite import init_app\n\n"
        "app = Flask(__name__)\ninit_app(app)\n"
    )
    assert set(companions(context)) == {
        "app/services/db_pool.py",
        "app/services/db_rows.py",
        "app/services/db_sqlite.py",
    }


def test_factory_app_is_wired_with_a_relative_import_after_a_shebang_header(tmp_path):
    factory = (
        "\n#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n\nfrom flask import Flask\n\n"
        "def create_app():\n"
        "    app = Flask(__name__, static_folder='../web', static_url_path='/')\n"
        "    return app\n"
    )
    files = {
        "app/__init__.py": factory,
        "app/models/__init__.py": "",
        "app/models/database.py": LAYER,
    }
    code, _ = run(tmp_path, files, "app/__init__.py")
    assert code == factory.replace(
        "from flask import Flask\n",
        "from flask import Flask\n\nfrom .models.db_sqlite import init_app\n",
    ).replace("    return app\n", "    init_app(app)\n    return app\n")


def test_second_run_changes_nothing(tmp_path):
    files = {"db.py": LAYER, "main.py": "from flask import Flask\napp = Flask(__name__)\n"}
    once, _ = run(tmp_path / "1", files, "main.py")
    twice, _ = run(tmp_path / "2", {**files, "main.py": once}, "main.py")
    assert twice == once


def test_nothing_is_wired_without_sqlite_request_connections(tmp_path):
    files = {
        "db.py": 'import psycopg2\n\ndef get_db():\n    return psycopg2.connect("")\n',
        "main.py": "from flask import Flask\napp = Flask(__name__)\n",
    }
    code, context = run(tmp_path, files, "main.py")
    assert code == files["main.py"]
    assert companions(context) == {}


def test_shipped_runtime_copy_is_never_rewritten(tmp_path):
    copy = stamp("db_sqlite.py", "0", "from flask import Flask\napp = Flask(__name__)\n")
    code, _ = run(tmp_path, {"db.py": LAYER, "db_sqlite.py": copy}, "db_sqlite.py")
    assert code == copy
