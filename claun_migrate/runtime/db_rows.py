"""Rows that read by position and by column name: ``row[0]`` and ``row["email"]``.

A ``Row`` is a tuple: it unpacks, compares equal to the tuple it replaces and serialises
to the same JSON array, so code that indexed tuples keeps working while new code reads
names. Each distinct column list gets one generated subclass holding the shared name ->
index map.

Duplicate column names (``SELECT u.id, p.id``) stay reachable by position only: reading
them by name raises ``KeyError`` naming the duplicate instead of silently returning one
of them. Rows pickle (and copy) with their column names.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from typing import Any, ClassVar

import psycopg2.extensions

_tuple_getitem = tuple.__getitem__


class Row(tuple):
    """A tuple whose items can also be read by column name."""

    __slots__ = ()
    _names: ClassVar[tuple[str, ...]] = ()
    _index: ClassVar[dict[str, int]] = {}

    def __getitem__(self, key: Any) -> Any:
        if key.__class__ is str:
            try:
                return _tuple_getitem(self, self._index[key])
            except KeyError:
                if key in self._names:
                    raise KeyError(
                        f"column {key!r} appears more than once in this row; "
                        "read it by position"
                    ) from None
                raise KeyError(
                    f"no column {key!r} in this row (columns: {self._names})"
                ) from None
        return _tuple_getitem(self, key)

    def keys(self) -> tuple[str, ...]:
        """The column names in order (so ``dict(row)`` works)."""
        return self._names

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as names and values: the per-column-list class is rebuilt on load."""
        return _unpickle, (self._names, tuple(self))


def _unpickle(names: tuple[str, ...], values: tuple[Any, ...]) -> Row:
    return row_class(names)(values) if names else Row(values)


@functools.lru_cache(maxsize=1024)
def row_class(names: tuple[str, ...]) -> type[Row]:
    """The ``Row`` subclass for one column list, created once and shared by its rows."""
    index: dict[str, int] = {}
    duplicates = set()
    for position, name in enumerate(names):
        if name in index:
            duplicates.add(name)
        else:
            index[name] = position
    for name in duplicates:
        del index[name]
    return type("Row", (Row,), {"__slots__": (), "_names": names, "_index": index})


def _names(description: Sequence[Sequence[Any]]) -> tuple[str, ...]:
    return tuple(column[0] for column in description)


def _as_rows(cls: type[Row], rows: list[tuple[Any, ...]]) -> list[Row]:
    """``rows`` made ``cls`` objects in place, each tuple freed as its row is made.

    Building a new list would keep every tuple alive until the end, so each row would
    add one object to the collector's count: 50,000 rows set off some seventy
    collections, sometimes a full one over the whole heap. Replacing in place frees one
    tracked object per one made, the count stays flat and the fetch costs what the
    tuples alone cost.
    """
    new = tuple.__new__
    for i, values in enumerate(rows):
        rows[i] = new(cls, values)
    return rows  # type: ignore[return-value]


class RowCursor(psycopg2.extensions.cursor):
    """psycopg2 ``cursor_factory`` whose fetch methods return ``Row`` objects."""

    def _row_class(self) -> type[Row]:
        return row_class(_names(self.description))

    def fetchone(self) -> Row | None:
        row = super().fetchone()
        return None if row is None else self._row_class()(row)

    def fetchmany(self, size: int | None = None) -> list[Row]:
        rows = super().fetchmany() if size is None else super().fetchmany(size)
        return _as_rows(self._row_class(), rows) if rows else rows

    def fetchall(self) -> list[Row]:
        rows = super().fetchall()
        return _as_rows(self._row_class(), rows) if rows else rows

    def __next__(self) -> Row:
        return self._row_class()(super().__next__())


_last_sqlite_class: tuple[object, type[Row]] = ((), Row)


def sqlite_row_factory(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> Row:
    """sqlite3 ``row_factory`` returning ``Row`` objects."""
    global _last_sqlite_class
    description, cls = _last_sqlite_class
    if description is not cursor.description:
        description = cursor.description
        cls = row_class(_names(description))
        _last_sqlite_class = (description, cls)
    return cls(values)
