"""How fast is claun-migrate, per core and on a big codebase, next to libcst?

First, per core: ``claun-migrate check --no-cache -j 1`` (its CPU time, start-up included) on
trees where the tool parses every file it reads for the data layer: the bundled fixture
backend, and a synthetic tree where every module uses the data layer (``--dense-files``).
Beside it, in the same run, libcst's own parse and print of exactly the files the check
parses (the floor for any libcst codemod): lines per second per core and the ratio, best of
``--repeat`` runs each.

Then, on a big codebase, it generates a synthetic backend (by default 1,000 files, about
300,000 lines, 20 of which use the data layer, plus ``app/services/database.py``) in a
temporary folder, then times in one run, with the same number of processes:

- ``claun-migrate check`` and ``claun-migrate diff`` on the legacy tree, with ``--no-cache``
  (libcst's runner has no cache, so both sides do all the work);
- ``python -m libcst.tool codemod`` running each of the same codemods on a copy;
- ``claun-migrate check`` on the tree ``apply`` migrated (the idempotent second run), as a user
  runs it (the cache that ``apply`` filled) and with ``--no-cache``.

The cache goes to a folder inside the temporary one, so earlier runs cannot help.

Run: ``python benchmarks/tool_speed.py [--files 1000] [--lines 300] [--data-files 20] [-j N]
[--dense-files 100] [--repeat 3] [--per-core-only]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The legacy fixture backend's data layer, which the synthetic modules call.
DATABASE = (REPO / "fixtures/legacy_backend/backend/app/services/database.py").read_text(
    encoding="utf-8"
)

DATA_FUNCTION = '''

def user_{i}(user_id):
    """Load user {i} as the API returns it"""
    rows = execute_sql("SELECT id, email, name FROM users WHERE id = %s", (user_id,), fetch=True)
    if not rows:
        return None
    row = rows[0]
    return {{"id": row[0], "email": row[1], "name": row[2], "rank": {i}}}
'''

PLAIN_FUNCTION = '''

class Widget{i}:
    """A plain class of module {m}: no data layer here"""

    def __init__(self, size, label="w{i}"):
        self.size = size
        self.label = label
        self.history = []

    def grow(self, amount):
        if amount < 0:
            raise ValueError("amount must be positive")
        self.history.append(amount)
        self.size += amount
        return self.size

    def describe(self):
        parts = [f"{{key}}={{value}}" for key, value in sorted(vars(self).items())]
        return "Widget{i}(" + ", ".join(parts) + ")"


def compute_{i}(values, factor={i}):
    """Scale and filter values for report {m}"""
    total = 0
    for index, value in enumerate(values):
        if index % 3 == 0:
            continue
        total += value * factor
    return [v for v in values if v > total / max(len(values), 1)]
'''


def generate(root: Path, files: int, lines: int, data_files: int) -> int:
    """Write the synthetic tree under ``root``; return the number of lines written."""
    (root / "app/services").mkdir(parents=True)
    for package in ("app", "app/services"):
        (root / package / "__init__.py").write_text("")
    (root / "app/services/database.py").write_text(DATABASE)
    total = DATABASE.count("\n")
    every = max(1, files // max(data_files, 1))
    for m in range(files):
        uses_data = data_files and m % every == 0 and m // every < data_files
        folder = root / "app" / f"pkg{m // 50}"
        folder.mkdir(exist_ok=True)
        (folder / "__init__.py").touch()
        text = f'"""Module {m} of the synthetic backend"""\n\nimport json\nimport os\n'
        if uses_data:
            text += "\nfrom app.services.database import execute_sql\n"
        i = 0
        while text.count("\n") < lines:
            template = DATA_FUNCTION if uses_data and i % 4 == 0 else PLAIN_FUNCTION
            text += template.format(i=i, m=m)
            i += 1
        (folder / f"module_{m}.py").write_text(text)
        total += text.count("\n")
    return total


def timed(command: list[str], cwd: Path, ok: tuple[int, ...] = (0, 1)) -> float:
    """Seconds ``command`` took; fails loudly on an unexpected exit code."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "CLAUN_MIGRATE_CACHE_DIR": str(cwd / "cache")}
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode not in ok:
        output = (proc.stdout + proc.stderr)[-3000:]
        raise SystemExit(f"{' '.join(command)} exited {proc.returncode}:\n{output}")
    return seconds


def child_cpu(command: list[str], cwd: Path, ok: tuple[int, ...] = (0, 1)) -> float:
    """CPU seconds (user + system) ``command`` took, start-up included."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    timed(command, cwd, ok)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def parsed_texts(tree: Path) -> list[str]:
    """The texts ``check`` parses on ``tree`` (recorded from one untimed in-process run)."""
    sys.path.insert(0, str(REPO))
    import libcst

    from claun_migrate.engine import migrate

    texts: list[str] = []
    parse = libcst.parse_module

    def recording(text: str, *args: object, **kwargs: object) -> libcst.Module:
        texts.append(text)
        return parse(text, *args, **kwargs)  # type: ignore[arg-type]

    libcst.parse_module = recording  # type: ignore[assignment]
    try:
        migrate([tree], jobs=1)
    finally:
        libcst.parse_module = parse
    return texts


def parse_print_cpu(texts: list[str]) -> float:
    """CPU seconds libcst takes to parse and print ``texts``."""
    import libcst

    start = time.process_time()
    for text in texts:
        assert libcst.parse_module(text).code == text
    return time.process_time() - start


def per_core(name: str, tree: Path, work: Path, repeat: int) -> None:
    """Print lines/s per core of ``check`` on ``tree`` beside libcst's parse and print."""
    texts = parsed_texts(tree)
    lines = sum(text.count("\n") for text in texts)
    command = [sys.executable, "-m", "claun_migrate", "check", "-j", "1", "--no-cache", str(tree)]
    check = min(child_cpu(command, work) for _ in range(repeat))
    floor = min(parse_print_cpu(texts) for _ in range(repeat))
    print(
        f"{name}: {len(texts)} files parsed, {lines} lines; check {check:.2f} s CPU = "
        f"{lines / check:,.0f} lines/s per core; libcst parse+print {floor:.2f} s = "
        f"{lines / floor:,.0f} lines/s; check / parse+print: {check / floor:.1f}x"
    )


def libcst_commands() -> list[str]:
    """``module.Class`` of each codemod the engine runs, in its order."""
    sys.path.insert(0, str(REPO))
    from claun_migrate.codemods import CODEMODS

    return [f"{c.__module__.rsplit('.', 1)[1]}.{c.__name__}" for c in CODEMODS.values()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=300, help="lines per file")
    parser.add_argument("--data-files", type=int, default=20)
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--dense-files", type=int, default=100, help="modules of the dense tree")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each per-core timing")
    parser.add_argument("--per-core-only", action="store_true", help="skip the big codebase")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="claun-core-") as tmp:
        work = Path(tmp)
        print(f"per core (best of {args.repeat}; {platform.machine()}, {os.cpu_count()} CPUs):")
        fixture = REPO / "fixtures/legacy_backend/backend"
        shutil.copytree(fixture, work / "fixture")
        per_core("fixture backend", work / "fixture", work, args.repeat)
        generate(work / "dense", args.dense_files, args.lines, args.dense_files)
        per_core("every module uses the data layer", work / "dense", work, args.repeat)
    if args.per_core_only:
        return
    claun = [sys.executable, "-m", "claun_migrate"]
    jobs = ["-j", str(args.jobs)]
    cold = [*jobs, "--no-cache"]
    with tempfile.TemporaryDirectory(prefix="claun-speed-") as tmp:
        work = Path(tmp)
        legacy = work / "legacy"
        total = generate(legacy, args.files, args.lines, args.data_files)
        print(f"synthetic tree: {args.files + 1} modules, {total} lines, {args.data_files} use")
        print(f"the data layer; {args.jobs} processes; {platform.machine()}, {os.cpu_count()} CPUs")
        times = {
            "claun-migrate check": timed([*claun, "check", *cold, str(legacy)], work),
            "claun-migrate diff": timed([*claun, "diff", *cold, str(legacy)], work),
        }
        shutil.copytree(legacy, work / "libcst")
        timed([sys.executable, "-m", "libcst.tool", "initialize", str(work)], work, ok=(0,))
        config = work / ".libcst.codemod.yaml"
        ours = "'claun_migrate.codemods'"
        config.write_text(config.read_text().replace("'libcst.codemod.commands'", ours))
        libcst = 0.0
        for command in libcst_commands():
            libcst += timed(
                [sys.executable, "-m", "libcst.tool", "codemod", f"-j{args.jobs}", "--no-format"]
                + ["--hide-progress", command, str(work / "libcst")],
                work,
                ok=(0,),
            )
        times["libcst.tool codemod (all codemods)"] = libcst
        migrated = work / "migrated"
        shutil.copytree(legacy, migrated)
        timed([*claun, "apply", *jobs, str(migrated)], work)
        times["second run: check on migrated"] = timed(
            [*claun, "check", *jobs, str(migrated)], work, ok=(0,)
        )
        times["second run: check --no-cache"] = timed(
            [*claun, "check", *cold, str(migrated)], work, ok=(0,)
        )
    width = max(map(len, times))
    for name, seconds in times.items():
        print(f"{name:<{width}}  {seconds:8.2f} s")
    check = times["claun-migrate check"]
    print(f"libcst.tool / claun-migrate check: {libcst / check:.1f}x")
    print(f"libcst.tool / claun-migrate diff:  {libcst / times['claun-migrate diff']:.1f}x")
    print(
        f"second run on the migrated tree: {times['second run: check on migrated']:.2f} s"
        f" ({times['second run: check --no-cache']:.2f} s with --no-cache)"
    )


if __name__ == "__main__":
    main()
