"""The legacy fixture backend: its own suite passes on SQLite and PostgreSQL, and PATTERNS.md
(the oracle of the codemods) matches its code."""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator

import pytest
from fixture_tools import BACKEND_DIR, VERDICTS, load_sites, run_backend_suite, site_matches

TESTS_ON_SQLITE = 40
POSTGRES_ONLY_TESTS = 79


@pytest.fixture(scope="module")
def sqlite_run():
    return run_backend_suite(BACKEND_DIR, None)


def test_fixture_suite_passes_on_sqlite_and_skips_postgres_only_tests(sqlite_run):
    assert sqlite_run.ok, sqlite_run.output
    assert len(sqlite_run.passed) == TESTS_ON_SQLITE
    assert len(sqlite_run.skipped) == POSTGRES_ONLY_TESTS


def test_postgres_only_tests_really_fail_on_legacy_sqlite(sqlite_run):
    forced = run_backend_suite(BACKEND_DIR, None, ["--tb=no"], env={"FIXTURE_RUN_ALL": "1"})
    assert set(forced.failed) == set(sqlite_run.skipped)
    assert set(forced.passed) == set(sqlite_run.passed)


@pytest.mark.postgres
def test_fixture_suite_passes_on_postgres(postgres_url):
    result = run_backend_suite(BACKEND_DIR, postgres_url)
    assert result.ok, result.output
    assert len(result.passed) == TESTS_ON_SQLITE + POSTGRES_ONLY_TESTS
    assert result.skipped == ()


@pytest.mark.postgres
def test_fixture_suite_can_run_twice_on_the_same_database(postgres_url):
    assert run_backend_suite(BACKEND_DIR, postgres_url, ["-x", "tests/test_jobs.py"]).ok
    assert run_backend_suite(BACKEND_DIR, postgres_url, ["-x", "tests/test_jobs.py"]).ok


def test_patterns_list_enough_sites_shapes_and_verdicts():
    sites = load_sites()
    verdicts = Counter(site.verdict for site in sites)
    assert len(sites) >= 40
    assert len({site.shape for site in sites}) >= 8
    assert set(verdicts) <= set(VERDICTS)
    assert verdicts["named"] >= 25
    assert all(verdicts[verdict] >= 2 for verdict in VERDICTS), verdicts
    assert [site.number for site in sites] == list(range(1, len(sites) + 1))


def test_every_pattern_site_occurs_once_in_its_function():
    for site in load_sites():
        source = (BACKEND_DIR / site.file).read_text(encoding="utf-8")
        assert len(site_matches(source, site)) == 1, site


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef]]:
    """Top-level functions by name, methods of top-level classes as ``Class.method``."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for method in node.body:
                if isinstance(method, ast.FunctionDef):
                    yield f"{node.name}.{method.name}", method


def _int_subscripts(tree: ast.Module) -> Iterator[tuple[str, ast.Subscript, ast.AST]]:
    """(function, outermost ``x[<int>]`` node, parent) for every integer subscript."""
    for name, function in _functions(tree):
        for parent in ast.walk(function):
            for node in ast.iter_child_nodes(parent):
                if (
                    isinstance(node, ast.Subscript)
                    and isinstance(node.slice, ast.Constant)
                    and isinstance(node.slice.value, int)
                    and not (isinstance(parent, ast.Subscript) and parent.value is node)
                ):
                    yield name, node, parent


def test_every_integer_subscript_in_the_backend_is_a_listed_site():
    sites = load_sites()
    for path in [BACKEND_DIR / "app.py", *sorted((BACKEND_DIR / "app").rglob("*.py"))]:
        relative = path.relative_to(BACKEND_DIR).as_posix()
        source = path.read_text(encoding="utf-8")
        for function, node, parent in _int_subscripts(ast.parse(source)):
            code = ast.get_source_segment(source, node)
            if (
                code.endswith("[0]")
                and isinstance(node.value, ast.Name)
                and (isinstance(parent, ast.Assign) and isinstance(parent.targets[0], ast.Name))
            ):
                continue  # row selection such as `user = rows[0]`: its column accesses are listed
            assert any(
                s.file == relative and s.function == function and code in s.site for s in sites
            ), (relative, function, code)
