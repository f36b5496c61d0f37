"""sqlite-per-request: ``init_app(app)`` where the app is made; the older get_db() per request."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
from libcst.codemod import CodemodContext, TransformSuccess, transform_module

from claun_migrate.codemods._support import findings, stamp
from claun_migrate.codemods.sqlite_per_request import SqlitePerRequestCommand, runtime_import

MODELS_GET_DB = '''\
import sqlite3


def get_db():
    """Rows readable by column name"""
    conn = sqlite3.connect(DATABASE_PATH)
    conn.row_factory = sqlite3.Row
    return conn
'''


@pytest.fixture
def backend(tmp_path: Path) -> Path:
    """The fixture's layout: app.py beside the package app/ with services/ and models/."""
    for name in ["app", "app/services", "app/models"]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "app/services/database.py").write_text("def get_db_connection(): ...\n")
    return tmp_path


def run(before: str, filename: Path, layers: list[str] | None = None) -> tuple[str, list[str]]:
    context = CodemodContext(filename=str(filename))
    command = SqlitePerRequestCommand(context, data_layers=layers or [])
    result = transform_module(command, dedent(before))
    assert isinstance(result, TransformSuccess), result
    return result.code, [f"{f.code}:{f.line}" for f in findings(context)]


def test_module_level_app_is_wired_with_an_absolute_import(backend: Path) -> None:
    before = "from flask import Flask\n\napp = Flask(__name__)\napp.config['X'] = 1\n"
    code, _ = run(before, backend / "app.py")
    assert code == (
        "from flask import Flask\nfrom app.services.db_sqlite import init_app\n\n"
        "app = Flask(__name__)\ninit_app(app)\napp.config['X'] = 1\n"
    )


def test_factory_app_is_wired_with_a_relative_import(backend: Path) -> None:
    before = """\
    from flask import Flask

    def create_app():
        app = Flask(__name__)
        return app
    """
    code, _ = run(before, backend / "app/__init__.py")
    assert "from .services.db_sqlite import init_app\n" in code
    assert "    app = Flask(__name__)\n    init_app(app)\n    return app\n" in code


def test_second_run_changes_nothing(backend: Path) -> None:
    once, _ = run("import flask\napplication = flask.Flask('x')\n", backend / "app.py")
    assert "init_app(application)" in once
    assert run(once, backend / "app.py")[0] == once


def test_older_get_db_layer_takes_the_request_connection(backend: Path) -> None:
    code, _ = run(MODELS_GET_DB, backend / "app/models/database.py")
    assert code == MODELS_GET_DB.replace(
        "import sqlite3\n",
        "import sqlite3\nfrom ..services.db_sqlite import get_db as request_db\n",
    ).replace(
        "    conn = sqlite3.connect(DATABASE_PATH)\n    conn.row_factory = sqlite3.Row\n",
        "    conn = request_db(DATABASE_PATH)\n",
    )
    assert run(code, backend / "app/models/database.py")[0] == code


def test_connection_that_is_used_and_closed_in_place_is_left_alone(backend: Path) -> None:
    before = """\
    def count(path):
        conn = sqlite3.connect(path)
        try:
            return conn.execute("SELECT 1").fetchall()
        finally:
            conn.close()
    """
    assert run(before, backend / "app/models/database.py")[0] == dedent(before)


def test_gathered_data_layer_decides_the_import(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db/__init__.py").write_text("")
    layer = str(tmp_path / "db/database.py")
    code, _ = run("app = Flask(__name__)\n", tmp_path / "main.py", [layer])
    assert code.startswith("from db.db_sqlite import init_app\n")


def test_without_a_data_layer_the_app_is_reported_not_wired(tmp_path: Path) -> None:
    code, found = run("app = Flask(__name__)\n", tmp_path / "main.py")
    assert code == "app = Flask(__name__)\n"
    assert found == ["SQLITE001:1"]


def test_shipped_runtime_copy_is_never_rewritten(backend: Path) -> None:
    copy = stamp("db_sqlite.py", "0.1.0", MODELS_GET_DB)
    assert run(copy, backend / "app/services/db_sqlite.py")[0] == copy


def test_runtime_import_is_relative_inside_the_package_and_absolute_outside(
    backend: Path,
) -> None:
    services = str(backend / "app/services")
    assert runtime_import(str(backend / "app.py"), services) == ("app.services.db_sqlite", 0)
    assert runtime_import(str(backend / "app/__init__.py"), services) == ("services.db_sqlite", 1)
    assert runtime_import(str(backend / "app/models/x.py"), services) == ("services.db_sqlite", 2)
    assert runtime_import(str(backend / "app/services/x.py"), services) == ("db_sqlite", 1)
