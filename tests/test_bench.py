import importlib.util
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from claun_migrate.cli import main
from claun_migrate.proof.bench import turns
from claun_migrate.proof.loadgen import Endpoint, LoadResult, run_load
from claun_migrate.proof.wsgi_serve import make_server

FIXTURE = Path(__file__).parent.parent / "fixtures/legacy_backend/backend"
BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


@pytest.fixture
def counting_server() -> Iterator[tuple[int, set[int]]]:
    """The bench's server answering 404 on /missing; yields its port and the client ports seen."""
    clients: set[int] = set()

    def app(environ: dict, start_response) -> list[bytes]:  # type: ignore[no-untyped-def]
        clients.add(int(environ["REMOTE_PORT"]))
        status = "404 Not Found" if environ["PATH_INFO"] == "/missing" else "200 OK"
        start_response(status, [("Content-Length", "2")])
        return [b"ok"]

    server = make_server(app, threads=4)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server.bind_addr[1], clients
    server.stop()


def test_endpoint_parse_reads_method_path_and_json_body() -> None:
    endpoint = Endpoint.parse('post /api/jobs {"title": "t{n}"}')
    assert endpoint == Endpoint("POST", "/api/jobs", '{"title": "t{n}"}')
    with pytest.raises(ValueError, match="GET /path"):
        Endpoint.parse("GET api/jobs")


def test_percentiles_use_the_nearest_rank() -> None:
    result = LoadResult(seconds=1.0, latencies=[i / 1000 for i in range(1, 101)])
    assert (result.percentile_ms(50), result.percentile_ms(99)) == (50.0, 99.0)
    assert result.requests_per_second == 100


def test_each_client_keeps_one_connection_and_error_statuses_count(
    counting_server: tuple[int, set[int]],
) -> None:
    port, clients = counting_server
    endpoints = [Endpoint("GET", "/ok"), Endpoint("GET", "/missing")]
    result = run_load("127.0.0.1", port, endpoints, duration=0.3, concurrency=3)
    assert len(clients) == 3
    assert result.errors > 0 and result.latencies
    assert abs(result.errors - len(result.latencies)) <= 3
    assert "HTTP 404" in result.error_samples[0]


@pytest.mark.postgres
def test_bench_under_cheroot_serves_the_fixture_before_and_after_with_no_errors(
    postgres_server_url: str,
) -> None:
    args = ["bench", str(FIXTURE), "--duration", "1", "--concurrency", "2", "--pool-size", "4"]
    args += ["--server", "cheroot", "--no-limit"]
    args += ["--database-url", postgres_server_url, "--format", "json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    before, after = report["before"], report["after"]
    assert before["errors"] == after["errors"] == 0
    assert before["requests"] > 0 and after["requests"] > 0
    # connect-per-call opens at least one connection per request; the pool at most its size
    assert before["connections_opened"] >= before["requests"]
    assert 1 <= after["connections_opened"] <= 4
    assert after["peak_server_connections"] <= report["server_connection_bound"] == 4
    assert report["settings"]["sides"] == ["before", "after"]
    assert report["speedup"] == pytest.approx(
        after["requests_per_second"] / before["requests_per_second"], rel=0.05
    )


def test_tool_speed_benchmark_runs_on_a_tiny_tree(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("tool_speed", BENCHMARKS / "tool_speed.py")
    assert spec and spec.loader
    tool_speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool_speed)
    tool_speed.main(["--files", "3", "--lines", "30", "--data-files", "1", "-j", "1"])
    out = capsys.readouterr().out
    assert "4 modules" in out
    assert "libcst.tool / claun-migrate check:" in out
    assert "second run on the migrated tree:" in out


def test_turns_give_each_side_every_round_and_more_than_one_predecessor() -> None:
    labels = ["before", "after", "limit"]
    order = turns(labels, 6)
    assert len(order) == 18 and all(order.count(label) == 6 for label in labels)
    rounds = [order[i : i + 3] for i in range(0, 18, 3)]
    assert all(sorted(r) == sorted(labels) for r in rounds)
    predecessors = {order[i - 1] for i in range(1, 18) if order[i] == "after"}
    assert predecessors - {"after"} == {"before", "limit"}
