"""A per-file cache of codemod results, so a run over unchanged files parses nothing.

Parsing and libcst's scope analysis cost about 0.1-0.3 s of CPU per data-layer file; on an
already migrated tree every one of those files is still analysed to list its review items.
Like ruff's cache, an entry is keyed by everything the result depends on: the file's
absolute path and text, the codemods run with their gathered arguments (the schema), and a
fingerprint of the code that computes it (claun-migrate, its codemods and runtime, libcst,
sqlglot). Any change misses the cache; a broken or unreadable entry is a miss too.

The cache lives outside the user's tree: ``$CLAUN_MIGRATE_CACHE_DIR``, else
``$XDG_CACHE_HOME/claun-migrate``, else ``~/.cache/claun-migrate``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA = b"claun-migrate-cache-1"


def default_dir() -> Path:
    """Where the cache lives unless told otherwise."""
    explicit = os.environ.get("CLAUN_MIGRATE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "claun-migrate"


@functools.lru_cache(maxsize=1)
def fingerprint() -> bytes:
    """A digest of the code whose output is cached: change any of it and every entry misses."""
    import claun_migrate
    import claun_migrate.codemods

    digest = hashlib.sha256(SCHEMA)
    for package in (claun_migrate, claun_migrate.codemods):
        root = Path(package.__file__).parent
        for source in sorted(root.rglob("*.py")):
            digest.update(str(source.relative_to(root)).encode())
            digest.update(source.read_bytes())
    for dist in ("libcst", "sqlglot"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            digest.update(f"{dist}={metadata.version(dist)}".encode())
    return digest.digest()


class ResultCache:
    """Pickled results by key in one folder; every failure to read or write is a miss."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def key(self, *parts: Any) -> str:
        """A key for ``parts`` (which must pickle), salted with :func:`fingerprint`."""
        digest = hashlib.sha256(fingerprint())
        digest.update(pickle.dumps(parts, protocol=4))
        return digest.hexdigest()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / key[2:]

    def get(self, key: str) -> Any | None:
        try:
            return pickle.loads(self._path(key).read_bytes())
        except Exception:  # missing, truncated or from another version: recompute
            return None

    def put(self, key: str, value: Any) -> None:
        from claun_migrate.engine.transaction import write_atomic

        with contextlib.suppress(OSError):  # a cache that cannot be written is only slower
            write_atomic(self._path(key), pickle.dumps(value, protocol=4), sync=False)
