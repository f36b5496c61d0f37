"""SQL built from values is reported (POOL004), and no codemod ever moves a parameter into the
SQL text (or out of it)."""

from __future__ import annotations

import ast
import shutil
from collections import Counter
from pathlib import Path

import pytest
from fixture_tools import BACKEND_DIR

from claun_migrate.codemods.data_layer import analyse
from claun_migrate.engine import migrate

EXECUTES = {"execute", "executemany", "execute_sql", "execute_query", "fetch_one", "fetch_all"}


@pytest.mark.parametrize(
    ("call", "how"),
    [
        ("cur.execute(f\"SELECT id FROM users WHERE email = '{email}'\")", "an f-string"),
        ('cur.execute("SELECT * FROM %s" % table)', "`%` formatting"),
        ('cur.execute("SELECT * FROM " + table)', "`+`"),
        ('execute_sql("SELECT {} FROM t".format(column), fetch=True)', "`.format()`"),
        ('sql = f"DELETE FROM {table}"\n    cur.execute(sql)', "an f-string"),
    ],
)
def test_sql_built_from_values_is_reported_at_its_argument(call: str, how: str) -> None:
    source = f"def f(cur, email, table, column):\n    {call}\n"
    problems = analyse({"q.py": source}).problems["q.py"]
    assert [(p.code, p.pending) for p in problems] == [("POOL004", False)]
    assert how in problems[0].message
    assert problems[0].at[0] == source.count("\n")  # the line of the call's SQL argument


@pytest.mark.parametrize(
    "call",
    [
        'cur.execute("SELECT id FROM users WHERE email = %s", (email,))',
        'cur.execute("SELECT a " + "FROM t")',
        'cur.execute(f"SELECT {COLUMNS} FROM t WHERE id = %s", (1,))',
        'query = "SELECT id FROM t WHERE 1 = 1"\n    query += " AND a = %s"\n'
        "    cur.execute(query, (email,))",
    ],
)
def test_literal_sql_with_parameters_is_not_reported(call: str) -> None:
    source = f'COLUMNS = "id, name"\n\ndef f(cur, email):\n    {call}\n'
    assert analyse({"q.py": source}).problems == {}


def _sql_calls(text: str) -> Counter[str]:
    """Every execute-like call's SQL argument and parameters, with ``sql_for(conn, X)``
    unwrapped to ``X`` (the one wrapper the migration adds)."""
    calls: Counter[str] = Counter()
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        if name not in EXECUTES:
            continue
        sql, *rest = node.args
        if isinstance(sql, ast.Call) and getattr(sql.func, "id", "") == "sql_for":
            sql = sql.args[1]
        keywords = [ast.unparse(k) for k in node.keywords]
        calls[" | ".join([ast.unparse(sql), *map(ast.unparse, rest), *keywords])] += 1
    return calls


@pytest.mark.slow
def test_no_codemod_moves_a_parameter_into_the_sql_text(tmp_path: Path) -> None:
    backend = Path(shutil.copytree(BACKEND_DIR, tmp_path / "backend"))
    before = {p: _sql_calls(p.read_text()) for p in backend.rglob("*.py")}
    result = migrate([backend], write=True)
    assert result.errors == [] and result.changes
    changed = {change.path for change in result.changes}
    assert any(path in changed for path in before)
    for path, calls in before.items():
        assert _sql_calls(path.read_text()) == calls, path
