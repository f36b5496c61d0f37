"""Rule codes are data: one registry for every code used, its docs, ``rule``, SARIF and warn()."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from libcst.codemod import CodemodContext, TransformSuccess, transform_module

from claun_migrate.cli import main
from claun_migrate.codemods._support import Finding
from claun_migrate.codemods.pool_connections import PoolConnectionsCommand
from claun_migrate.codemods.rules import RULES
from claun_migrate.engine import Located, RunResult
from claun_migrate.report import rules as rule_docs
from claun_migrate.report import sarif

ROOT = Path(__file__).resolve().parents[1]
CODE = re.compile(r"\b(?:CM|POOL|SQLITE|GEN|REQ)\d{3}\b")


def test_every_code_in_the_codemods_and_the_engine_is_in_the_registry() -> None:
    sources = [*(ROOT / "codemods").rglob("*.py"), *(ROOT / "claun_migrate").rglob("*.py")]
    used = {
        code
        for path in sources
        if path.name != "rules.py"
        for code in CODE.findall(path.read_text(encoding="utf-8"))
    }
    assert used, "the pattern must find the codes in use"
    assert sorted(used - set(RULES)) == []


def test_every_rule_is_complete() -> None:
    for code, rule in RULES.items():
        assert rule.code == code and CODE.fullmatch(code)
        assert rule.safety in ("safe", "review")
        assert all([rule.name, rule.title, rule.why, rule.example, rule.fix]), code
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.name), rule.name
    assert len({rule.name for rule in RULES.values()}) == len(RULES)


def test_docs_rules_is_what_the_registry_generates() -> None:
    folder = ROOT / "docs" / "rules"
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.md")}
    assert on_disk == rule_docs.pages(), (
        "docs/rules/ is stale: run `python -m claun_migrate.report.rules docs/rules`"
    )


def test_rule_prints_the_explanation() -> None:
    result = CliRunner().invoke(main, ["rule", "cm105"])
    assert result.exit_code == 0
    rule = RULES["CM105"]
    assert result.output.startswith("# CM105 json-shape\n")
    for part in (rule.title, rule.why, rule.example, rule.fix):
        assert part in result.output


def test_rule_all_and_json() -> None:
    every = CliRunner().invoke(main, ["rule", "--all"]).output
    assert re.findall(r"^# ([A-Z]+\d{3}) ", every, re.MULTILINE) == list(RULES)
    data = json.loads(CliRunner().invoke(main, ["rule", "POOL001", "--format", "json"]).output)
    assert data == RULES["POOL001"].to_dict()


@pytest.mark.parametrize("args", [["XY123"], [], ["CM105", "--all"]])
def test_rule_usage_errors(args: list[str]) -> None:
    assert CliRunner().invoke(main, ["rule", *args]).exit_code == 2


def test_sarif_describes_every_rule_and_indexes_results_into_them(tmp_path: Path) -> None:
    finding = Finding(3, 8, "POOL001", "a message", "a fix")
    result = RunResult(
        selected=[], findings=[Located(tmp_path / "a.py", "pool-connections", finding)]
    )
    log = json.loads(sarif(result, "check"))
    driver = log["runs"][0]["tool"]["driver"]
    ids = [rule["id"] for rule in driver["rules"]]
    assert ids[: len(RULES)] == list(RULES)
    described = driver["rules"][ids.index("POOL001")]
    assert described["shortDescription"]["text"] == RULES["POOL001"].title
    (entry,) = log["runs"][0]["results"]
    assert entry["ruleId"] == "POOL001" and ids[entry["ruleIndex"]] == "POOL001"


def test_findings_reach_libcsts_runner_as_warnings(tmp_path: Path) -> None:
    code = 'import psycopg2.pool\n\npool = psycopg2.pool.SimpleConnectionPool(1, 10, "dbname=x")\n'
    (tmp_path / "a.py").write_text(code)  # standalone, the codemod reads the files around it
    context = CodemodContext(filename=str(tmp_path / "a.py"))
    outcome = transform_module(PoolConnectionsCommand(context), code)
    assert isinstance(outcome, TransformSuccess)
    assert outcome.warning_messages == [
        "3:8 POOL003 psycopg2's SimpleConnectionPool is not thread-safe: under a threaded server "
        "two threads can get one connection, and it overshoots maxconn"
    ]
    assert outcome.code == code
