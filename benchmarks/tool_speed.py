"""How fast is claun-migrate on a big codebase, next to libcst's own codemod runner?

Generates a synthetic backend (by default 1,000 files, about 300,000 lines, 20 of which use
the data layer, plus ``app/services/database.py``) in a temporary folder, then times in one
run, with the same number of processes:

- ``claun-migrate check`` and ``claun-migrate diff`` on the legacy tree, with ``--no-cache``
  (libcst's runner has no cache, so both sides do all the work);
- ``python -m libcst.tool codemod`` running each of the same codemods on a copy;
- ``claun-migrate check`` on the tree ``apply`` migrated (the idempotent second run), as a user
  runs it (the cache that ``apply`` filled) and with ``--no-cache``.

The cache goes to a folder inside the temporary one, so earlier runs cannot help.

Run: ``python benchmarks/tool_speed.py [--files 1000] [--lines 300] [--data-files 20] [-j N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
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
    args = parser.parse_args(argv)
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
