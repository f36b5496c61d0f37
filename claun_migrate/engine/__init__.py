"""The engine: find files, prefilter, parse each once, run the selected codemods, report or write.

It knows nothing about pools or rows. Codemods declare ``TRIGGERS`` (substrings a file must
contain to be parsed), optionally ``REQUIRES`` (codemods that must run too, earlier) and a
``gather(sources)`` classmethod whose result becomes constructor keyword arguments. They leave
findings, companion files and requirements in ``context.scratch`` (see ``codemods._support``).
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import io
import os
import re
import stat
import sys
import tempfile
import tokenize
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libcst as cst
from libcst.codemod import Codemod, CodemodContext, SkipFile

from claun_migrate.codemods import CODEMODS
from claun_migrate.codemods import _support as support
from claun_migrate.engine.cache import ResultCache

SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", "node_modules", "__pycache__"}
    | {"build", "dist", ".eggs", "site-packages", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)
PARALLEL_MIN_FILES = 8


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
    error: str | None = None


Registry = Mapping[str, type[Codemod]]


def declared(cls: type[Codemod], name: str) -> tuple[str, ...]:
    """``TRIGGERS``/``REQUIRES`` of a codemod: its class attribute, else its module's constant."""
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


def discover(paths: Iterable[Path], exclude: Sequence[str] = ()) -> list[Path]:
    """Python files under ``paths``, skipping VCS, virtualenv, cache and build folders."""
    found: list[Path] = []
    for root in paths:
        if root.is_file():
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
                if f.endswith(".py")
                and not _excluded((here / f).relative_to(root).as_posix(), f, exclude)
            )
    return found


def decode(data: bytes) -> tuple[str, str]:
    """Text and encoding of Python source bytes (BOM and PEP 263 cookie honoured)."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding), encoding


def _count_edits(before: str, after: str) -> int:
    matcher = difflib.SequenceMatcher(None, before.splitlines(), after.splitlines(), False)
    return sum(tag != "equal" for tag, *_ in matcher.get_opcodes())


def _transform(
    job: tuple[str, str, str, tuple[tuple[str, type[Codemod], dict[str, Any]], ...]],
) -> _Outcome:
    """Parse one file once and run the codemods on it (runs in a worker process)."""
    path, text, encoding, codemods = job
    outcome = _Outcome(path, encoding, text, text)
    try:
        tree = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        outcome.error = f"cannot parse: {exc.message}"
        return outcome
    code = text
    for name, cls, kwargs in codemods:
        context = CodemodContext(filename=path, scratch={support.ENGINE: True})
        try:
            new_tree = cls(context, **kwargs).transform_module(tree)
        except SkipFile:
            continue
        except Exception as exc:  # a codemod bug must not stop the other files
            outcome.error = f"{name} failed: {type(exc).__name__}: {exc}"
            return outcome
        new_code = new_tree.code
        if new_code != code:
            outcome.edits[name] = _count_edits(code, new_code)
            outcome.codemods += (name,)
        outcome.findings += [(name, f) for f in support.findings(context)]
        for rel, companion in support.companions(context).items():
            outcome.companions[rel] = (name, companion)
        for req, names in support.requirements(context).items():
            outcome.requirements[req] = (name, names)
        tree, code = new_tree, new_code
    outcome.after = code
    return outcome


def _run_jobs(jobs: list[Any], workers: int) -> list[_Outcome]:
    if workers <= 1 or len(jobs) < PARALLEL_MIN_FILES:
        return [_transform(job) for job in jobs]
    workers = min(workers, len(jobs))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_transform, jobs, chunksize=max(1, len(jobs) // (workers * 4))))


def _requirement_name(line: str) -> str:
    return re.split(r"[\s<>=!~;\[@#]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _find_requirements(start: Path) -> Path | None:
    for folder in [start, *start.parents]:
        if (folder / "requirements.txt").is_file():
            return folder / "requirements.txt"
        if any((folder / marker).exists() for marker in (".git", "pyproject.toml", "setup.py")):
            return None
    return None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None


class _Collector:
    """Turns per-file outcomes into changes, findings and errors for one run.

    A file's change is kept back until ``finish``: when a companion it asks for cannot be
    written (edited by hand, or not ours), the file would import something that is not there
    or not ours, so it is an error and the file, with its companions and requirements, is left
    untouched.
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
        self.changed: list[tuple[Change, dict[str, int]]] = []
        self.companions: dict[Path, tuple[str, str, list[Path]]] = {}
        self.requirements: dict[Path, dict[str, list[tuple[str, tuple[str, ...], Path]]]] = {}

    def add(self, outcome: _Outcome) -> None:
        path = Path(outcome.path)
        if outcome.error:
            self.result.errors.append(FileError(path, outcome.error))
            return
        self.result.findings += [Located(path, name, f) for name, f in outcome.findings]
        if outcome.after != outcome.before:
            change = Change(path, outcome.before, outcome.after, outcome.encoding, outcome.codemods)
            self.changed.append((change, outcome.edits))
        for rel, (name, text) in outcome.companions.items():
            target = Path(os.path.normpath(path.parent / rel))
            sources = [path]
            if target in self.companions:
                if self.companions[target][1] != text:
                    self.result.errors.append(
                        FileError(target, "two files ask for different texts")
                    )
                sources = [*self.companions[target][2], path]
            self.companions[target] = (name, text, sources)
        for req, (name, names) in outcome.requirements.items():
            found = _find_requirements(path.parent.resolve())
            if found is None:
                message = f"no requirements.txt found; the migrated code needs {req}"
                self._finding(path, name, "REQ001", message, f"add {req} to your requirements")
            else:
                self.requirements.setdefault(found, {}).setdefault(req, []).append(
                    (name, names, path)
                )

    def _finding(self, path: Path, name: str, code: str, message: str, hint: str = "") -> None:
        self.result.findings.append(Located(path, name, support.Finding(1, 1, code, message, hint)))

    def _blocked_sources(self, unwritable: dict[Path, str]) -> dict[Path, str]:
        """Changed files that ask for an unwritable companion, with the error message."""
        changed = {change.path for change, _ in self.changed}
        problems: dict[Path, list[str]] = {}
        for target, code in sorted(unwritable.items()):
            for source in self.companions[target][2]:
                if source in changed:
                    reason, hint = self.BLOCKED[code]
                    rel = os.path.relpath(target, source.parent)
                    problems.setdefault(source, []).append(
                        f"it needs {rel}, which is {reason}; {hint}"
                    )
        return {source: "not migrated: " + "; also ".join(p) for source, p in problems.items()}

    def finish(self) -> None:
        writes: list[tuple[Path, str, str | None, str]] = []
        unwritable: dict[Path, str] = {}
        for target, (name, text, _) in sorted(self.companions.items()):
            existing = _read_text(target)
            if existing == text:
                continue
            pristine = None if existing is None else support.is_pristine(existing)
            if existing is None or pristine:
                writes.append((target, name, existing, text))
            else:
                unwritable[target] = "GEN001" if pristine is False else "GEN002"
        blocked = self._blocked_sources(unwritable)
        for change, edits in self.changed:
            if change.path in blocked:
                self.result.errors.append(FileError(change.path, blocked[change.path]))
            else:
                self.result.changes.append(change)
                self.result.edits.update(edits)
        for target, code in sorted(unwritable.items()):
            name, _, sources = self.companions[target]
            unchanged = [source for source in sources if source not in blocked]
            if not unchanged:
                continue
            # files already importing it: this run breaks nothing, the copy stays as it is
            if code == "GEN001":
                message = f"{target.name} was generated by claun-migrate and edited since"
                self._finding(target, name, code, message, "diff it against the new version")
            else:
                message = f"{target.name} exists and was not generated by claun-migrate"
                hint = f"rename it; {unchanged[0]} needs ours"
                self._finding(target, name, code, message, hint)
        for target, name, existing, text in writes:
            if any(source not in blocked for source in self.companions[target][2]):
                self.result.changes.append(Change(target, existing, text, "utf-8", (name,)))
                self.result.edits[name] += 1
        for target, requested in sorted(self.requirements.items()):
            wanted = {
                req: (asks[0][0], asks[0][1])
                for req, asks in requested.items()
                if any(source not in blocked for _, _, source in asks)
            }
            before = _read_text(target) or ""
            present = {_requirement_name(line) for line in before.splitlines()}
            missing = [req for req, (_, names) in wanted.items() if not present & set(names)]
            if not missing:
                continue
            newline = "\r\n" if "\r\n" in before else "\n"
            after = before if not before or before.endswith("\n") else before + newline
            after += "".join(req + newline for req in missing)
            names = tuple(sorted({wanted[req][0] for req in missing}))
            self.result.changes.append(Change(target, before, after, "utf-8", names))
            for req in missing:
                self.result.edits[wanted[req][0]] += 1


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once, keeping its mode and owner (temp file,
    fsync, rename). A symbolic link is written through: its target is replaced, the link kept.
    """
    path = Path(os.path.realpath(path))
    owner = None
    try:
        info = path.stat()
        mode, owner = stat.S_IMODE(info.st_mode), (info.st_uid, info.st_gid)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if owner is not None and hasattr(os, "chown"):
            with contextlib.suppress(OSError):  # only root may give a file away
                os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
) -> RunResult:
    """Run the selected codemods over ``paths``; with ``write`` apply the changes atomically.

    Files that fail are reported in ``errors`` and left untouched; the others still migrate.
    Nothing is written until every file has been transformed. With ``cache_dir``, results of
    files whose text, codemods and gathered arguments are unchanged are reused, not recomputed.
    With ``write`` and ``confirm``, a second pass over the written tree checks that it would
    change nothing more (a codemod that is not idempotent is an error) and, with a cache,
    leaves the next run nothing to recompute.
    """
    names = select_codemods(select, ignore, registry)
    result = RunResult(selected=names)
    triggers = {n: [t.encode() for t in declared(registry[n], "TRIGGERS")] for n in names}
    candidates: dict[Path, list[str]] = {}
    texts: dict[Path, tuple[str, str]] = {}
    generated = support.GENERATED.encode()
    for path in discover([Path(p) for p in paths], exclude):
        result.files_scanned += 1
        try:
            data = path.read_bytes()
        except OSError as exc:
            result.errors.append(FileError(path, f"cannot read: {exc.strerror or exc}"))
            continue
        if data.startswith(generated):  # a runtime copy: managed as a companion, never edited
            continue
        wanted = [n for n in names if not triggers[n] or any(t in data for t in triggers[n])]
        if wanted:
            candidates[path] = wanted
        try:
            texts[path] = decode(data)  # the bytes the prefilter saw, read once
        except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
            if wanted:
                result.errors.append(FileError(path, f"cannot decode: {exc}"))
    # gather sees every file: whether code is a data-layer site depends on its imports
    sources = {str(path): text for path, (text, _) in texts.items()}
    kwargs = {
        n: registry[n].gather(sources) if hasattr(registry[n], "gather") else {} for n in names
    }
    for n in names:  # files a codemod's gathered arguments name, whatever their words
        targets = registry[n].targets(kwargs[n]) if hasattr(registry[n], "targets") else ()
        for path in texts:
            if str(path) in targets and n not in candidates.get(path, []):
                listed = candidates.setdefault(path, [])
                listed[:] = [name for name in names if name in listed or name == n]
    work = [
        (str(path), *texts[path], tuple((n, registry[n], kwargs[n]) for n in wanted))
        for path, wanted in candidates.items()
        if path in texts
    ]
    cache = ResultCache(cache_dir) if cache_dir else None
    keys = [_cache_key(cache, job) for job in work] if cache else []
    cached = [cache.get(key) for key in keys] if cache else [None] * len(work)
    misses = [i for i, outcome in enumerate(cached) if outcome is None]
    outcomes = _run_jobs([work[i] for i in misses], jobs or os.cpu_count() or 1)
    for i, outcome in zip(misses, outcomes, strict=True):
        cached[i] = outcome
        if cache and outcome.error is None:
            cache.put(keys[i], outcome)
    result.files_parsed = len(misses)
    result.files_cached = len(work) - len(misses)
    collector = _Collector(result)
    for outcome in cached:
        collector.add(outcome)
    collector.finish()
    if write:
        _write_all(result)
        if confirm and result.changes:
            again = migrate(
                paths,
                select=names,
                exclude=exclude,
                jobs=jobs,
                registry=registry,
                cache_dir=cache_dir,
            )
            result.errors += [
                FileError(change.path, "a second pass would change it again (a codemod bug)")
                for change in again.changes
            ]
    return result


def _cache_key(cache: ResultCache, job: tuple[Any, ...]) -> str:
    path, text, encoding, codemods = job
    selection = tuple((name, kwargs) for name, _, kwargs in codemods)
    return cache.key(path, str(Path(path).resolve()), text, encoding, selection)


def _write_all(result: RunResult) -> None:
    kept: list[Change] = []
    for change in result.changes:
        try:
            write_atomic(change.path, change.after.encode(change.encoding))
        except (OSError, UnicodeEncodeError) as exc:
            result.errors.append(FileError(change.path, f"cannot write: {exc}"))
        else:
            kept.append(change)
    result.changes = kept
    result.written = True
