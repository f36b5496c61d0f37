import psycopg2
import pytest

from claun_migrate.proof.pgserver import EmbeddedPostgres


@pytest.mark.postgres
def test_each_module_gets_its_own_empty_database(postgres_url: str) -> None:
    with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert cur.fetchone() == (0,)
        cur.execute("SELECT current_database()")
        assert cur.fetchone()[0].startswith("claun_")


@pytest.mark.postgres
def test_scram_server_rejects_a_wrong_password() -> None:
    with EmbeddedPostgres(auth="scram") as server:
        url = server.url()
        psycopg2.connect(url).close()
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(url.replace(server.password, "wrong"))
