"""pytest fixtures for a real PostgreSQL: ``postgres_server_url`` and ``postgres_url``.

``CLAUN_TEST_DATABASE_URL`` points the tests at an existing server; otherwise one embedded
server is started per test session. Each test module gets its own fresh database. When the
server cannot be had the tests are skipped, unless ``CLAUN_REQUIRE_POSTGRES=1`` (as in CI),
where they fail loudly instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from claun_migrate.proof.pgserver import PostgresUnavailable, create_database, postgres_server


def _unavailable(reason: str) -> None:
    if os.environ.get("CLAUN_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL required (CLAUN_REQUIRE_POSTGRES=1) but unavailable: {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of the maintenance database of a PostgreSQL server for this session."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server(os.environ.get("CLAUN_TEST_DATABASE_URL")))
        except (PostgresUnavailable, OSError) as exc:
            _unavailable(str(exc))
            raise
        yield url


@pytest.fixture(scope="module")
def postgres_url(postgres_server_url: str) -> str:
    """URL of a database created for this test module alone."""
    try:
        return create_database(postgres_server_url)
    except Exception as exc:  # psycopg2.Error and socket errors alike
        _unavailable(str(exc))
        raise
