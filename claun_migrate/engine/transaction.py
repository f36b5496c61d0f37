"""A run's writes as one transaction over the tree: stage, journal, rename; recovery; the lock.

``apply`` first stages every new text in a temporary file (in the state folder when it is on the
target's filesystem, else a dot-file beside the target), keeps a hard link (or copy) of every
file it replaces, then writes a journal in the state folder and renames the staged files into
place. A journal left by a killed run is completed (renames done) or rolled back (originals
restored) by the next command on the tree, which says so on stderr. One lock file per tree
(keyed by its real path) serialises writers; readers share it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

LOCK_WAIT_ENV = "CLAUN_MIGRATE_LOCK_WAIT"
DEFAULT_LOCK_WAIT = 10.0
_HELD_LOCKS: set[int] = set()


class TreeBusy(Exception):
    """The tree cannot be locked: another run holds it longer than we wait, or the state
    folder (where locks and journals live) cannot be written."""


def digest(data: bytes | None) -> str | None:
    """The sha256 of ``data`` (None for a file that does not exist)."""
    return None if data is None else hashlib.sha256(data).hexdigest()


def read_digest(path: str | Path) -> str | None:
    """The digest of the file at ``path`` now (None if it does not exist)."""
    try:
        with open(path, "rb") as handle:
            return digest(handle.read())
    except FileNotFoundError:
        return None


def inside(path: str, root: str) -> bool:
    """Whether the (real) ``path`` is ``root`` or below it."""
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _mode_and_owner(path: str) -> tuple[int, tuple[int, int] | None]:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask, None
    return stat.S_IMODE(info.st_mode), (info.st_uid, info.st_gid)


def _write_file(tmp: str, data: bytes, mode: int, owner: tuple[int, int] | None, sync: bool):
    """Create ``tmp`` with ``data``, ``mode`` and ``owner``; fsync it if ``sync``."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        if sync:
            os.fsync(handle.fileno())
    os.chmod(tmp, mode)
    if owner is not None:
        with contextlib.suppress(OSError):  # only root may give a file away
            os.chown(tmp, *owner)


def write_atomic(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` all at once, keeping its mode and owner (temp file in
    the same folder, fsync, rename). A symbolic link is written through: its target is
    replaced, the link kept. The one writer of single files (runs write through
    :class:`Transaction`, which shares :func:`_write_file`)."""
    real = os.path.realpath(path)
    mode, owner = _mode_and_owner(real)
    folder, name = os.path.split(real)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
    try:
        _write_file(tmp, data, mode, owner, sync)
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _key(root: str) -> str:
    return hashlib.sha256(root.encode()).hexdigest()[:32]


def _device(path: str) -> int:
    """The filesystem of ``path`` or of its nearest existing ancestor."""
    while True:
        try:
            return os.stat(path).st_dev
        except FileNotFoundError:
            parent = os.path.dirname(path)
            if parent == path:
                raise
            path = parent


def same_filesystem(a: str, b: str) -> bool:
    """Whether a rename from ``a`` to ``b`` stays on one filesystem (so it is atomic)."""
    return _device(a) == _device(b)


@dataclass
class Entry:
    """One file of a transaction: where its new text is staged and its original kept."""

    target: str
    staged: str
    backup: str | None
    before: str | None
    after: str


class Transaction:
    """The writes of one run over the tree ``root`` (a real path), journalled in ``state``."""

    def __init__(self, root: str, state: Path) -> None:
        self.root = root
        self.id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.journal = state / "journal" / f"{_key(root)}.json"
        self.stage = str(state / "staging" / self.id)
        self.entries: dict[str, Entry] = {}

    def _save(self, state: str) -> None:
        record = {
            "root": self.root,
            "pid": os.getpid(),
            "state": state,
            "stage": self.stage,
            "entries": [asdict(e) for e in self.entries.values()],
        }
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.journal, json.dumps(record, indent=1).encode())

    def prepare(
        self, files: dict[str, tuple[bytes, str | None]], allowed: Iterable[str]
    ) -> dict[str, str]:
        """Stage ``files`` (path -> new bytes, digest expected on disk now); return the paths
        that cannot be written, with why. Nothing in the tree changes yet."""
        roots = list(allowed)
        failed: dict[str, str] = {}
        real_of: dict[str, str] = {}
        for path in files:
            real = os.path.realpath(path)
            if not any(inside(real, root) for root in roots):
                failed[path] = f"is a symbolic link to {real}, outside the tree: not written"
            elif real in real_of.values():
                other = next(p for p, r in real_of.items() if r == real)
                failed[path] = f"is the same file as {other} (a symbolic link): not written twice"
            else:
                real_of[path] = real
        local = {}
        for number, (path, real) in enumerate(real_of.items()):
            folder, name = os.path.split(real)
            here = same_filesystem(self.stage, folder)
            local[path] = not here
            base = (
                os.path.join(self.stage, str(number))
                if here
                else os.path.join(folder, f".{name}.claun-{self.id}")
            )
            exists = os.path.lexists(real)
            self.entries[path] = Entry(
                real, base + ".tmp", base + ".orig" if exists else None, files[path][1], ""
            )
        self._save("staging")
        os.makedirs(self.stage, exist_ok=True)
        for path, entry in list(self.entries.items()):
            try:
                problem = self._stage(entry, files[path][0], local[path])
            except OSError as exc:
                problem = f"cannot write: {exc.strerror or exc}"
            if problem:
                failed[path] = problem
                self.discard([path])
        for path, entry in list(self.entries.items()):  # last, to keep the window short
            if read_digest(entry.target) != entry.before:
                failed[path] = "changed on disk since it was read: not overwritten (run again)"
                self.discard([path])
        return failed

    def _stage(self, entry: Entry, data: bytes, local: bool) -> str | None:
        folder = os.path.dirname(entry.target)
        if not local and os.path.isdir(folder) and not os.access(folder, os.W_OK | os.X_OK):
            return f"cannot write: folder {folder} is not writable"
        entry.after = digest(data) or ""
        mode, owner = _mode_and_owner(entry.target)
        if local:
            os.makedirs(folder, exist_ok=True)
        _write_file(entry.staged, data, mode, owner, sync=True)
        if entry.backup:
            try:
                os.link(entry.target, entry.backup, follow_symlinks=False)
            except OSError:
                shutil.copy2(entry.target, entry.backup, follow_symlinks=False)
        return None

    def discard(self, paths: Iterable[str]) -> None:
        """Drop the staged files of ``paths`` (held back after staging)."""
        for path in paths:
            entry = self.entries.pop(path, None)
            if entry:
                _remove(entry.staged, entry.backup)

    def commit(self) -> None:
        """Journal the staged files, then rename them into place (SIGINT waits till done)."""
        with sigint_deferred():
            self._save("commit")
            for entry in self.entries.values():
                os.makedirs(os.path.dirname(entry.target), exist_ok=True)
                os.replace(entry.staged, entry.target)
            for folder in {os.path.dirname(e.target) for e in self.entries.values()}:
                _sync_folder(folder)  # the renames reach the disk before the journal goes

    def rollback(self) -> None:
        """Put back every original this transaction replaced (its journal says which)."""
        with sigint_deferred():
            self._save("rollback")
            _finish(self._record(), "rollback")

    def close(self) -> None:
        """Forget the transaction: remove its staged files, backups and journal."""
        for entry in self.entries.values():
            _remove(entry.staged, entry.backup)
        shutil.rmtree(self.stage, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.journal.unlink()

    def _record(self) -> dict:
        return json.loads(self.journal.read_text())


def _sync_folder(folder: str) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be fsynced
        fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(*paths: str | None) -> None:
    for path in paths:
        if path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _finish(record: dict, state: str) -> tuple[int, list[str]]:
    """Complete (``commit``) or undo (``rollback``, ``staging``) a journal's renames.

    Returns how many files it changed and the targets it left alone because they were
    changed by someone else since."""
    done, kept = 0, []
    for entry in map(lambda e: Entry(**e), record["entries"]):
        now = read_digest(entry.target)
        if state == "commit" and os.path.exists(entry.staged):
            if now == entry.before:
                os.makedirs(os.path.dirname(entry.target), exist_ok=True)
                os.replace(entry.staged, entry.target)
                done += 1
            elif now != entry.after:
                kept.append(entry.target)
        elif state == "rollback" and now == entry.after and now != entry.before:
            if entry.backup and os.path.exists(entry.backup):
                os.replace(entry.backup, entry.target)
            else:
                os.unlink(entry.target)
            done += 1
        _remove(entry.staged, entry.backup)
    shutil.rmtree(record["stage"], ignore_errors=True)
    return done, kept


def recover(state: Path, root: str, *, exclusive_held: bool) -> list[str]:
    """Complete or roll back every unfinished journal on ``root``, or on a tree inside or
    around it; return one message per journal. ``root``'s own lock must be held exclusively
    (``exclusive_held``); the others are taken here, and skipped while their run is alive."""
    messages = []
    folder = state / "journal"
    if exclusive_held:  # half-written journals of this tree (a kill inside write_atomic)
        for stale in folder.glob(f".{_key(root)}.json.*.tmp"):
            stale.unlink(missing_ok=True)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        other = record["root"]
        if not (inside(other, root) or inside(root, other)):
            continue
        with contextlib.ExitStack() as stack:
            if other != root or not exclusive_held:
                try:
                    stack.enter_context(tree_lock(state, other, exclusive=True, wait=0))
                except TreeBusy:
                    continue
            if not path.exists():
                continue
            messages.append(_recover_one(path, record))
    return messages


def _recover_one(path: Path, record: dict) -> str:
    state = record["state"]
    files = len(record["entries"])
    prefix = f"claun-migrate: an apply on {record['root']} (pid {record['pid']}) was interrupted"
    if state == "commit":
        done, kept = _finish(record, "commit")
        message = f"{prefix} while writing; completed it: {done} of {files} files written now"
        if kept:
            message += f"; left alone, changed since: {', '.join(kept)}"
    elif state == "rollback":
        done, _ = _finish(record, "rollback")
        message = f"{prefix} while restoring its files; restored {done} of {files}"
    else:
        _finish(record, "staging")
        message = f"{prefix} before writing; removed its temporary files, the tree is unchanged"
    path.unlink(missing_ok=True)
    return message


def _lock_path(state: Path, root: str) -> Path:
    return state / "locks" / f"{_key(root)}.lock"


@contextlib.contextmanager
def tree_lock(
    state: Path, root: str, *, exclusive: bool, wait: float | None = None
) -> Iterator[int]:
    """Hold the lock of tree ``root`` (real path): exclusive for writers, shared for readers.

    Waits up to ``wait`` seconds (default ``$CLAUN_MIGRATE_LOCK_WAIT``, else 10), then raises
    :class:`TreeBusy` naming the holder's pid."""
    if wait is None:
        wait = float(os.environ.get(LOCK_WAIT_ENV) or DEFAULT_LOCK_WAIT)
    path = _lock_path(state, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    _HELD_LOCKS.add(fd)
    try:
        _acquire(fd, exclusive, wait, root, path)
        if exclusive:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield fd
    finally:
        _HELD_LOCKS.discard(fd)
        os.close(fd)


def _acquire(fd: int, exclusive: bool, wait: float, root: str, path: Path) -> None:
    operation = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() >= deadline:
            holder = path.read_text(errors="replace").strip() or "?"
            raise TreeBusy(
                f"another claun-migrate run is using {root} (apply pid {holder}); waited "
                f"{wait:g} s; run again when it has finished (${LOCK_WAIT_ENV} sets the wait)"
            )
        time.sleep(0.05)


def pending(state: Path, root: str) -> bool:
    """Whether a journal of ``root`` or of a tree inside or around it is waiting."""
    folder = state / "journal"
    if not folder.is_dir():
        return False
    for path in folder.glob("*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            other = json.loads(path.read_text())["root"]
            if inside(other, root) or inside(root, other):
                return True
    return False


@contextlib.contextmanager
def open_tree(
    state: Path, root: str, *, write: bool, wait: float | None = None
) -> Iterator[list[str]]:
    """Lock tree ``root`` (exclusively to write, shared to read), first completing or rolling
    back any interrupted run on it; yields the recovery messages."""
    exclusive = write or pending(state, root)
    with contextlib.ExitStack() as stack:
        fd = None
        try:
            fd = stack.enter_context(tree_lock(state, root, exclusive=exclusive, wait=wait))
        except OSError as exc:
            if write:
                raise TreeBusy(
                    f"cannot use the state folder {state} for the journal and lock: "
                    f"{exc.strerror or exc}; set $CLAUN_MIGRATE_CACHE_DIR to a writable folder"
                ) from exc
        if fd is None:  # a read-only state folder: reading needs no lock
            yield []
            return
        messages = recover(state, root, exclusive_held=True) if exclusive else []
        if exclusive and not write:
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield messages


def forget_inherited_locks() -> None:
    """In a forked worker: close the lock files inherited from the parent, so a worker that
    outlives it never keeps the tree locked."""
    for fd in list(_HELD_LOCKS):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()


@contextlib.contextmanager
def sigint_deferred() -> Iterator[None]:
    """Let a SIGINT that arrives inside the block take effect at its end (main thread only),
    so renames are never cut half way."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received:
            raise KeyboardInterrupt


def say(message: str) -> None:
    """A line for the user on stderr (recovery notices)."""
    print(message, file=sys.stderr, flush=True)
