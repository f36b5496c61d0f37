"""benchmarks/real_corpus.py and real_backend.py measure what they claim, on our own fixture."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "fixtures" / "legacy_backend" / "backend"
TOOL = str(Path(sys.executable).with_name("claun-migrate"))


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_connect_count_follows_aliases_and_bare_imports_and_skips_runtime_and_tests(tmp_path):
    corpus = load("real_corpus")
    root = write(
        tmp_path,
        {
            "store.py": "import psycopg2 as pg\ndef a(): return pg.connect('x')\n",
            "plain.py": "from sqlite3 import connect\ndef b(): return connect('f.db')\n",
            "both.py": "import sqlite3, psycopg2\nx = sqlite3.connect(':memory:')\n"
            "y = psycopg2.connect(dsn)\nz = other.connect()\n",
            "app/services/db_pool.py": "import psycopg2\npsycopg2.connect('x')\n",
            "tests/conftest.py": "import sqlite3\nsqlite3.connect('t.db')\n",
        },
    )
    assert corpus.measure(root)[0] == 4


def test_subscript_counts_separate_positional_and_named(tmp_path):
    corpus = load("real_corpus")
    root = write(tmp_path, {"m.py": "a = r[0] + r[9] + r[10]\nb = r['x'] + r[\"y_1\"] + r[k]\n"})
    assert corpus.measure(root)[1:] == (2, 2)


def test_an_added_import_of_a_missing_module_of_the_tree_is_unresolved(tmp_path):
    corpus = load("real_corpus")
    root = write(
        tmp_path,
        {"app.py": "", "app/__init__.py": "", "app/services/database.py": "", "pkg/mod.py": ""},
    )
    importer = root / "app.py"
    assert corpus.resolves(root, importer, 0, "app.services.database")
    assert not corpus.resolves(root, importer, 0, "app.services.db_sqlite")
    assert corpus.resolves(root, importer, 0, "flask")
    write(root, {"app/services/__init__.py": "", "app/services/db_rows.py": ""})
    assert corpus.resolves(root, root / "app/services/database.py", 1, "db_rows")
    assert corpus.resolves(root, root / "app/services/database.py", 2, "services.db_rows")
    assert not corpus.resolves(root, root / "app/services/database.py", 1, "db_pool")


def test_a_relative_import_outside_a_package_is_unresolved(tmp_path):
    """A flat app: db_sqlite.py beside app.py cannot import ``.db_rows``."""
    corpus = load("real_corpus")
    root = write(tmp_path, {"app.py": "", "db_sqlite.py": "", "db_rows.py": ""})
    assert not corpus.resolves(root, root / "db_sqlite.py", 1, "db_rows")
    assert corpus.resolves(root, root / "db_sqlite.py", 0, "db_rows")


def test_a_relative_import_in_a_namespace_folder_of_a_package_resolves(tmp_path):
    corpus = load("real_corpus")
    root = write(
        tmp_path, {"shop/__init__.py": "", "shop/utils/db.py": "", "shop/utils/db_pool.py": ""}
    )
    assert corpus.resolves(root, root / "shop/utils/db.py", 1, "db_pool")
    flat = write(tmp_path / "flat", {"utils/db.py": "", "utils/db_pool.py": ""})
    assert not corpus.resolves(flat, flat / "utils/db.py", 1, "db_pool")


def test_corpus_run_on_the_fixture_reports_a_clean_idempotent_migration(tmp_path):
    out = tmp_path / "rows.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/real_corpus.py"), "--tool", TOOL, str(FIXTURE)]
        + ["--json", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(out.read_text())
    assert row["check"] == 1 and row["apply"] == 0 and row["check_after"] == 0
    assert row["changed"] and row["idempotent"]
    assert row["broken_compile"] == [] and row["unresolved_imports"] == []
    assert row["connect_before"] > row["connect_after"] == 0
    assert row["verdict"] == "migrated"
    assert "legacy_backend | 1" in done.stdout


def test_corpus_run_flags_an_import_the_run_left_dangling(tmp_path):
    """A tool that writes an import of a file it never wrote is caught (here: a fake tool)."""
    fake = write(
        tmp_path / "bin",
        {
            "claun-migrate": "#!/bin/sh\n"
            'if [ "$1" = apply ] && ! grep -q db_gone "$2/app.py"; then\n'
            '  echo "from app.db_gone import x" >> "$2/app.py"\n'
            "fi\n",
        },
    )
    (fake / "claun-migrate").chmod(0o755)
    backend = write(tmp_path / "b", {"app.py": "import sqlite3\n", "app/__init__.py": ""})
    out = tmp_path / "rows.json"
    subprocess.run(
        [sys.executable, str(REPO / "benchmarks/real_corpus.py"), str(backend)]
        + ["--tool", str(fake / "claun-migrate"), "--json", str(out)],
        check=True,
        capture_output=True,
    )
    (row,) = json.loads(out.read_text())
    assert row["unresolved_imports"] == ["app.py: app.db_gone"]
    assert row["changed"] == ["app.py"] and row["idempotent"]
    assert row["verdict"] == "broken"


def test_corpus_rejects_a_missing_folder(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/real_corpus.py"), str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "not a folder" in done.stderr


@pytest.mark.slow
@pytest.mark.postgres
def test_backend_run_on_the_fixture_drives_both_sides_on_both_databases(postgres_server_url):
    pytest.importorskip("flask")
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/real_backend.py"), str(FIXTURE), "--apply"]
        + ["--tool", TOOL, "--register", "/api/auth/register", "--login", "/api/auth/login"],
        capture_output=True,
        text=True,
        env={**os.environ, "CLAUN_TEST_DATABASE_URL": postgres_server_url},
        timeout=600,
    )
    rows = {
        tuple(cell.strip() for cell in line.split("|")[:2]): line.split("|")[2:5]
        for line in done.stdout.splitlines()
        if line.startswith(("postgresql", "sqlite"))
    }
    ok = ["201", "200", "200"]
    assert [c.strip() for c in rows["postgresql", "legacy"]] == ok, done.stdout
    assert [c.strip() for c in rows["postgresql", "migrated"]] == ok, done.stdout
    assert [c.strip() for c in rows["sqlite", "migrated"]] == ok, done.stdout
    assert [c.strip() for c in rows["sqlite", "legacy"]][0] == "500"
    assert 'near "%"' in done.stdout
    assert done.returncode == 1  # the legacy SQLite side fails, as it does in production


def test_backend_run_names_a_missing_backend_dependency(tmp_path):
    backend = write(tmp_path, {"app.py": "import flask_not_installed_anywhere\n"})
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/real_backend.py"), str(backend), "--db", "sqlite"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "flask_not_installed_anywhere" in done.stderr and "not installed" in done.stderr


def test_backend_run_rejects_a_folder_without_the_entry_file(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/real_backend.py"), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "app.py" in done.stderr


def test_shutil_which_finds_the_tool_of_this_venv():
    assert shutil.which(TOOL), "claun-migrate must be installed in the test venv"


def test_named_sites_counts_chains_ending_in_an_integer_once():
    sites = load("named_sites")
    source = "a = r[0] + res[0][0] + res[0]['id'] + r[k] + r[0:2] + f()[9]\nb = r[-1]\n"
    assert sites.positional_reads(source) == 3
    assert sites.positional_reads("x = r[0] +\n") == 1  # does not parse: the regex counts


def test_named_sites_compares_a_backend_with_its_migrated_copy_per_file(tmp_path):
    legacy = write(
        tmp_path / "legacy",
        {"app.py": "x = row[0] + row[1]\n", "db.py": "y = rows[0][0]\n", "tests/t.py": "r[0]\n"},
    )
    migrated = write(
        tmp_path / "migrated",
        {"app.py": "x = row['id'] + row[1]\n", "db.py": "y = rows[0]['n']\n", "tests/t.py": ""},
    )
    out = tmp_path / "counts.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/named_sites.py"), str(legacy)]
        + ["--migrated", str(migrated), "--json", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(out.read_text())
    assert row["files"] == {"app.py": [2, 1], "db.py": [1, 0]}
    assert (row["before"], row["after"], row["apply"], row["patterns"]) == (3, 1, None, None)
    assert "legacy: db.py: 1 -> 0" in done.stdout


def test_named_sites_on_the_fixture_checks_every_patterns_verdict(tmp_path):
    sys.path.insert(0, str(REPO / "tests"))
    from fixture_tools import load_sites

    out = tmp_path / "counts.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/named_sites.py"), str(FIXTURE)]
        + ["--tool", TOOL, "--json", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(out.read_text())
    verdicts = Counter(site.verdict for site in load_sites())
    assert {v: total for v, (_, total) in row["patterns"].items()} == verdicts
    named, _ = row["patterns"]["named"]
    assert row["apply"] == 0 and row["before"] - row["after"] >= named > 0
    assert row["patterns"]["kept"] == [verdicts["kept"]] * 2
    assert "PATTERNS.md verdicts met: named" in done.stdout


def test_named_sites_rejects_a_missing_folder(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/named_sites.py"), str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "not a folder" in done.stderr
