"""The engine: find files, prefilter, parse each once, run the selected codemods, report or write.

It knows nothing about pools or rows. Codemods declare ``TRIGGERS`` (substrings a file must
contain to be parsed), optionally ``REQUIRES`` (codemods that must run too, earlier),
``GATHER_SUFFIXES`` (other files under the run's root that ``gather`` reads, such as ``.sql``) and a
``gather(sources)`` classmethod whose result becomes constructor keyword arguments. They leave
findings, companion files and requirements in ``context.scratch`` (see ``codemods._support``).
A codemod with unsafe fixes (opt-in edits, as ruff's) sets ``UNSAFE_FIXES = True``; its
``gather`` is then called as ``gather(sources, unsafe_fixes=...)``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import io
import os
import re
import sys
import tokenize
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libcst as cst
from libcst.codemod import Codemod, CodemodContext, SkipFile

from claun_migrate.codemods import CODEMODS
from claun_migrate.codemods import _support as support
from claun_migrate.config import project_line_length
from claun_migrate.engine import consistency, layout, transaction
from claun_migrate.engine.cache import ResultCache, default_dir
from claun_migrate.engine.edits import count_edits
from claun_migrate.engine.transaction import TreeBusy, write_atomic
from claun_migrate.engine.workers import PARALLEL_MIN_FILES, run_jobs

__all__ = [
    "Change",
    "FileError",
    "Located",
    "PARALLEL_MIN_FILES",
    "RunResult",
    "SelectionError",
    "TreeBusy",
    "discover",
    "migrate",
    "select_codemods",
    "skipped_dir",
    "write_atomic",
    "write_files",
]

SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", "node_modules", "__pycache__"}
    | {"build", "dist", ".eggs", "site-packages", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)
MAX_FILE_BYTES = 512_000  # a parsed file above this is reported (docs/reliability.md)


def skipped_dir(folder: str | Path, name: str) -> bool:
    """Whether folder ``name`` inside ``folder`` holds no code of the project's own:
    VCS data, a virtual environment, caches or build output."""
    return (
        name in SKIP_DIRS
        or name.endswith(".egg-info")
        or os.path.exists(os.path.join(folder, name, "pyvenv.cfg"))
    )


class SelectionError(ValueError):
    """``--select``/``--ignore`` named an unknown codemod or dropped a required one."""


@dataclass(frozen=True)
class Change:
    """A file the run changes (``before`` is None for a file it creates)."""

    path: Path
    before: str | None
    after: str
    encoding: str = "utf-8"
    codemods: tuple[str, ...] = ()


@dataclass(frozen=True)
class Located:
    """A review finding with the file and the codemod that reported it."""

    path: Path
    codemod: str
    finding: support.Finding


@dataclass(frozen=True)
class FileError:
    """A file that could not be read, parsed, transformed or written; it is left untouched."""

    path: Path
    message: str


@dataclass
class RunResult:
    """What a run found and (if it wrote) did."""

    selected: list[str]
    changes: list[Change] = field(default_factory=list)
    findings: list[Located] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    edits: Counter[str] = field(default_factory=Counter)
    files_scanned: int = 0
    files_parsed: int = 0
    files_cached: int = 0
    written: bool = False


@dataclass
class _Outcome:
    path: str
    encoding: str
    before: str
    after: str
    codemods: tuple[str, ...] = ()
    edits: dict[str, int] = field(default_factory=dict)
    findings: list[tuple[str, support.Finding]] = field(default_factory=list)
    companions: dict[str, tuple[str, str]] = field(default_factory=dict)
    requirements: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    reliances: set[str] = field(default_factory=set)
    error: str | None = None


Registry = Mapping[str, type[Codemod]]


def declared(cls: type[Codemod], name: str) -> tuple[str, ...]:
    """``TRIGGERS``, ``REQUIRES`` or ``GATHER_SUFFIXES`` of a codemod: its class attribute, else
    its module's constant."""
    value = getattr(cls, name, None)
    if value is None:
        value = getattr(sys.modules[cls.__module__], name, ())
    return tuple(value)


def select_codemods(
    select: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
    registry: Registry = CODEMODS,
) -> list[str]:
    """The codemod names to run, in registry order, with everything they require."""
    wanted = set(select) if select else set(registry)
    ignored = set(ignore)
    unknown = sorted((wanted | ignored) - set(registry))
    if unknown:
        raise SelectionError(f"unknown codemod {', '.join(unknown)}; known: {', '.join(registry)}")
    chosen = wanted - ignored
    todo = list(chosen)
    while todo:
        for needed in declared(registry[todo.pop()], "REQUIRES"):
            if needed in ignored:
                raise SelectionError(f"cannot ignore {needed}: a selected codemod requires it")
            if needed not in chosen:
                chosen.add(needed)
                todo.append(needed)
    return [name for name in registry if name in chosen]


def _excluded(relative: str, name: str, exclude: Sequence[str]) -> bool:
    return any(fnmatch.fnmatch(relative, pat) or fnmatch.fnmatch(name, pat) for pat in exclude)


def discover(
    paths: Iterable[Path], exclude: Sequence[str] = (), suffixes: tuple[str, ...] = (".py",)
) -> list[Path]:
    """Python files (or files with these ``suffixes``) under ``paths``, skipping VCS,
    virtualenv, cache and build folders."""
    found: list[Path] = []
    for root in paths:
        if not root.is_dir():  # a file, or a link that cannot be followed: its read says why
            found.append(root)
            continue
        for folder, dirs, files in os.walk(root):
            here = Path(folder)
            dirs[:] = sorted(
                d
                for d in dirs
                if not skipped_dir(here, d)
                and not _excluded((here / d).relative_to(root).as_posix(), d, exclude)
            )
            found.extend(
                here / f
                for f in sorted(files)
                if f.endswith(suffixes)
                and not _excluded((here / f).relative_to(root).as_posix(), f, exclude)
            )
    return found


def decode(data: bytes) -> tuple[str, str]:
    """Text and encoding of Python source bytes (BOM and PEP 263 cookie honoured)."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding), encoding


def _transform(
    job: tuple[str, str, str, tuple[tuple[str, type[Codemod], dict[str, Any]], ...], int],
) -> _Outcome:
    """Parse one file once and run the codemods on it, then wrap the lines they pushed past
    the line-length limit (runs in a worker process)."""
    path, text, encoding, codemods, line_length = job
    outcome = _Outcome(path, encoding, text, text)
    try:
        tree = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        outcome.error = f"cannot parse: {exc.message}"
        return outcome
    code = text
    for name, cls, kwargs in codemods:
        context = CodemodContext(
            filename=path, scratch={support.ENGINE: True, support.ORIGINAL: text}
        )
        try:
            new_tree = cls(context, **kwargs).transform_module(tree)
        except SkipFile:
            continue
        except Exception as exc:  # a codemod bug must not stop the other files
            outcome.error = f"{name} failed: {type(exc).__name__}: {exc}"
            return outcome
        new_code = new_tree.code
        if new_code != code:
            outcome.edits[name] = count_edits(code, new_code)
            outcome.codemods += (name,)
        outcome.findings += [(name, f) for f in support.findings(context)]
        for rel, companion in support.companions(context).items():
            outcome.companions[rel] = (name, companion)
        for req, names in support.requirements(context).items():
            outcome.requirements[req] = (name, names)
        outcome.reliances |= support.reliances(context)
        tree, code = new_tree, new_code
    if code != text:
        code, moves = layout.wrap(text, code, line_length)
        outcome.findings = [(name, moves.finding(f)) for name, f in outcome.findings]
    outcome.after = code
    return outcome


def _requirement_name(line: str) -> str:
    return re.split(r"[\s<>=!~;\[@#]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _find_requirements(start: Path) -> Path | None:
    for folder in [start, *start.parents]:
        if (folder / "requirements.txt").is_file():
            return folder / "requirements.txt"
        if any((folder / marker).exists() for marker in (".git", "pyproject.toml", "setup.py")):
            return None
    return None


def _read_text(path: Path) -> tuple[str | None, str | None]:
    """The UTF-8 text of ``path`` and the digest of its bytes (None, None if absent)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    return data.decode("utf-8", errors="surrogateescape"), transaction.digest(data)


def _beside(path: Path, other: str) -> Path:
    """``other`` (absolute, or relative to ``path``'s folder) spelt as the run spells ``path``
    (relative paths stay relative to the working directory)."""
    if os.path.isabs(other) and not path.is_absolute():
        return Path(os.path.relpath(other))
    return Path(os.path.normpath(path.parent / other))


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path, start)


class _Collector:
    """Turns per-file outcomes into the run's changes, findings and errors.

    An edit is written only with what it needs: when a file fails (it cannot be parsed,
    transformed or written, or its companion cannot be written), every change that relies on
    it is held back too, transitively, with an error saying why; a companion that only
    held-back files asked for is not written. Unrelated files still migrate.
    """

    BLOCKED = {
        "GEN001": (
            "edited by hand (GEN001)",
            "compare it with the new version, then delete it and run again",
        ),
        "GEN002": (
            "not generated by claun-migrate (GEN002)",
            "rename it (this file imports ours under that name), then run again",
        ),
    }

    def __init__(self, result: RunResult) -> None:
        self.result = result
        self.changed: dict[Path, tuple[Change, dict[str, int]]] = {}
        self.companions: dict[Path, tuple[str, str, list[Path]]] = {}
        self.requirements: dict[Path, dict[str, list[tuple[str, tuple[str, ...], Path]]]] = {}
        self.reliances: dict[Path, set[Path]] = {}
        self.digests: dict[Path, str | None] = {}
        self.failed: dict[Path, str] = {}
        self._existing: dict[Path, tuple[str | None, str | None]] = {}
        self.unreadable: dict[Path, str] = {}

    def add(self, outcome: _Outcome, digest: str | None) -> None:
        path = Path(outcome.path)
        if outcome.error:
            self._fail(path, outcome.error)
            return
        self.result.findings += [Located(path, name, f) for name, f in outcome.findings]
        if outcome.after != outcome.before:
            change = Change(path, outcome.before, outcome.after, outcome.encoding, outcome.codemods)
            self.changed[path] = (change, outcome.edits)
            self.digests[path] = digest
        for rel, (name, text) in outcome.companions.items():
            target = Path(os.path.normpath(path.parent / rel))
            sources = [path]
            if target in self.companions:
                if self.companions[target][1] != text:
                    self._fail(target, "two files ask for different texts")
                sources = [*self.companions[target][2], path]
            self.companions[target] = (name, text, sources)
        self.reliances[path] = {_beside(path, p) for p in outcome.reliances}
        for req, (name, names) in outcome.requirements.items():
            found = _find_requirements(Path(os.path.realpath(path.parent)))
            if found is None:
                message = f"no requirements.txt found; the migrated code needs {req}"
                self._finding(path, name, "REQ001", message, f"add {req} to your requirements")
            else:
                self.requirements.setdefault(found, {}).setdefault(req, []).append(
                    (name, names, path)
                )

    def _fail(self, path: Path, message: str) -> None:
        self.result.errors.append(FileError(path, message))
        self.failed[path] = message

    def _finding(self, path: Path, name: str, code: str, message: str, hint: str = "") -> None:
        self.result.findings.append(Located(path, name, support.Finding(1, 1, code, message, hint)))

    def existing(self, path: Path) -> tuple[str | None, str | None]:
        """Text and digest of a file the run may replace (read once; an unreadable one is
        a failure of that file)."""
        if path not in self._existing:
            try:
                self._existing[path] = _read_text(path)
            except OSError as exc:
                self._existing[path] = (None, None)
                self.unreadable[path] = f"cannot read: {exc.strerror or exc}"
        return self._existing[path]

    def _unwritable(self) -> dict[Path, str]:
        """Companions that exist, differ and are not ours to replace: path -> GEN code."""
        found = {}
        for target, (_, text, _) in self.companions.items():
            existing, _ = self.existing(target)
            if existing is None or existing == text:
                continue
            pristine = support.is_pristine(existing)
            if not pristine:
                found[target] = "GEN001" if pristine is False else "GEN002"
        return found

    def _blocked_sources(self, unwritable: dict[Path, str]) -> dict[Path, str]:
        """Changed files that ask for an unwritable companion, with the error message."""
        problems: dict[Path, list[str]] = {}
        for target, code in sorted(unwritable.items()):
            for source in self.companions[target][2]:
                if source in self.changed:
                    reason, hint = self.BLOCKED[code]
                    rel = _relative(target, source.parent)
                    problems.setdefault(source, []).append(
                        f"it needs {rel}, which is {reason}; {hint}"
                    )
        return {source: "not migrated: " + "; also ".join(p) for source, p in problems.items()}

    def plan(self, failed: Mapping[Path, str]) -> tuple[list[tuple[Change, dict[str, int]]], dict]:
        """The changes to write when the files in ``failed`` cannot be, and the changes held
        back because they rely on a failed or held-back one (path -> message)."""
        unwritable = self._unwritable()
        for target, _ in self.requirements.items():
            self.existing(target)
        failed = {**self.unreadable, **failed}
        held = self._blocked_sources(unwritable)
        companions = {t: c for t, c in self.companions.items() if t not in unwritable}
        written = {t for t, (_, text, _) in companions.items() if self.existing(t)[0] != text}
        planned = set(self.changed) | written
        while True:
            out = {**failed, **held}
            live_companions = {
                t for t in written - set(out) if any(s not in out for s in companions[t][2])
            }
            made = (set(self.changed) - set(out)) | live_companions
            new = {}
            for source in sorted(set(self.changed) - set(out)):
                needs = [t for t, (_, _, s) in companions.items() if source in s]
                for need in [*needs, *sorted(self.reliances.get(source, ()))]:
                    why = self._unmet(need, planned, made, out)
                    if why:
                        new[source] = (
                            f"not migrated: it relies on {_relative(need, source.parent)}, {why}"
                        )
                        break
            if not new:
                break
            held.update(new)
        changes = [(c, e) for p, (c, e) in self.changed.items() if p in made]
        for target in sorted(live_companions):
            name, text, _ = companions[target]
            existing, digest = self.existing(target)
            self.digests[target] = digest
            changes.append((Change(target, existing, text, "utf-8", (name,)), {name: 1}))
        changes += self._requirement_changes(set(out))
        return changes, held

    @staticmethod
    def _unmet(need: Path, planned: set[Path], made: set[Path], out: Mapping[Path, str]) -> str:
        if need in out:
            reason = out[need]
            return (
                f"which is held back ({reason})"
                if reason.startswith("not migrated")
                else (f"which failed: {reason}")
            )
        if need in planned and need not in made:
            return "whose edit is not written"
        if need not in planned and not os.path.exists(need):
            return "which does not exist"
        return ""

    def _requirement_changes(self, out: set[Path]) -> list[tuple[Change, dict[str, int]]]:
        changes = []
        for target, requested in sorted(self.requirements.items()):
            if target in out:
                continue
            wanted = {
                req: (asks[0][0], asks[0][1])
                for req, asks in requested.items()
                if any(source not in out for _, _, source in asks)
            }
            before, digest = self.existing(target)
            before = before or ""
            present = {_requirement_name(line) for line in before.splitlines()}
            missing = [req for req, (_, names) in wanted.items() if not present & set(names)]
            if not missing:
                continue
            newline = "\r\n" if "\r\n" in before else "\n"
            after = before if not before or before.endswith("\n") else before + newline
            after += "".join(req + newline for req in missing)
            names = tuple(sorted({wanted[req][0] for req in missing}))
            self.digests[target] = digest
            edits = Counter(wanted[req][0] for req in missing)
            changes.append((Change(target, before, after, "utf-8", names), dict(edits)))
        return changes

    def unwritable_findings(self, held: Mapping[Path, str]) -> None:
        """Review findings for companions that cannot be written but that only files this
        run does not change ask for (they already import it: nothing breaks)."""
        for target, code in sorted(self._unwritable().items()):
            name, _, sources = self.companions[target]
            unchanged = [source for source in sources if source not in held]
            if not unchanged:
                continue
            if code == "GEN001":
                message = f"{target.name} was generated by claun-migrate and edited since"
                self._finding(target, name, code, message, "diff it against the new version")
            else:
                message = f"{target.name} exists and was not generated by claun-migrate"
                hint = f"rename it; {unchanged[0]} needs ours"
                self._finding(target, name, code, message, hint)


class _Run:
    """One run over a tree: the planned changes, settled so each is written with its needs."""

    def __init__(self, collector: _Collector, root: Path, allowed: list[str]) -> None:
        self.collector = collector
        self.root = root
        self.allowed = allowed
        self.failed = dict(collector.failed)
        self._checked: dict[tuple[Path, str], str | None] = {}

    def settle(self) -> tuple[list[tuple[Change, dict[str, int]]], dict[Path, str]]:
        """Plan, then fail the changes whose added imports do not resolve, that do not
        compile or that would be written through a symbolic link out of the tree; repeat
        until nothing more fails."""
        while True:
            changes, held = self.collector.plan(self.failed)
            planned = consistency.Tree({Path(os.path.abspath(c.path)): c.after for c, _ in changes})
            new = {}
            by_real: dict[str, Path] = {}
            for change, _ in sorted(changes, key=lambda c: os.path.islink(c[0].path)):
                real = os.path.realpath(change.path)
                problem = self._problem(change, planned)
                if real in by_real:
                    problem = f"is a symbolic link to {by_real[real]}, which the run migrates"
                by_real.setdefault(real, change.path)
                if problem:
                    new[change.path] = problem
            if not new:
                return changes, held
            self.failed.update(new)

    def _problem(self, change: Change, planned: consistency.Tree) -> str | None:
        real = os.path.realpath(change.path)
        if not any(transaction.inside(real, root) for root in self.allowed):
            return f"is a symbolic link to {real}, outside the tree: not written"
        if change.path.suffix != ".py":
            return None
        path = Path(os.path.abspath(change.path))
        return consistency.problems(path, change.before, change.after, self.root, planned)

    def publish(self, changes: list[tuple[Change, dict[str, int]]], held: dict) -> None:
        """Put the settled plan into the result."""
        result = self.collector.result
        reported = {(e.path, e.message) for e in result.errors}
        failures = [*self.collector.unreadable.items(), *self.failed.items(), *held.items()]
        for path, message in failures:
            if (path, message) not in reported:
                result.errors.append(FileError(path, message))
        result.changes = [change for change, _ in changes]
        result.edits = Counter()
        for _, edits in changes:
            result.edits.update(edits)
        self.collector.unwritable_findings(held)

    def write(self, state: Path) -> None:
        """Write the settled plan as one transaction; files that cannot be staged fail (and
        take down what relies on them); if the written tree does not pass the checks, every
        file is restored."""
        result = self.collector.result
        while True:
            changes, held = self.settle()
            files = {}
            for change, _ in changes:
                try:
                    data = change.after.encode(change.encoding)
                except UnicodeEncodeError as exc:
                    self.failed[change.path] = f"cannot write: {exc}"
                    break
                files[str(change.path)] = (data, self.collector.digests.get(change.path))
            else:
                if not changes:
                    self.publish(changes, held)
                    result.written = True
                    return
                txn = transaction.Transaction(self.allowed[0], state)
                try:
                    failures = txn.prepare(files, self.allowed)
                    if failures:
                        self.failed.update({Path(p): m for p, m in failures.items()})
                        continue
                    self.publish(changes, held)
                    self._commit(txn, result)
                    result.written = True
                    return
                finally:
                    txn.close()

    def _commit(self, txn: transaction.Transaction, result: RunResult) -> None:
        try:
            txn.commit()
            problems = [
                (
                    c.path,
                    consistency.problems_on_disk(
                        Path(os.path.abspath(c.path)), c.before, self.root
                    ),
                )
                for c in result.changes
                if c.path.suffix == ".py"
            ]
            problems = [(p, m) for p, m in problems if m]
        except OSError as exc:
            problems = [(Path(exc.filename or "?"), f"cannot write: {exc.strerror or exc}")]
        if problems:
            txn.rollback()
            result.errors += [
                FileError(p, f"{m}; every file of this run was restored") for p, m in problems
            ]
            result.changes = []
            result.edits = Counter()


def tree_root(paths: Sequence[Path]) -> Path:
    """The folder holding everything a run over ``paths`` may change."""
    folders = [os.path.abspath(p if p.is_dir() else p.parent) for p in paths]
    return Path(os.path.commonpath(folders))


def migrate(
    paths: Iterable[Path | str],
    *,
    write: bool = False,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] = (),
    exclude: Sequence[str] = (),
    jobs: int | None = None,
    registry: Registry = CODEMODS,
    cache_dir: Path | None = None,
    confirm: bool = False,
    state_dir: Path | None = None,
    unsafe_fixes: bool = False,
    line_length: int | None = None,
) -> RunResult:
    """Run the selected codemods over ``paths``; with ``write`` apply the changes as one
    transaction (see :mod:`claun_migrate.engine.transaction`).

    Files that fail are reported in ``errors`` and left untouched, with every change relying
    on them; the others still migrate. With ``cache_dir``, results of files whose text,
    codemods and gathered arguments are unchanged are reused. With ``write`` and ``confirm``,
    a second pass over the written tree checks that it would change nothing more (a codemod
    that is not idempotent is an error). The tree is locked for the run (``state_dir``,
    default the cache folder, holds the lock and journal); an interrupted earlier run on it
    is completed or rolled back first, and said on stderr. Raises :class:`TreeBusy` when
    another run holds the tree too long. ``unsafe_fixes`` goes to the codemods that declare
    ``UNSAFE_FIXES``. Lines an edit pushes past ``line_length`` (default: each file's project
    setting, see :func:`claun_migrate.config.project_line_length`) are wrapped.
    """
    paths = [Path(p) for p in paths]
    names = select_codemods(select, ignore, registry)
    state = state_dir or default_dir()
    root = tree_root(paths)
    with transaction.open_tree(state, os.path.realpath(root), write=write) as notices:
        for notice in notices:
            transaction.say(notice)
        run = _scan(
            paths, names, exclude, jobs, registry, cache_dir, root, unsafe_fixes, line_length
        )
        if not write:
            run.publish(*run.settle())
            return run.collector.result
        run.write(state)
        result = run.collector.result
        if confirm and result.changes:
            again = _scan(
                paths, names, exclude, jobs, registry, cache_dir, root, unsafe_fixes, line_length
            )
            again.publish(*again.settle())
            result.errors += [
                FileError(change.path, "a second pass would change it again (a codemod bug)")
                for change in again.collector.result.changes
            ]
    return result


def write_files(
    root: Path, files: Mapping[Path, tuple[bytes, bytes | None]], *, state_dir: Path | None = None
) -> list[FileError]:
    """Write ``files`` (path -> new bytes and the bytes expected there now, None for a new
    file) into the tree ``root`` as one transaction under its lock: all of them, or none and
    the reasons (a file changed on disk, one that cannot be written, a link out of the tree)."""
    state = state_dir or default_dir()
    real = os.path.realpath(root)
    with transaction.open_tree(state, real, write=True) as notices:
        for notice in notices:
            transaction.say(notice)
        txn = transaction.Transaction(real, state)
        try:
            expected = {str(p): (data, transaction.digest(old)) for p, (data, old) in files.items()}
            failed = txn.prepare(expected, [real])
            if failed:
                return [FileError(Path(p), message) for p, message in failed.items()]
            txn.commit()
        finally:
            txn.close()
    return []


def _scan(
    paths: list[Path],
    names: list[str],
    exclude: Sequence[str],
    jobs: int | None,
    registry: Registry,
    cache_dir: Path | None,
    root: Path,
    unsafe_fixes: bool = False,
    line_length: int | None = None,
) -> _Run:
    result = RunResult(selected=names)
    triggers = {n: [t.encode() for t in declared(registry[n], "TRIGGERS")] for n in names}
    candidates: dict[Path, list[str]] = {}
    texts: dict[Path, tuple[str, str]] = {}
    digests: dict[Path, str | None] = {}
    collector = _Collector(result)
    generated = support.GENERATED.encode()
    limit = int(os.environ.get("CLAUN_MIGRATE_MAX_FILE_BYTES") or MAX_FILE_BYTES)
    others = tuple(sorted({s for n in names for s in declared(registry[n], "GATHER_SUFFIXES")}))
    gathered_only: dict[str, str] = {}  # read for gather only (a schema.sql), under the root
    for path in discover([root], exclude, others) if others and root.is_dir() else ():
        with contextlib.suppress(OSError, UnicodeDecodeError):
            gathered_only[str(path)] = path.read_text(encoding="utf-8")
    for path in discover(paths, exclude):
        result.files_scanned += 1
        try:
            data = path.read_bytes()
        except OSError as exc:
            collector._fail(path, f"cannot read: {exc.strerror or exc}")
            continue
        if data.startswith(generated):  # a runtime copy: managed as a companion, never edited
            continue
        wanted = [n for n in names if not triggers[n] or any(t in data for t in triggers[n])]
        if len(data) > limit:  # too costly to parse, and to gather from
            if wanted:
                collector._fail(
                    path,
                    f"too large to migrate ({len(data) / 1e3:.0f} KB; the limit is "
                    f"{limit / 1e3:g} KB, $CLAUN_MIGRATE_MAX_FILE_BYTES): exclude it, or raise "
                    "the limit",
                )
            continue
        if wanted:
            candidates[path] = wanted
        digests[path] = transaction.digest(data)
        try:
            texts[path] = decode(data)  # the bytes the prefilter saw, read once
        except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
            if wanted:
                collector._fail(path, f"cannot decode: {exc}")
    # gather sees every file: whether code is a data-layer site depends on its imports
    sources = {**gathered_only, **{str(path): text for path, (text, _) in texts.items()}}
    kwargs = {n: _gather(registry[n], sources, unsafe_fixes) for n in names}
    for n in names:  # files a codemod's gathered arguments name, whatever their words
        targets = registry[n].targets(kwargs[n]) if hasattr(registry[n], "targets") else ()
        for path in texts:
            if str(path) in targets and n not in candidates.get(path, []):
                listed = candidates.setdefault(path, [])
                listed[:] = [name for name in names if name in listed or name == n]
    work = [
        (
            str(path),
            *texts[path],
            tuple((n, registry[n], kwargs[n]) for n in wanted),
            line_length or project_line_length(path.parent),
        )
        for path, wanted in candidates.items()
        if path in texts
    ]
    cache = ResultCache(cache_dir) if cache_dir else None
    keys = [_cache_key(cache, job, unsafe_fixes) for job in work] if cache else []
    cached = [cache.get(key) for key in keys] if cache else [None] * len(work)
    misses = [i for i, outcome in enumerate(cached) if outcome is None]
    outcomes = run_jobs(_transform, [work[i] for i in misses], jobs or os.cpu_count() or 1)
    for i, outcome in zip(misses, outcomes, strict=True):
        cached[i] = outcome
        if cache and outcome.error is None:
            cache.put(keys[i], outcome)
    result.files_parsed = len(misses)
    result.files_cached = len(work) - len(misses)
    for outcome in cached:
        collector.add(outcome, digests[Path(outcome.path)])
    allowed = [os.path.realpath(root)]
    allowed += [os.path.realpath(found.parent) for found in collector.requirements]
    return _Run(collector, root, list(dict.fromkeys(allowed)))


def _gather(codemod: type[Codemod], sources: dict[str, str], unsafe_fixes: bool) -> dict:
    """The constructor arguments ``codemod`` gathers from every file's source."""
    if not hasattr(codemod, "gather"):
        return {}
    if getattr(codemod, "UNSAFE_FIXES", False):
        return codemod.gather(sources, unsafe_fixes=unsafe_fixes)
    return codemod.gather(sources)


def _cache_key(cache: ResultCache, job: tuple[Any, ...], unsafe_fixes: bool) -> str:
    path, text, encoding, codemods, line_length = job
    selection = tuple((name, kwargs) for name, _, kwargs in codemods)
    return cache.key(
        path, os.path.realpath(path), text, encoding, selection, unsafe_fixes, line_length
    )
