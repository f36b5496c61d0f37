"""Run claun-migrate on real backends as a new user would, and tabulate what it did.

For each backend (a folder: a repository export or its backend folder) it works on a copy in a
temporary folder and records: ``check`` (exit), ``apply`` (exit, files changed), a second
``apply`` (must change nothing), ``check`` after (exit), the verdict (``broken``: a file no
longer compiles or an added import resolves to nothing; else ``identical``: nothing written;
``migrated``: written and no connect-per-call left; ``partial``: written, some left),
files that no longer compile (compiled before, not after), imports the run added that resolve to
no file of the tree, and grep-level counts before -> after, outside test code and the shipped
runtime copies: connect calls (``psycopg2.connect``/``sqlite3.connect``, also through an alias
or a bare imported ``connect``), integer subscripts ``[0]``..``[9]`` and named ones ``["x"]``.
Nothing here knows any particular repository.

Run: ``python benchmarks/real_corpus.py [--tool claun-migrate] [--corpus DIR] [PATH ...]``
(``--corpus DIR``: every subfolder of DIR is one backend). ``--json FILE`` also writes the
rows as JSON. Exit 0 when every backend was run (whatever the tool did), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

RUNTIME_COPIES = {"db_pool.py", "db_rows.py", "db_sqlite.py"}
SKIP_DIRS = {".git", ".venv", "venv", "env", "node_modules", "__pycache__", ".tox", "build", "dist"}
DRIVERS = {"psycopg2", "sqlite3"}
INT_SUBSCRIPT = re.compile(r"\[[0-9]\]")
NAMED_SUBSCRIPT = re.compile(r"\[\s*(['\"])\w+\1\s*\]")


@dataclass
class Row:
    """One backend's results."""

    name: str
    check: int | None = None
    apply: int | None = None
    changed: list[str] = field(default_factory=list)
    apply2: int | None = None
    idempotent: bool | None = None
    check_after: int | None = None
    verdict: str = ""
    findings: int | None = None
    errors: int | None = None
    broken_compile: list[str] = field(default_factory=list)
    unresolved_imports: list[str] = field(default_factory=list)
    connect_before: int = 0
    connect_after: int = 0
    int_before: int = 0
    int_after: int = 0
    named_before: int = 0
    named_after: int = 0
    note: str = ""


def python_files(root: Path) -> list[Path]:
    """The .py files of a tree, without VCS, virtualenv and build folders."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        found += [Path(dirpath, f) for f in sorted(filenames) if f.endswith(".py")]
    return found


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> content hash of every file of the tree."""
    digests = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in {"__pycache__"}]
        for name in filenames:
            path = Path(dirpath, name)
            digests[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def compiles(path: Path) -> bool:
    """Whether the file compiles (nothing is written)."""
    try:
        compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def connect_calls(source: bytes) -> int:
    """Calls of psycopg2/sqlite3 ``connect`` in one module (ast; a regex if it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        text = source.decode("utf-8", "replace")
        return len(re.findall(r"\b(?:psycopg2|sqlite3)\.connect\(", text))
    modules = set(DRIVERS)
    bare = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.name in DRIVERS and a.asname}
        elif isinstance(node, ast.ImportFrom) and node.module in DRIVERS:
            bare |= {a.asname or a.name for a in node.names if a.name == "connect"}
    count = 0
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "connect":
            if isinstance(func.value, ast.Name) and func.value.id in modules:
                count += 1
        elif isinstance(func, ast.Name) and func.id in bare:
            count += 1
    return count


def is_test(path: Path, root: Path) -> bool:
    """Test code (which may connect directly to set up): test folders, test_*.py, conftest.py."""
    parts = path.relative_to(root).parts
    return (
        path.name == "conftest.py"
        or path.name.startswith("test_")
        or any(p in {"tests", "test"} for p in parts[:-1])
    )


def measure(root: Path) -> tuple[int, int, int]:
    """Connect calls, integer and named subscripts, outside tests and the runtime copies."""
    connects = ints = named = 0
    for path in python_files(root):
        if path.name in RUNTIME_COPIES or is_test(path, root):
            continue
        source = path.read_bytes()
        text = source.decode("utf-8", "replace")
        connects += connect_calls(source)
        ints += len(INT_SUBSCRIPT.findall(text))
        named += len(NAMED_SUBSCRIPT.findall(text))
    return connects, ints, named


def imported_modules(source: bytes) -> set[tuple[int, str]]:
    """(level, module) of every ``from X import``/``import X`` in a module, except those in a
    ``try`` whose handler catches ImportError (the import that may fail, with its fallback)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            h.type is None or "ImportError" in ast.unparse(h.type) for h in node.handlers
        ):
            guarded |= {id(n) for statement in node.body for n in ast.walk(statement)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.ImportFrom):
            found.add((node.level, node.module or ""))
        elif isinstance(node, ast.Import):
            found |= {(0, a.name) for a in node.names}
    return found


def _in_package(folder: Path, namespace_levels: int = 3) -> bool:
    """``folder`` is a package, or a namespace folder up to ``namespace_levels`` below one."""
    return any(
        (above / "__init__.py").is_file()
        for above in [folder, *folder.parents][: namespace_levels + 1]
    )


def resolves(root: Path, importer: Path, level: int, module: str) -> bool:
    """Whether an import names a module or package of the tree, or something outside it.

    A relative import also needs its file inside a package (every folder it climbs a package,
    or a namespace folder that a package holds, as ``shop/utils`` in package ``shop``): in a
    flat app, ``from .db_rows import x`` fails when the module is imported as a top-level one.
    """
    parts = module.split(".") if module else []
    if level:
        climbed = [importer.parent, *importer.parent.parents][:level]
        if not all(_in_package(folder) for folder in climbed):
            return False
        bases = [climbed[-1]]
    else:
        bases = [importer.parent, *[p for p in importer.parents if root in (p, *p.parents)]]
        top = parts[0] if parts else ""
        if not any((b / top).is_dir() or (b / f"{top}.py").is_file() for b in bases):
            return True  # not a module of this tree: an installed package, not our business
    for base in bases:
        target = base.joinpath(*parts)
        if not parts or target.with_suffix(".py").is_file() or (target / "__init__.py").is_file():
            return True
        if target.is_dir():
            return True  # namespace package
    return False


def run_tool(tool: list[str], args: list[str], env: dict[str, str]) -> tuple[int, dict | None]:
    """Run the tool with JSON output; return its exit code and its report, if it printed one."""
    done = subprocess.run([*tool, *args, "--format", "json"], capture_output=True, env=env)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        report = None
    return done.returncode, report


def run_one(tool: list[str], backend: Path, work: Path) -> Row:
    """Copy one backend and run the sequence on the copy."""
    row = Row(name=backend.name if backend.name != "backend" else str(backend.parent.name))
    copy = work / "tree"
    shutil.copytree(
        backend, copy, symlinks=True, ignore=shutil.ignore_patterns(*SKIP_DIRS - {"build", "dist"})
    )
    env = {**os.environ, "CLAUN_MIGRATE_CACHE_DIR": str(work / "cache"), "NO_COLOR": "1"}
    row.connect_before, row.int_before, row.named_before = measure(copy)
    compiled_before = {p for p in python_files(copy) if compiles(p)}
    imports_before = {p: imported_modules(p.read_bytes()) for p in python_files(copy)}
    before = snapshot(copy)

    row.check, report = run_tool(tool, ["check", str(copy)], env)
    if report:
        row.findings = len(report.get("findings", []))
        row.errors = len(report.get("errors", []))
    row.apply, _ = run_tool(tool, ["apply", str(copy)], env)
    after = snapshot(copy)
    row.changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    row.apply2, _ = run_tool(tool, ["apply", str(copy)], env)
    row.idempotent = snapshot(copy) == after
    row.check_after, _ = run_tool(tool, ["check", str(copy)], env)

    for path in python_files(copy):
        if path in compiled_before and not compiles(path):
            row.broken_compile.append(str(path.relative_to(copy)))
        added = imported_modules(path.read_bytes()) - imports_before.get(path, set())
        for level, module in sorted(added):
            if not resolves(copy, path, level, module):
                row.unresolved_imports.append(f"{path.relative_to(copy)}: {'.' * level}{module}")
    row.connect_after, row.int_after, row.named_after = measure(copy)
    if row.broken_compile or row.unresolved_imports:
        row.verdict = "broken"
    elif not row.changed:
        row.verdict = "identical"
    elif row.connect_after == 0:
        row.verdict = "migrated"
    else:
        row.verdict = "partial"
    return row


def exit_text(code: int | None) -> str:
    return "-" if code is None else str(code)


COLUMNS = [
    ("backend", lambda r: r.name),
    ("check", lambda r: exit_text(r.check)),
    ("apply", lambda r: exit_text(r.apply)),
    ("changed", lambda r: str(len(r.changed))),
    ("apply2 same", lambda r: {True: "yes", False: "NO", None: "-"}[r.idempotent]),
    ("check after", lambda r: exit_text(r.check_after)),
    ("verdict", lambda r: r.verdict),
    ("findings", lambda r: exit_text(r.findings)),
    ("errors", lambda r: exit_text(r.errors)),
    ("no longer compile", lambda r: str(len(r.broken_compile))),
    ("unresolved imports", lambda r: str(len(r.unresolved_imports))),
    ("connect", lambda r: f"{r.connect_before}->{r.connect_after}"),
    ("[0-9]", lambda r: f"{r.int_before}->{r.int_after}"),
    ('["x"]', lambda r: f"{r.named_before}->{r.named_after}"),
]


def print_table(rows: list[Row]) -> None:
    """One line per backend, then the details that do not fit a cell."""
    lines = [[title for title, _ in COLUMNS]] + [[cell(r) for _, cell in COLUMNS] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    for n, line in enumerate(lines):
        print(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            print("-+-".join("-" * w for w in widths))
    for r in rows:
        for label, items in (
            ("changed", r.changed),
            ("no longer compiles", r.broken_compile),
            ("unresolved import", r.unresolved_imports),
        ):
            for item in items:
                print(f"{r.name}: {label}: {item}")
        if r.note:
            print(f"{r.name}: {r.note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="backend folders")
    parser.add_argument("--corpus", type=Path, help="a folder whose subfolders are backends")
    parser.add_argument("--tool", default="claun-migrate", help="the claun-migrate executable")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args(argv)

    backends = list(args.paths)
    if args.corpus:
        if not args.corpus.is_dir():
            print(f"real_corpus: {args.corpus}: not a folder", file=sys.stderr)
            return 2
        backends += sorted(p for p in args.corpus.iterdir() if p.is_dir() and python_files(p))
    missing = [str(p) for p in backends if not p.is_dir()]
    if missing:
        print(f"real_corpus: not a folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    if not backends:
        print("real_corpus: give backend folders or --corpus DIR", file=sys.stderr)
        return 2
    tool = shutil.which(args.tool)
    if tool is None:
        print(f"real_corpus: {args.tool}: executable not found", file=sys.stderr)
        return 2

    rows = []
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix="real-corpus-") as tmp:
            try:
                rows.append(run_one([tool], backend.resolve(), Path(tmp)))
            except OSError as exc:
                rows.append(Row(name=backend.name, note=f"could not run: {exc}"))
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
