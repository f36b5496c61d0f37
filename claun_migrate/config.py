"""``[tool.claun-migrate]`` in the nearest ``pyproject.toml`` that has one, as ruff finds its own.

The search starts at the paths given on the command line (their common folder) and walks
upward; a ``pyproject.toml`` without the table is passed over. Unknown keys are errors, so a
typo never silently does nothing.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TABLE = "claun-migrate"
LISTS = ("select", "ignore", "exclude", "extend-exclude")
KEYS = frozenset((*LISTS, "per-file-ignores", "line-length", "data-layer", "unsafe-fixes"))


class ConfigError(ValueError):
    """The configuration cannot be used: the message names the file and the problem."""


@dataclass
class Config:
    """Settings read from ``path`` (None: no configuration found, all defaults)."""

    path: Path | None = None
    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    line_length: int | None = None
    data_layer: dict[str, Any] = field(default_factory=dict)
    unsafe_fixes: bool = False
    """Apply the codemods' unsafe fixes (edits to SQL text), as ruff's ``unsafe-fixes``."""

    @property
    def root(self) -> Path:
        """The folder globs are relative to: the configuration file's, else the working one."""
        return self.path.parent if self.path else Path.cwd()


def find(paths: list[Path]) -> Path | None:
    """The nearest ``pyproject.toml`` with a ``[tool.claun-migrate]`` table above ``paths``."""
    resolved = [p.resolve() for p in paths] or [Path.cwd()]
    start = Path(os.path.commonpath([str(p) for p in resolved]))
    if start.is_file() or not start.exists():
        start = start.parent
    for folder in [start, *start.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and TABLE in _read(candidate).get("tool", {}):
            return candidate
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc


def _strings(path: Path, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: [tool.{TABLE}] {key} must be a list of strings")
    return list(value)


def parse(path: Path, table: dict[str, Any]) -> Config:
    """Validate the ``[tool.claun-migrate]`` table read from ``path``."""
    unknown = sorted(set(table) - KEYS)
    if unknown:
        known = ", ".join(sorted(KEYS))
        raise ConfigError(
            f"{path}: [tool.{TABLE}] unknown key {', '.join(unknown)}; known: {known}"
        )
    lists = {key: _strings(path, key, table.get(key, [])) for key in LISTS}
    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise ConfigError(f"{path}: [tool.{TABLE}] per-file-ignores must be a table")
    line_length = table.get("line-length")
    if line_length is not None and (
        not isinstance(line_length, int) or isinstance(line_length, bool) or line_length < 1
    ):
        raise ConfigError(f"{path}: [tool.{TABLE}] line-length must be a positive integer")
    data_layer = table.get("data-layer", {})
    if not isinstance(data_layer, dict):
        raise ConfigError(f"{path}: [tool.{TABLE}] data-layer must be a table")
    unsafe_fixes = table.get("unsafe-fixes", False)
    if not isinstance(unsafe_fixes, bool):
        raise ConfigError(f"{path}: [tool.{TABLE}] unsafe-fixes must be true or false")
    return Config(
        path=path,
        select=lists["select"],
        ignore=lists["ignore"],
        exclude=lists["exclude"] + lists["extend-exclude"],
        per_file_ignores={
            glob: _strings(path, f"per-file-ignores.{glob!r}", codes)
            for glob, codes in per_file.items()
        },
        line_length=line_length,
        data_layer=dict(data_layer),
        unsafe_fixes=unsafe_fixes,
    )


def load(paths: list[Path], config_file: Path | None = None) -> Config:
    """The configuration for a run over ``paths`` (``config_file`` overrides the search)."""
    path = config_file or find(paths)
    if path is None:
        return Config()
    return parse(path, _read(path).get("tool", {}).get(TABLE, {}))
