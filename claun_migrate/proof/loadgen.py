"""A closed-loop HTTP load generator: concurrent keep-alive clients for a fixed time.

Each client thread holds one ``http.client`` connection and sends the request mix in turn,
starting at its own offset so that all endpoints run at once. ``{n}`` in a path or body is
replaced by a number unique within the run (for unique e-mail addresses and the like).
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Endpoint:
    """One request of the mix: ``"GET /api/jobs"`` or ``'POST /api/jobs {"title": "x"}'``."""

    method: str
    path: str
    body: str | None = None

    @classmethod
    def parse(cls, spec: str) -> Endpoint:
        method, _, rest = spec.strip().partition(" ")
        path, _, body = rest.strip().partition(" ")
        if not method or not path.startswith("/"):
            raise ValueError(f"endpoint must look like 'GET /path' or 'POST /path JSON': {spec!r}")
        return cls(method.upper(), path, body.strip() or None)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class LoadResult:
    """Counts and latencies (seconds) of one load run."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    warmup_requests: int = 0  # sent untimed before the clock started

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile_ms(self, percent: float) -> float:
        """Latency at ``percent`` (nearest rank) of the successful requests, in milliseconds."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(percent / 100 * len(ordered)) - 1))
        return ordered[rank] * 1000

    def add(self, other: LoadResult) -> None:
        """Count ``other`` (a later round of the same load) into this result."""
        self.seconds += other.seconds
        self.warmup_requests += other.warmup_requests
        self.latencies.extend(other.latencies)
        self.errors += other.errors
        self.error_samples.extend(other.error_samples[: 5 - len(self.error_samples)])

    def to_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "requests_per_second": round(self.requests_per_second, 1),
            "p50_ms": round(self.percentile_ms(50), 3),
            "p95_ms": round(self.percentile_ms(95), 3),
            "p99_ms": round(self.percentile_ms(99), 3),
            "errors": self.errors,
            "error_samples": self.error_samples,
        }


def send(
    conn: http.client.HTTPConnection, endpoint: Endpoint, headers: dict[str, str], n: int
) -> tuple[int, bytes]:
    """Send one request on ``conn`` and read the whole response (keeping the connection)."""
    body = endpoint.body.replace("{n}", str(n)) if endpoint.body else None
    request_headers = {**headers, "Content-Type": "application/json"} if body else headers
    conn.request(endpoint.method, endpoint.path.replace("{n}", str(n)), body, request_headers)
    response = conn.getresponse()
    return response.status, response.read()


def run_load(
    host: str,
    port: int | Sequence[int],
    endpoints: list[Endpoint],
    *,
    duration: float,
    concurrency: int,
    headers: dict[str, str] | None = None,
    warmup: int = 1,
) -> LoadResult:
    """Drive ``endpoints`` from ``concurrency`` keep-alive clients for ``duration`` seconds.

    Each client first sends every endpoint ``warmup`` times, untimed. Responses with a status
    of 400 or more and failed requests count as errors. Given several ports (servers), client
    ``i`` talks to ``port[i % len(port)]``.
    """
    ports = [port] if isinstance(port, int) else list(port)
    headers = headers or {}
    counter = itertools.count()
    lock = threading.Lock()
    result = LoadResult(seconds=duration, warmup_requests=concurrency * len(endpoints) * warmup)
    clock = {"start": 0.0, "deadline": 0.0}

    def start_clock() -> None:
        clock["start"] = time.perf_counter()
        clock["deadline"] = clock["start"] + duration

    ready = threading.Barrier(concurrency + 1, action=start_clock)

    def client(offset: int) -> None:
        latencies: list[float] = []
        errors: list[str] = []
        port = ports[offset % len(ports)]
        conn = http.client.HTTPConnection(host, port, timeout=30)
        order = endpoints[offset % len(endpoints) :] + endpoints[: offset % len(endpoints)]
        try:
            for endpoint in order * warmup:
                send(conn, endpoint, headers, next(counter))
        except (OSError, http.client.HTTPException):
            ready.abort()
            raise
        ready.wait()
        for endpoint in itertools.cycle(order):
            start = time.perf_counter()
            if start >= clock["deadline"]:
                break
            try:
                status, body = send(conn, endpoint, headers, next(counter))
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{endpoint}: {exc!r}")
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
                continue
            if status >= 400:
                errors.append(f"{endpoint}: HTTP {status} {body[:120]!r}")
            else:
                latencies.append(time.perf_counter() - start)
        conn.close()
        with lock:
            result.latencies.extend(latencies)
            result.errors += len(errors)
            result.error_samples.extend(errors[: 5 - len(result.error_samples)])

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        ready.wait(timeout=60)
    except threading.BrokenBarrierError as exc:
        raise RuntimeError(f"a load client could not reach {host}:{ports} in warm-up") from exc
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - clock["start"]
    return result
