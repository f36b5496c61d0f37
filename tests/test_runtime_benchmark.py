"""benchmarks/runtime.py still runs (tiny sizes): the benchmark cannot rot unnoticed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "runtime.py"


@pytest.mark.postgres
def test_runtime_benchmark_prints_every_table(postgres_url, capsys):
    spec = importlib.util.spec_from_file_location("runtime_benchmark", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    module.main(["--url", postgres_url, "--rows", "50", "--iterations", "3"])

    out = capsys.readouterr().out
    for line in [
        "this pool (liveness check on)",
        "psycopg2 ThreadedConnectionPool",
        "liveness check: poll() on the socket",
        "connect per call (legacy)",
        "psycopg2 RealDictCursor",
    ]:
        assert line in out
