"""Count positional row reads (``x[<int>]``) in backends before and after ``claun-migrate apply``.

For each backend folder it counts, outside test code and the shipped runtime copies, every
read by an integer literal subscript (``row[2]``, ``cur.fetchone()[0]``; ``result[0][0]``
counts once, ``result[0]["id"]`` not at all), per file. Then it runs ``claun-migrate apply``
on a temporary copy (flags after ``--`` are passed through, e.g. ``-- --unsafe-fixes``), or
reads a migrated copy given with ``--migrated DIR`` (one backend only), and counts again:
``named`` is the number of reads gone. A backend with a PATTERNS.md beside it (the fixture)
also gets its site table checked: how many ``named`` sites were rewritten and how many others
were left as they are (``unsafe`` sites count as rewritten when ``--unsafe-fixes`` is passed).

Run: ``python benchmarks/named_sites.py [--corpus DIR] [--migrated DIR] [--files] [--json FILE]
[--tool claun-migrate] PATH ... [-- APPLY FLAGS]``. With several backends it prints one line
per repository; ``--files`` (or a single backend) adds the per-file counts. Exit 0 when every
backend was counted, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_corpus import INT_SUBSCRIPT, RUNTIME_COPIES, SKIP_DIRS, is_test, python_files  # noqa: E402

TESTS_DIR = Path(__file__).resolve().parents[1] / "tests"


@dataclass
class Count:
    """One backend: positional reads per file before and after, and the PATTERNS.md check."""

    name: str
    apply: int | None = None
    files: dict[str, list[int]] = field(default_factory=dict)
    patterns: dict[str, list[int]] | None = None
    note: str = ""

    @property
    def before(self) -> int:
        return sum(before for before, _ in self.files.values())

    @property
    def after(self) -> int:
        return sum(after for _, after in self.files.values())


def _is_int_subscript(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Subscript)
        and isinstance(node.slice, ast.Constant)
        and type(node.slice.value) is int
    )


def positional_reads(source: str) -> int:
    """Subscript chains of a module ending in an integer literal (a regex when it does not
    parse): ``result[0][0]`` is one read, ``result[0]["id"]`` none (``[0]`` picks a row)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return len(INT_SUBSCRIPT.findall(source))
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Subscript)}
    return sum(1 for n in ast.walk(tree) if _is_int_subscript(n) and id(n) not in inner)


def count_files(root: Path) -> dict[str, int]:
    """Relative path -> positional reads, outside tests and the runtime copies."""
    counts = {}
    for path in python_files(root):
        if path.name in RUNTIME_COPIES or is_test(path, root):
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        counts[path.relative_to(root).as_posix()] = positional_reads(text)
    return counts


def check_patterns(patterns: Path, migrated: Path, unsafe_fixes: bool) -> dict[str, list[int]]:
    """Verdict -> [sites met, sites] of a PATTERNS.md table, on the migrated copy."""
    sys.path.insert(0, str(TESTS_DIR))
    from fixture_tools import load_sites, site_matches

    rewritten = {"named", "unsafe"} if unsafe_fixes else {"named"}
    met: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for site in load_sites(patterns):
        total[site.verdict] += 1
        try:
            left = site_matches((migrated / site.file).read_text(encoding="utf-8"), site)
        except (OSError, LookupError):
            continue
        met[site.verdict] += (not left) if site.verdict in rewritten else bool(left)
    return {verdict: [met[verdict], total[verdict]] for verdict in total}


def error_lines(stdout: str, stderr: str) -> list[str]:
    """The errors of an ``apply`` run: from its JSON report, else the last line of stderr."""
    try:
        errors = json.loads(stdout).get("errors", [])
        return [f"{Path(e['file']).name}: {e['message']}" for e in errors]
    except (ValueError, AttributeError, KeyError, TypeError):
        return stderr.strip().splitlines()[-1:]


def measure(backend: Path, migrated: Path | None, tool: str, flags: list[str], work: Path) -> Count:
    """Count one backend, running ``apply`` on a copy unless a migrated copy is given."""
    count = Count(name=backend.name if backend.name != "backend" else backend.parent.name)
    if migrated is None:
        migrated = work / "tree"
        shutil.copytree(backend, migrated, symlinks=True, ignore=shutil.ignore_patterns(*SKIP_DIRS))
        env = {**os.environ, "CLAUN_MIGRATE_CACHE_DIR": str(work / "cache"), "NO_COLOR": "1"}
        done = subprocess.run(
            [tool, "apply", "--format", "json", str(migrated), *flags],
            capture_output=True,
            text=True,
            env=env,
        )
        count.apply = done.returncode
        count.note = "; ".join(error_lines(done.stdout, done.stderr))
    before, after = count_files(backend), count_files(migrated)
    count.files = {
        path: [before.get(path, 0), after.get(path, 0)] for path in sorted(set(before) | set(after))
    }
    patterns = backend.parent / "PATTERNS.md"
    if patterns.is_file():
        count.patterns = check_patterns(patterns, migrated, "--unsafe-fixes" in flags)
    return count


def print_counts(counts: list[Count], files: bool) -> None:
    """One line per backend, then per-file counts and PATTERNS.md checks."""
    header = ("backend", "apply", "before", "after", "named", "share")
    lines = [header]
    for c in counts:
        share = f"{(c.before - c.after) / c.before:.0%}" if c.before else "-"
        apply = "-" if c.apply is None else str(c.apply)
        lines.append((c.name, apply, str(c.before), str(c.after), str(c.before - c.after), share))
    before, after = sum(c.before for c in counts), sum(c.after for c in counts)
    lines.append(("total", "", str(before), str(after), str(before - after), ""))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        print(" | ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            print("-+-".join("-" * w for w in widths))
    for c in counts:
        if files:
            for path, (b, a) in c.files.items():
                if b or a:
                    print(f"{c.name}: {path}: {b} -> {a}")
        if c.patterns:
            met = ", ".join(f"{v} {m}/{t}" for v, (m, t) in c.patterns.items())
            print(f"{c.name}: PATTERNS.md verdicts met: {met}")
        if c.note:
            print(f"{c.name}: {c.note}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    flags = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="backend folders")
    parser.add_argument("--corpus", type=Path, help="a folder whose subfolders are backends")
    parser.add_argument("--migrated", type=Path, help="a migrated copy of the one backend given")
    parser.add_argument("--tool", default="claun-migrate", help="the claun-migrate executable")
    parser.add_argument("--files", action="store_true", help="print per-file counts")
    parser.add_argument("--json", type=Path, help="also write the counts to this file")
    args = parser.parse_args(argv)

    backends = list(args.paths)
    if args.corpus:
        if not args.corpus.is_dir():
            print(f"named_sites: {args.corpus}: not a folder", file=sys.stderr)
            return 2
        backends += sorted(p for p in args.corpus.iterdir() if p.is_dir() and python_files(p))
    missing = [str(p) for p in [*backends, args.migrated] if p is not None and not p.is_dir()]
    if missing or not backends:
        reason = f"not a folder: {', '.join(missing)}" if missing else "give backend folders"
        print(f"named_sites: {reason}", file=sys.stderr)
        return 2
    if args.migrated and len(backends) != 1:
        print("named_sites: --migrated needs exactly one backend", file=sys.stderr)
        return 2
    tool = shutil.which(args.tool)
    if tool is None and args.migrated is None:
        print(f"named_sites: {args.tool}: executable not found", file=sys.stderr)
        return 2

    counts = []
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="named-sites-") as tmp:
            counts.append(measure(backend.resolve(), args.migrated, tool or "", flags, Path(tmp)))
    print_counts(counts, args.files or len(counts) == 1)
    if args.json:
        rows = [{**asdict(c), "before": c.before, "after": c.after} for c in counts]
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
