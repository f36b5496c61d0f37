"""``[tool.claun-migrate]`` in the nearest ``pyproject.toml`` that has one, as ruff finds its own.

The search starts at the paths given on the command line (their common folder) and walks
upward; a ``pyproject.toml`` without the table is passed over. Unknown keys are errors, so a
typo never silently does nothing. Without ``line-length`` there, each file's limit is the one
its project gives its formatter or linter (:func:`project_line_length`).
"""

from __future__ import annotations

import configparser
import functools
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
DEFAULT_LINE_LENGTH = 88  # ruff's and black's
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


def project_line_length(folder: Path) -> int:
    """The line-length limit of files in ``folder``, from the nearest folder upward that sets
    one: ``line-length`` in ``.ruff.toml``/``ruff.toml``, ``[tool.ruff]`` or ``[tool.black]``
    in ``pyproject.toml``, ``max-line-length`` in ``[flake8]`` of ``setup.cfg``, ``tox.ini`` or
    ``.flake8``; else 88. A value those tools would refuse is passed over."""
    return _folder_line_length(Path(os.path.abspath(folder))) or DEFAULT_LINE_LENGTH


@functools.lru_cache(maxsize=1024)
def _folder_line_length(folder: Path) -> int | None:
    own = _own_line_length(folder)
    if own is not None or folder.parent == folder:
        return own
    return _folder_line_length(folder.parent)


def _own_line_length(folder: Path) -> int | None:
    for name in (".ruff.toml", "ruff.toml", "pyproject.toml"):
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = _read(path)
        except ConfigError:
            continue
        tool = data.get("tool", {}) if name == "pyproject.toml" else {"ruff": data}
        for table in (tool.get("ruff"), tool.get("black")):
            value = table.get("line-length") if isinstance(table, dict) else None
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    for name in ("setup.cfg", "tox.ini", ".flake8"):
        path = folder / name
        if not path.is_file():
            continue
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
            value = parser.get("flake8", "max-line-length", fallback=None) or parser.get(
                "flake8", "max_line_length", fallback=None
            )
        except (configparser.Error, UnicodeDecodeError):
            continue
        if value is not None and value.strip().isdigit() and int(value) > 0:
            return int(value)
    return None
