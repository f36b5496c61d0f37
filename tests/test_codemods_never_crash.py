"""Every codemod runs on ordinary Python without an exception: file headers of every kind and
every .py file of this repository and its fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import libcst as cst
import pytest

from claun_migrate.codemods import _support as support
from claun_migrate.engine import migrate

REPO = Path(__file__).resolve().parent.parent

HEADERS = {
    "shebang_cookie_blank": "#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n\n",
    "blank_then_shebang": "\n#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n\n",
    "comments_blank": "# backend/app/services/database.py\n# ---\n\n",
    "docstring": '"""Module docstring."""\n\n',
    "future": '"""Doc."""\n\nfrom __future__ import annotations\n\n',
    "cookie_docstring_future": (
        '# coding: utf-8\n# a comment\n"""Doc."""\nfrom __future__ import annotations\n\n'
    ),
    "crlf": "# comment\r\n\r\n",
    "nothing": "",
}
BODY = (
    "import sqlite3\nimport psycopg2\nfrom flask import Flask\n\n"
    "def get_db_connection():\n    return sqlite3.connect('x.db')\n\n"
    "def get_pg():\n    return psycopg2.connect('dbname=x')\n\n"
    "def execute_sql(sql):\n    conn = get_pg()\n    try:\n"
    "        conn.cursor().execute(sql)\n    finally:\n        conn.close()\n\n"
    "def create_app():\n    app = Flask(__name__)\n    return app\n\n"
    "app = Flask(__name__)\n"
)


@pytest.mark.parametrize("header", sorted(HEADERS))
def test_every_header_shape_is_migrated_without_an_error(tmp_path: Path, header: str) -> None:
    crlf = "\r\n" in HEADERS[header]
    text = HEADERS[header] + (BODY.replace("\n", "\r\n") if crlf else BODY)
    (tmp_path / "layer.py").write_bytes(text.encode())
    result = migrate([tmp_path], write=True)
    assert result.errors == []
    migrated = (tmp_path / "layer.py").read_bytes().decode()
    assert migrated.startswith(HEADERS[header])
    assert "putconn(conn)" in migrated and "init_app(app)" in migrated
    compile(migrated, "layer.py", "exec")


def test_every_python_file_of_the_repository_runs_through_every_codemod(tmp_path: Path) -> None:
    result = migrate([REPO / folder for folder in ("claun_migrate", "codemods", "fixtures")])
    crashes = [e for e in result.errors if "failed:" in e.message or "parse" in e.message]
    assert [str(e.path) + ": " + e.message for e in crashes] == []
    assert result.files_parsed > 20


def _nodes(node: cst.CSTNode) -> list[cst.CSTNode]:
    found = [node]
    for child in node.children:
        found += _nodes(child)
    return found


def test_no_codemod_puts_one_node_object_twice_in_a_tree(monkeypatch, tmp_path: Path) -> None:
    """Metadata is resolved on the tree as given (no copy): it must hold every node once."""
    run = support._run
    seen: list[str] = []

    def checked(codemod, tree):
        after = run(codemod, tree)
        for name, module in (("before", tree), ("after", after)):
            nodes = _nodes(module)
            if len(nodes) != len({id(n) for n in nodes}):
                seen.append(f"{type(codemod).__name__} {name} {codemod.context.filename}")
        return after

    monkeypatch.setattr(support, "_run", checked)
    shutil.copytree(REPO / "fixtures", tmp_path / "fixtures")
    result = migrate([tmp_path / "fixtures"], jobs=1, unsafe_fixes=True)
    assert result.changes and seen == []
