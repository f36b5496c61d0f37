"""benchmarks/runtime.py measures what it says: turns interleave, the best turn counts, ratios
are against each table's first line, and a tiny run prints every line of every table."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "runtime.py"
LINE = re.compile(
    r"^  (?P<name>.+?)\s+(?P<value>\d+\.\d\d) (?P<unit>us|ms)\s+(?P<ratio>\d+\.\d\d)x$"
)


@pytest.fixture(scope="module")
def runtime() -> ModuleType:
    spec = importlib.util.spec_from_file_location("runtime_benchmark", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_interleaves_turns_and_calls_each_action_number_times(runtime) -> None:
    calls: list[str] = []
    actions = [("a", lambda: calls.append("a")), ("b", lambda: calls.append("b"))]
    results = runtime.compare(actions, number=2, repeat=3)
    assert calls == ["a", "a", "b", "b"] * 3
    assert [name for name, _ in results] == ["a", "b"]
    assert all(seconds > 0 for _, seconds in results)


def test_compare_keeps_the_best_turn(runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = iter([0.0, 5.0, 10.0, 11.0, 20.0, 23.0])  # turns of 5 s, 1 s and 3 s
    monkeypatch.setattr(runtime.time, "perf_counter", lambda: next(ticks))
    assert runtime.compare([("a", lambda: None)], number=1, repeat=3) == [("a", 1.0)]


def test_print_table_scales_and_gives_ratios_against_the_first_line(runtime, capsys) -> None:
    runtime.print_table("title", [("base", 0.002), ("slower", 0.005)], "us", 1e6)
    assert capsys.readouterr().out.splitlines()[2:] == [
        f"  {'base':<44} {2000.0:>10.2f} us  {1.0:>7.2f}x",
        f"  {'slower':<44} {5000.0:>10.2f} us  {2.5:>7.2f}x",
    ]


def tables(out: str) -> dict[str, dict[str, tuple[float, float]]]:
    parsed: dict[str, dict[str, tuple[float, float]]] = {}
    title = ""
    for line in out.splitlines():
        match = LINE.match(line)
        if match:
            parsed[title][match["name"]] = (float(match["value"]), float(match["ratio"]))
        elif line and not line.startswith(("  ", "server:")):
            title = line
            parsed[title] = {}
    return parsed


@pytest.mark.slow
@pytest.mark.postgres
def test_a_tiny_run_prints_every_line_of_every_table(
    runtime, postgres_url, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a full collection before every turn keeps real runs fair; in a test session's big heap
    # it is most of the time and checks nothing
    monkeypatch.setattr(runtime.gc, "collect", lambda: 0)
    runtime.main(["--url", postgres_url, "--rows", "20", "--iterations", "1"])
    found = tables(capsys.readouterr().out)
    required = {
        "checkout + return, one thread": [
            "this pool (liveness check on)",
            "this pool through get_pool() (migrated code)",
            "this pool, reset='DISCARD ALL'",
            "psycopg2 ThreadedConnectionPool",
        ],
        "liveness check alone": [
            "liveness check: poll() on the socket",
            "liveness check: SELECT 1 round trip",
        ],
        "SELECT 1 as execute_sql(fetch=True) runs it": [
            "one persistent connection",
            "this pool",
            "connect per call (legacy)",
        ],
        "fetchall of 20 rows x 10 columns": [
            "plain tuples",
            "Row (RowCursor)",
            "psycopg2 DictCursor",
            "psycopg2 RealDictCursor",
        ],
        "same, beside 600,000 live objects, the collector left to run": [
            "plain tuples",
            "Row (RowCursor, tuples replaced in place)",
            "Row built into a new list",
        ],
    }
    assert list(found) == list(required)
    for title, names in required.items():
        assert list(found[title])[: len(names)] == names
        base = found[title][names[0]][0]
        assert found[title][names[0]][1] == 1.0
        for value, ratio in found[title].values():
            assert value > 0
            # both figures are printed rounded to 0.01: the ratio must fit their ranges
            low, high = (value - 0.005) / (base + 0.005), (value + 0.005) / max(base - 0.005, 1e-9)
            assert low - 0.005 <= ratio <= high + 0.005, (title, value, base, ratio)
