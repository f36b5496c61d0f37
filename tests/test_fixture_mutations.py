"""Proof that the fixture suite pins every column: swap the index of a positional site in a
copy of the backend (``row[1]`` -> ``row[2]``, ``a, b = row`` -> ``b, a = row``) and the suite
must fail on PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fixture_tools import BACKEND_DIR, Site, load_sites, run_backend_suite, site_matches

from claun_migrate.proof.pgserver import create_database, drop_database

SAMPLE_SIZE = 24  # FIXTURE_MUTANTS=all runs every mutant
_INDEX = re.compile(r"^(?P<base>.+)\[(?P<index>\d+)\]$")
_UNPACK = re.compile(r"^(?P<head>for )?(?P<a>\w+), (?P<b>\w+)(?P<rest>.*)$")


def _swap_index(site: Site, siblings: list[int]) -> str | None:
    """``x[i]`` -> ``x[j]`` with j the next proven index of the same row (else the previous)."""
    match = _INDEX.match(site.site)
    if not match or len(siblings) < 2:
        return None
    i = int(match["index"])
    later = [j for j in siblings if j > i]
    j = later[0] if later else max(j for j in siblings if j < i)
    return f"{match['base']}[{j}]"


def _named_indexes(sites: list[Site], site: Site, base: str) -> list[int]:
    """The indexes of ``base[...]`` proven (``named``) in the same function as ``site``."""
    return sorted(
        int(match["index"])
        for other in sites
        if (other.file, other.function, other.verdict) == (site.file, site.function, "named")
        and (match := _INDEX.match(other.site))
        and match["base"] == base
    )


def mutants() -> list[tuple[Site, str]]:
    """(site, mutated code) for every positional site a valid index swap can be made at."""
    sites = load_sites()
    result = []
    for site in sites:
        if site.verdict == "kept" and (match := _UNPACK.match(site.site)):
            head = match["head"] or ""
            result.append((site, f"{head}{match['b']}, {match['a']}{match['rest']}"))
        elif site.verdict == "named" and (match := _INDEX.match(site.site)):
            mutated = _swap_index(site, _named_indexes(sites, site, match["base"]))
            if mutated:
                result.append((site, mutated))
    return result


def sample(items: list, size: int) -> list:
    """``size`` items spread evenly over ``items`` (all of them when there are fewer)."""
    if len(items) <= size:
        return items
    return [items[k * len(items) // size] for k in range(size)]


def _mutated_copy(site: Site | None, code: str, root: Path) -> Path:
    backend = root / "backend"
    shutil.copytree(BACKEND_DIR, backend, ignore=shutil.ignore_patterns("__pycache__", "data"))
    if site is not None:
        path = backend / site.file
        source = path.read_text(encoding="utf-8")
        (match,) = site_matches(source, site)
        path.write_text(source[: match.start()] + code + source[match.end() :], encoding="utf-8")
    return backend


def _suite_order(site: Site | None) -> list[str]:
    """Every test file, the one for the mutated module first, so ``-x`` stops early."""
    files = sorted(
        p.relative_to(BACKEND_DIR).as_posix() for p in BACKEND_DIR.glob("tests/test_*.py")
    )
    if site is None:
        return files
    stem = {"app.py": "auth", "app/routes/admin.py": "stats"}.get(site.file, Path(site.file).stem)
    first = f"tests/test_{stem}.py"
    assert first in files, first
    return [first] + [f for f in files if f != first]


def test_mutants_cover_enough_sites_with_valid_swaps():
    found = mutants()
    assert len(found) >= 20
    assert all(site.site != code for site, code in found)
    assert {site.verdict for site, _ in found} == {"named", "kept"}


@pytest.mark.postgres
@pytest.mark.slow
def test_fixture_suite_kills_index_swaps(postgres_server_url, tmp_path):
    everything = os.environ.get("FIXTURE_MUTANTS") == "all"
    chosen = mutants() if everything else sample(mutants(), SAMPLE_SIZE)

    def run(number: int, site: Site | None, code: str):
        backend = _mutated_copy(site, code, tmp_path / f"m{number}")
        database = create_database(postgres_server_url)
        try:
            return site, code, run_backend_suite(backend, database, ["-x", *_suite_order(site)])
        finally:
            drop_database(database)

    jobs = [(0, None, "")] + [(n, site, code) for n, (site, code) in enumerate(chosen, 1)]
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        outcomes = list(pool.map(lambda job: run(*job), jobs))

    (_, _, baseline), *results = outcomes
    assert baseline.ok, baseline.output
    survivors = [(site, code) for site, code, result in results if not result.failed]
    killed = len(results) - len(survivors)
    print(f"\nmutation kill rate: {killed}/{len(results)} = {killed / len(results):.0%}")
    assert survivors == []
