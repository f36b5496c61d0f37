"""Output a reviewer accepts: added imports in their section, lines an edit lengthened wrapped
to the project's limit, and ruff finding nothing on the migrated fixture that it did not find
on the legacy one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from textwrap import dedent

import libcst as cst
import pytest
from click.testing import CliRunner
from libcst.codemod import CodemodContext, VisitorBasedCodemodCommand
from libcst.codemod.visitors import AddImportsVisitor

from claun_migrate.cli import main
from claun_migrate.codemods._imports import (
    add_imports,
    place_added_imports,
    without_unused_imports,
)
from claun_migrate.config import project_line_length
from claun_migrate.engine import migrate
from claun_migrate.engine.layout import grown_lines, wrap

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_backend" / "backend"
RUNTIME = ("db_pool.py", "db_rows.py", "db_sqlite.py")
RUFF = [sys.executable, "-m", "ruff"]


def ruff_check(source: str, rules: str, filename: str = "pkg/module.py", width: int = 88) -> list:
    """ruff's findings on ``source``, with ``app`` first-party as in the fixture."""
    command = [*RUFF, "check", "--isolated", "--select", rules, "--line-length", str(width)]
    command += ["--config", "lint.isort.known-first-party=['app']", "--output-format", "json"]
    done = subprocess.run(
        [*command, "--stdin-filename", filename, "-"], input=source, capture_output=True, text=True
    )
    return json.loads(done.stdout)


def ruff_format(source: str, width: int = 88) -> str:
    command = [*RUFF, "format", "--isolated", "--line-length", str(width), "-"]
    return subprocess.run(command, input=source, capture_output=True, text=True).stdout


# added imports


def add_import(source: str, module: str, name: str, relative: int = 0) -> str:
    """``source`` with ``name`` imported the way the codemods add imports."""
    before = cst.parse_module(dedent(source))
    context = CodemodContext()
    AddImportsVisitor.add_needed_import(context, module, name, relative=relative)
    after = add_imports(before, context.scratch[AddImportsVisitor.CONTEXT_KEY])
    return place_added_imports(before, after).code


def test_a_name_the_module_imports_already_is_not_added_again():
    source = "from .db_pool import getconn as g, putconn\n\nx = putconn(g())\n"
    assert add_import(source, "db_pool", "putconn", relative=1) == source
    starred = "from app.db_pool import *\n\nx = getconn()\n"
    assert add_import(starred, "app.db_pool", "getconn") == starred


def test_an_import_added_to_a_module_without_imports_stands_one_blank_line_above_the_code():
    assert add_import('"""Doc."""\nx = 1\n', "app.db_pool", "getconn") == (
        '"""Doc."""\nfrom app.db_pool import getconn\n\nx = 1\n'
    )
    assert add_import("# header\nx = 1\n", "app.db_pool", "getconn") == (
        "# header\nfrom app.db_pool import getconn\n\nx = 1\n"
    )


# imports an edit left unused


def drop_unused(source: str, *candidates: str) -> str:
    return without_unused_imports(cst.parse_module(dedent(source)), candidates).code


def test_an_unused_candidate_goes_and_its_comment_stays_with_the_next_statement():
    source = """\
        import os
        # the driver
        import psycopg2

        x = os.getcwd()
        """
    assert drop_unused(source, "psycopg2", "os") == "import os\n# the driver\n\nx = os.getcwd()\n"


def test_only_the_unused_name_leaves_a_shared_import_line():
    source = "from contextlib import closing, suppress\n\nwith suppress(KeyError):\n    pass\n"
    assert drop_unused(source, "closing", "suppress") == (
        "from contextlib import suppress\n\nwith suppress(KeyError):\n    pass\n"
    )


def test_names_still_read_in_code_or_exported_in_strings_stay():
    source = """\
        import sqlite3
        from psycopg2 import connect

        __all__ = ["connect"]
        ERRORS = (sqlite3.Error,)
        """
    assert drop_unused(source, "sqlite3", "connect") == dedent(source)


def test_names_that_are_not_candidates_stay_even_when_unused():
    source = "import json\nimport psycopg2\n\nx = 1\n"
    assert drop_unused(source, "psycopg2") == "import json\n\nx = 1\n"


def test_relative_import_opens_a_local_block_after_third_party():
    source = """\
        import os

        from flask import Flask

        app = Flask(__name__)
        """
    assert add_import(source, "db_pool", "getconn", relative=1) == dedent(
        """\
        import os

        from flask import Flask

        from .db_pool import getconn

        app = Flask(__name__)
        """
    )


def test_relative_import_is_sorted_into_the_existing_local_block():
    source = """\
        import os

        from .auth import login
        from .views import index

        x = 1
        """
    assert add_import(source, "db_pool", "getconn", relative=1) == dedent(
        """\
        import os

        from .auth import login
        from .db_pool import getconn
        from .views import index

        x = 1
        """
    )


def test_absolute_import_joins_its_package_block_in_order():
    source = """\
        from flask import Flask

        from app import register
        from app.services.database import execute_sql
        from app.services.mail import send

        app = Flask(__name__)
        """
    assert add_import(source, "app.services.db_sqlite", "init_app") == dedent(
        """\
        from flask import Flask

        from app import register
        from app.services.database import execute_sql
        from app.services.db_sqlite import init_app
        from app.services.mail import send

        app = Flask(__name__)
        """
    )


def test_sibling_module_goes_before_the_relative_block():
    source = """\
        import os

        from .auth import login

        x = 1
        """
    assert add_import(source, "db_pool", "getconn") == dedent(
        """\
        import os

        from db_pool import getconn

        from .auth import login

        x = 1
        """
    )


def test_first_in_a_block_takes_the_blank_line_and_leaves_the_comment():
    source = """\
        import os

        # ours
        from .views import index

        x = 1
        """
    assert add_import(source, "auth", "login", relative=1) == dedent(
        """\
        import os

        from .auth import login
        # ours
        from .views import index

        x = 1
        """
    )


def test_type_checking_imports_and_the_users_order_are_left_alone():
    source = """\
        import sys
        import os
        from typing import TYPE_CHECKING

        if TYPE_CHECKING:
            from .models import Model

        x = 1
        """
    assert add_import(source, "db_pool", "getconn", relative=1) == dedent(
        """\
        import sys
        import os
        from typing import TYPE_CHECKING

        from .db_pool import getconn

        if TYPE_CHECKING:
            from .models import Model

        x = 1
        """
    )


def test_a_name_for_an_imported_module_joins_its_line_in_order():
    source = "import os\n\nfrom app.db_sqlite import get_db, sql_for\n\nx = 1\n"
    assert add_import(source, "app.db_sqlite", "init_app") == (
        "import os\n\nfrom app.db_sqlite import get_db, init_app, sql_for\n\nx = 1\n"
    )


def test_a_relative_name_is_merged_not_repeated():
    source = "import os\n\nfrom .db_sqlite import get_db\n\nx = 1\n"
    assert add_import(source, "db_sqlite", "init_app", relative=1) == (
        "import os\n\nfrom .db_sqlite import get_db, init_app\n\nx = 1\n"
    )


def test_an_aliased_import_keeps_its_own_line():
    source = "from flask import Flask\n\nfrom db_sqlite import get_db as db_get\n\nx = 1\n"
    assert add_import(source, "db_sqlite", "init_app") == (
        "from flask import Flask\n\nfrom db_sqlite import get_db as db_get\n"
        "from db_sqlite import init_app\n\nx = 1\n"
    )


def test_nothing_moves_when_nothing_was_added():
    source = "import os\nfrom app.db_pool import getconn\n\nx = getconn()\n"
    assert add_import(source, "app.db_pool", "getconn") == source


@pytest.mark.parametrize(
    "source",
    [
        '"""Docstring."""\n\nx = 1\n',
        "import os\n\nx = 1\n",
        "import os\n\nimport flask\n\nfrom app import views\n\nx = 1\n",
        "from .auth import login\n\nx = 1\n",
        '"""Docstring."""\n\nimport os\n\nfrom .auth import login\n\nx = 1\n',
        "from app.db_pool import ROWS, Pool, putconn\n\nx = 1\n",
        "from .db_pool import borrowed, putconn\n\nx = 1\n",
        "from app.db_pool import borrowed as b\nfrom app.db_pool import putconn\n\nx = 1\n",
    ],
)
@pytest.mark.parametrize(("module", "relative"), [("db_pool", 1), ("app.db_pool", 0)])
def test_added_imports_are_isort_clean_where_the_imports_were(source, module, relative):
    assert ruff_check(source, "I") == []
    assert ruff_check(add_import(source, module, "getconn", relative), "I") == []


# wrapping


def lines_over(text: str, limit: int) -> list[str]:
    return [line for line in text.splitlines() if len(line) > limit]


GROWN = [
    (
        '    return jsonify({"id": user[0], "name": user[1], "user_type": user[2]})\n',
        '    return jsonify({"id": user["id"], "name": user["name"], '
        '"user_type": user["user_type"]})\n',
    ),
    (
        '    return {"id": row[0], "title": row[1], "company": row[2], "where": row[3]}\n',
        '    return {"id": row["id"], "title": row["title"], "company": row["company_name"], '
        '"where": row["location"]}\n',
    ),
    (
        "        conn = psycopg2.connect(DATABASE_URL, connect_timeout=CONNECT_TIMEOUT)\n",
        "        conn = getconn(DATABASE_URL, connect_timeout=CONNECT_TIMEOUT, "
        "cursor_factory=RowCursor)\n",
    ),
    (
        '        cursor.execute("SELECT id, name, email FROM users WHERE email = %s", (x,))\n',
        "        cursor.execute("
        'sql_for(conn, "SELECT id, name, email FROM users WHERE email = %s"), (x,))\n',
    ),
    (
        "    cur.execute(\n"
        '        "SELECT a, b, c, d, e, f, g FROM some_table WHERE x = %s AND y = %s ORDER BY a",\n'
        "        (x, y),\n"
        "    )\n",
        "    cur.execute(\n"
        '        sql_for(conn, "SELECT a, b, c, d, e, f, g FROM some_table WHERE x = %s AND y = %s '
        'ORDER BY a"),\n'
        "        (x, y),\n"
        "    )\n",
    ),
    (
        '    return jsonify([{"company": r[0], "applications": r[1], "jobs": r[2]} '
        "for r in rows])\n",
        '    return jsonify([{"company": r["company_name"], "applications": r["applications"], '
        '"jobs": r["jobs"]} for r in rows])\n',
    ),
    (
        "    found = {r[0]: (r[1], r[2]) for r in rows if r[3] and r[0] not in seen}\n",
        '    found = {r["identifier"]: (r["first_name"], r["last_name"]) for r in rows '
        'if r["active"] and r["identifier"] not in seen}\n',
    ),
]


def in_function(statement: str) -> str:
    """``statement`` in a function, at the indentation it was written at."""
    head = "def f(x):\n" if statement.startswith("    ") else ""
    return head + ("    if x:\n" if statement.startswith(" " * 8) else "") + statement


@pytest.mark.parametrize(("old", "new"), GROWN)
def test_a_lengthened_statement_is_wrapped_as_black_would(old, new):
    before, after = in_function(old), in_function(new)
    wrapped, _ = wrap(before, after, 88)
    assert wrapped != after
    assert wrapped == ruff_format(after)
    assert all(_is_string(line) for line in lines_over(wrapped, 88))
    compile(wrapped, "<wrapped>", "exec")


def _is_string(line: str) -> bool:
    """A line holding one string literal only, which no wrapping can shorten."""
    return line.strip().rstrip(",").startswith('"') and line.strip().rstrip(",").endswith('"')


@pytest.mark.parametrize(("old", "new"), GROWN)
def test_wrapping_its_own_output_again_changes_nothing(old, new):
    before, after = in_function(old), in_function(new)
    wrapped, _ = wrap(before, after, 88)
    assert wrap(before, wrapped, 88)[0] == wrapped
    assert wrap(wrapped, wrapped, 88)[0] == wrapped


def test_long_lines_the_edit_did_not_lengthen_stay():
    long_call = f"    x = compute({'a' * 30}, {'b' * 30}, {'c' * 30})\n"
    before = f"def f(row):\n{long_call}    return row[0]\n"
    after = f"def f(row):\n{long_call}    return row['id']\n"
    assert len(long_call) > 89
    assert wrap(before, after, 88)[0] == after


def test_a_long_line_the_edit_shortened_stays():
    before = f"x = connect_to_the_database_now({'a' * 30}, {'b' * 40})\n"
    after = f"x = getconn({'a' * 30}, {'b' * 40}, cursor_factory=Row)\n"
    assert len(after) > 89 and len(after) <= len(before)
    assert grown_lines(before, after, 88) == set()
    assert wrap(before, after, 88)[0] == after


def test_a_block_indented_into_try_counts_as_lengthened():
    body = f'    conn.execute("SELECT {"a" * 20}, {"b" * 20} FROM cccc", (x, y))\n'
    before = f"def f(conn, x, y):\n{body}"
    after = f"def f(conn, x, y):\n    try:\n    {body}    finally:\n        putconn(conn)\n"
    assert len(body) <= 89 < len(body) + 4
    assert grown_lines(before, after, 88) == {3}
    wrapped = wrap(before, after, 88)[0]
    assert lines_over(wrapped, 88) == []
    assert wrapped == ruff_format(after)


def test_a_long_value_gets_black_parentheses():
    before = "def f(row):\n    x = 1\n"
    after = f'def f(row):\n    x = row["{"a" * 25}"] + row["{"b" * 25}"] + row["cccccc"]\n'
    wrapped = wrap(before, after, 88)[0]
    assert wrapped == ruff_format(after)
    assert "x = (" in wrapped


@pytest.mark.parametrize(
    "new",
    [
        f'    x = "{"a" * 100}"\n',
        f'    x = f(row["{"a" * 30}"], row["{"b" * 40}"])  # keep me\n',
        f'    x = f(row["{"a" * 30}"], row["{"b" * 40}"]); y = 1\n',
        f'    x = f(\\\n        row["{"a" * 30}"], row["{"b" * 50}"])\n',
    ],
    ids=["no-bracket", "comment", "two-statements", "backslash"],
)
def test_what_cannot_be_wrapped_safely_is_left(new):
    before, after = "def f(row):\n    x = 1\n", f"def f(row):\n{new}"
    assert wrap(before, after, 88)[0] == after


def test_a_trailing_comma_is_never_added_where_it_changes_meaning():
    before = "def f(r):\n    return (r[0] + r[1] + r[2] + r[3])\n"
    after = (
        'def f(r):\n    return (r["aaaaaaaaaaaaaaaaaa"] + r["bbbbbbbbbbbbbbbbbbbb"] + '
        'r["ccccccccccccccccc"])\n'
    )
    wrapped, _ = wrap(before, after, 88)
    namespace: dict = {}
    exec(compile(wrapped, "<wrapped>", "exec"), namespace)
    row = {"aaaaaaaaaaaaaaaaaa": 1, "bbbbbbbbbbbbbbbbbbbb": 2, "ccccccccccccccccc": 3}
    assert namespace["f"](row) == 6


def test_positions_after_a_wrapped_statement_follow_it():
    before = 'def f(u):\n    return jsonify({"id": u[0], "name": u[1], "kind": u[2], "x": u[3]})\n'
    before += "    y = u[5]\n"
    after = before.replace("u[0]", 'u["id"]').replace("u[1]", 'u["name_of_the_user"]')
    after = after.replace("u[2]", 'u["user_type"]')
    wrapped, moves = wrap(before, after, 88)
    old_lines, new_lines = after.splitlines(), wrapped.splitlines()
    assert len(new_lines) > len(old_lines)
    for line, text in ((2, "u[3]"), (3, "u[5]")):
        column = old_lines[line - 1].index(text) + 1
        new_line, new_column = moves(line, column)
        assert new_lines[new_line - 1][new_column - 1 :].startswith(text)


# the limit


@pytest.mark.parametrize(
    ("name", "text", "limit"),
    [
        ("pyproject.toml", "[tool.ruff]\nline-length = 100\n", 100),
        ("pyproject.toml", "[tool.black]\nline-length = 79\n", 79),
        ("ruff.toml", "line-length = 110\n", 110),
        ("setup.cfg", "[flake8]\nmax-line-length = 99\n", 99),
        ("tox.ini", "[flake8]\nmax_line_length = 101\n", 101),
        (".flake8", "[flake8]\nmax-line-length = 120\n", 120),
        ("pyproject.toml", "[tool.ruff]\nline-length = 'wide'\n", 88),
        ("pyproject.toml", "[project]\nname = 'x'\n", 88),
    ],
)
def test_the_limit_comes_from_the_projects_settings(tmp_path, name, text, limit):
    project = tmp_path / name.replace(".", "_")
    (project / "pkg").mkdir(parents=True)
    (project / name).write_text(text)
    assert project_line_length(project / "pkg") == limit


def test_the_nearest_setting_wins(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 120\n")
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "setup.cfg").write_text("[flake8]\nmax-line-length = 79\n")
    assert project_line_length(tmp_path / "inner") == 79
    assert project_line_length(tmp_path) == 120


class Lengthen(VisitorBasedCodemodCommand):
    """A stand-in for any codemod that makes a call longer: ``go(`` -> ``go_somewhere_far(``."""

    DESCRIPTION = "Lengthen calls."
    TRIGGERS = ("go(",)

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.Name:
        return (
            updated_node.with_changes(value="go_somewhere_far")
            if updated_node.value == "go"
            else updated_node
        )


# 77 columns; 90 once lengthened
CALL = "result = go(first_argument_value, second_argument_value, third_argument_val)\n"


@pytest.mark.parametrize(
    ("name", "text", "wrapped"),
    [
        (None, None, True),
        ("pyproject.toml", "[tool.ruff]\nline-length = 100\n", False),
        ("pyproject.toml", "[tool.black]\nline-length = 100\n", False),
        ("setup.cfg", "[flake8]\nmax-line-length = 100\n", False),
        ("pyproject.toml", "[tool.claun-migrate]\nline-length = 100\n", False),
        (
            "pyproject.toml",
            "[tool.ruff]\nline-length = 120\n[tool.claun-migrate]\nline-length = 80\n",
            True,
        ),
    ],
)
def test_the_engine_wraps_to_each_config_source(tmp_path, monkeypatch, name, text, wrapped):
    if name:
        (tmp_path / name).write_text(text)
    (tmp_path / "mod.py").write_text(CALL)
    monkeypatch.chdir(tmp_path)
    registry = {"lengthen": Lengthen}
    from claun_migrate.config import load

    config = load([tmp_path])
    result = migrate(
        [tmp_path / "mod.py"], registry=registry, jobs=1, line_length=config.line_length
    )
    (change,) = result.changes
    assert (change.after.count("\n") > 1) is wrapped
    assert change.after.replace("\n", "").replace(" ", "").replace(",)", ")") == (
        CALL.replace("go(", "go_somewhere_far(").replace("\n", "").replace(" ", "")
    )


def test_a_run_with_wrapping_is_confirmed_stable(tmp_path):
    (tmp_path / "mod.py").write_text(CALL)
    result = migrate([tmp_path], registry={"lengthen": Lengthen}, jobs=1, write=True, confirm=True)
    assert result.errors == []
    assert lines_over((tmp_path / "mod.py").read_text(), 88) == []
    again = migrate([tmp_path], registry={"lengthen": Lengthen}, jobs=1)
    assert again.changes == []


# the migrated fixture under ruff


def ruff_counts(root: Path, select: tuple[str, ...]) -> Counter[tuple[str, str]]:
    """(file, code) counts of ruff on ``root``, no configuration read (``select`` empty:
    ruff's default rules, as a backend without its own settings gets them)."""
    command = [*RUFF, "check", "--isolated", *select, "--line-length", "88"]
    done = subprocess.run(
        [*command, "--output-format", "json", "."], cwd=root, capture_output=True, text=True
    )
    return Counter(
        (str(Path(e["filename"]).relative_to(root)), e["code"]) for e in json.loads(done.stdout)
    )


@pytest.mark.slow
def test_ruff_finds_nothing_on_the_migrated_fixture_that_it_did_not_find_before(tmp_path):
    legacy, migrated = tmp_path / "legacy", tmp_path / "migrated"
    shutil.copytree(FIXTURE, legacy)
    shutil.copytree(FIXTURE, migrated)
    outcome = CliRunner().invoke(main, ["apply", "--no-cache", str(migrated)])
    assert outcome.exit_code in (0, 1), outcome.output
    assert "0 errors" in outcome.output
    assert any(Path(path).name in RUNTIME for path in map(str, migrated.rglob("db_*.py")))
    for select in [("--select", "E,F,W,I"), ()]:
        before, after = ruff_counts(legacy, select), ruff_counts(migrated, select)
        runtime = {key: n for key, n in after.items() if Path(key[0]).name in RUNTIME}
        assert runtime == {}, "the shipped runtime copies must be ruff-clean"
        worse = {key: (before[key], n) for key, n in after.items() if n > before[key]}
        assert worse == {}, "(file, code): (legacy, migrated)"
