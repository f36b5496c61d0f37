"""A thread-safe, fork-aware psycopg2 connection pool and the process-wide pool ``get_pool()``.

Why not ``psycopg2.pool``: ``SimpleConnectionPool`` is not thread-safe, and it and
``ThreadedConnectionPool`` close a returned connection whenever ``minconn`` are already idle,
so under load they reconnect on almost every call. This pool keeps the connections it opened (up to
``max_size``), blocks up to ``timeout`` seconds when all are in use, and never connects while
holding its lock.

Connections come back clean: ``putconn`` rolls back an open or failed transaction and drops
closed or broken connections, freeing their slot. It never raises: a connection another pool
checked out goes back to that pool, one no pool knows is closed. A checked-out connection the
caller closed instead of returning (legacy ``conn.close()``) has its slot reclaimed when a
``getconn`` finds no free one. Before handing out an idle connection the
pool polls its socket without blocking: an idle connection has nothing to read unless the
server closed it (``pg_terminate_backend``, restart, idle timeout), so a readable socket means
the connection is replaced. That costs one ``poll()`` system call instead of a round trip.

``get_pool()`` reads ``DATABASE_URL`` and the environment variables
``DB_POOL_MIN_SIZE`` (default 1), ``DB_POOL_MAX_SIZE`` (10), ``DB_POOL_TIMEOUT`` (30 seconds)
and ``DB_POOL_MAX_LIFETIME`` (seconds, default: unlimited).
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2.extensions import make_dsn
from psycopg2.pool import PoolError

__all__ = [
    "ConnectionPool",
    "PoolClosed",
    "PoolError",
    "PoolTimeout",
    "borrowed",
    "close_pool",
    "get_pool",
    "getconn",
    "putconn",
]

_IDLE = psycopg2.extensions.TRANSACTION_STATUS_IDLE
_UNKNOWN = psycopg2.extensions.TRANSACTION_STATUS_UNKNOWN
Connection = psycopg2.extensions.connection
_HAS_POLL = hasattr(select, "poll")  # select() is limited to descriptors below 1024


class PoolTimeout(PoolError):
    """No connection became free within the timeout."""


class PoolClosed(PoolError):
    """The pool was closed."""


def _close_quietly(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        conn.close()


def _socket_is_quiet(conn: Connection) -> bool:
    """True when an idle connection's socket has nothing to read, i.e. the server kept it."""
    if not _HAS_POLL:  # Windows
        return not select.select([conn.fileno()], [], [], 0)[0]
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    return not poller.poll(0)


def _detach(conn: Connection) -> None:
    """Close a connection inherited across fork without touching the parent's session.

    Closing it normally would send the server a Terminate message on the socket the parent
    still uses. Pointing the descriptor at /dev/null first makes that message go nowhere.
    """
    try:
        fd = conn.fileno()
    except Exception:  # already closed
        return
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
    _close_quietly(conn)


class ConnectionPool:
    """At most ``max_size`` psycopg2 connections to ``dsn``, shared between threads.

    ``connect_kwargs`` go to ``psycopg2.connect`` (for example ``cursor_factory``).
    ``min_size`` connections are opened at once; ``max_lifetime`` (seconds) replaces older
    connections at checkout.
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
        max_lifetime: float | None = None,
        **connect_kwargs: Any,
    ) -> None:
        if max_size < 1 or not 0 <= min_size <= max_size:
            raise ValueError(f"need 0 <= min_size <= max_size >= 1, got {min_size}, {max_size}")
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self.timeout = timeout
        self.max_lifetime = max_lifetime
        self.connect_kwargs = connect_kwargs
        self.closed = False
        self._reset()
        _POOLS.add(self)
        conns = [self.getconn() for _ in range(min_size)]
        for conn in conns:
            self.putconn(conn)

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._idle: list[tuple[Connection, float]] = []  # (connection, opened at); LIFO
        self._out: dict[int, tuple[Connection, float]] = {}  # checked out, by id()
        self._size = 0  # slots taken: idle + checked out + being opened
        self._waiting = 0
        self._waits = self._timeouts = self._connects = self._discarded = 0

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's connections and start afresh."""
        for conn, _ in [*self._idle, *self._out.values()]:
            _detach(conn)
        self._reset()

    def getconn(self, timeout: float | None = None) -> Connection:
        """A live connection; waits up to ``timeout`` (default: the pool's) when all are busy."""
        if self._pid != os.getpid():
            self._after_fork()
        conn = None
        born = 0.0
        deadline = None
        with self._lock:
            while True:
                if self.closed:
                    raise PoolClosed("the connection pool is closed")
                if self._idle:
                    conn, born = self._idle.pop()
                    self._out[id(conn)] = (conn, born)
                    break
                if self._size < self.max_size:
                    self._size += 1
                    break
                if self._reclaim_closed():
                    continue
                now = time.monotonic()
                if deadline is None:
                    wait = self.timeout if timeout is None else timeout
                    deadline = now + wait
                    self._waits += 1
                if now >= deadline:
                    self._timeouts += 1
                    raise PoolTimeout(
                        f"no database connection free after waiting {wait:g}s: all "
                        f"{self.max_size} connections of the pool (max_size) are in use"
                    )
                self._waiting += 1
                try:  # wake at least every _RECHECK s: a closed checkout sends no notify
                    self._cond.wait(min(deadline - now, _RECHECK))
                finally:
                    self._waiting -= 1
        if conn is not None:
            if self._usable(conn, born):
                return conn
            with self._lock:
                del self._out[id(conn)]
                self._discarded += 1
            _close_quietly(conn)
        return self._open()

    def _reclaim_closed(self) -> bool:
        """Free the slots of checked-out connections their caller closed (lock held).

        Legacy code closes a pooled connection instead of returning it; without this its slot
        would stay taken for ever. Only called when no slot is free, so checkouts stay cheap.
        """
        dead = [key for key, (conn, _) in self._out.items() if conn.closed]
        for key in dead:
            del self._out[key]
        self._size -= len(dead)
        self._discarded += len(dead)
        return bool(dead)

    def _usable(self, conn: Connection, born: float) -> bool:
        if conn.closed:
            return False
        if self.max_lifetime is not None and time.monotonic() - born > self.max_lifetime:
            return False
        return _socket_is_quiet(conn)

    def _open(self) -> Connection:
        """Connect into a slot this thread has reserved; frees the slot on failure."""
        try:
            conn = psycopg2.connect(self.dsn, **self.connect_kwargs)
        except BaseException:
            with self._lock:
                self._size -= 1
                self._cond.notify()
            raise
        with self._lock:
            self._connects += 1
            self._out[id(conn)] = (conn, time.monotonic())
        return conn

    def putconn(self, conn: Connection, close: bool = False) -> None:
        """Give ``conn`` back: rolled back and kept, or closed (``close``, broken, pool closed).

        Never raises. A connection another live pool checked out goes back to that pool (say
        ``get_pool(url).putconn(conn)`` after ``close_pool()`` replaced the pool); one that no
        pool knows (or inherited across fork) is closed.
        """
        if id(conn) in self._out:
            self._return(conn, close)
            return
        owner = _owner_of(conn) if self._pid == os.getpid() else None
        if owner is None:
            _close_quietly(conn)
        else:
            owner._return(conn, close)

    def _return(self, conn: Connection, close: bool) -> None:
        keep = not close and not self.closed and self._clean(conn)
        if not keep:
            _close_quietly(conn)  # before its slot is freed: never more than max_size open
        with self._lock:
            entry = self._out.pop(id(conn), None)
            if entry is None:  # returned twice at once, or the pool was reset
                return
            if keep and not self.closed:
                self._idle.append(entry)
            else:
                self._size -= 1
                if not self.closed:
                    self._discarded += 1
            if self._waiting:
                self._cond.notify()
        if keep and self.closed:
            _close_quietly(conn)

    @staticmethod
    def _clean(conn: Connection) -> bool:
        """Roll back any transaction; False when the connection is unusable."""
        if conn.closed:
            return False
        status = conn.get_transaction_status()
        if status == _IDLE:
            return True
        if status == _UNKNOWN:
            return False
        try:
            conn.rollback()
        except Exception:
            return False
        return conn.get_transaction_status() == _IDLE

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Connection]:
        """Check out a connection; commit on success; ``putconn`` rolls back on error."""
        conn = self.getconn(timeout)
        try:
            yield conn
            conn.commit()
        finally:
            self.putconn(conn)

    def stats(self) -> dict[str, int]:
        """Current sizes and counters since creation (or since the last fork)."""
        with self._lock:
            return {
                "max_size": self.max_size,
                "size": self._size,
                "idle": len(self._idle),
                "in_use": len(self._out),
                "waiting": self._waiting,
                "waits": self._waits,
                "timeouts": self._timeouts,
                "connects": self._connects,
                "discarded": self._discarded,
            }

    def close(self) -> None:
        """Close idle connections, fail waiters with ``PoolClosed``; returned ones get closed."""
        with self._lock:
            self.closed = True
            idle, self._idle = self._idle, []
            self._size -= len(idle)
            self._cond.notify_all()
        for conn, _ in idle:
            _close_quietly(conn)


_POOLS: weakref.WeakSet[ConnectionPool] = weakref.WeakSet()
_RECHECK = 1.0  # seconds between a waiter's looks for slots freed by a caller's close()


def _owner_of(conn: Connection) -> ConnectionPool | None:
    """The live pool that checked out ``conn``, if any (the slow path of ``putconn``)."""
    key = id(conn)
    for _ in range(3):
        try:
            pools = list(_POOLS)
        except RuntimeError:  # another thread created a pool during the copy
            continue
        for pool in pools:
            entry = pool._out.get(key)
            if entry is not None and entry[0] is conn:
                return pool
        return None
    return None


def _after_fork_in_child() -> None:
    for pool in list(_POOLS):
        pool._after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)

_pools: dict[str, ConnectionPool] = {}
_pools_lock = threading.Lock()
# dsn -> connect_kwargs of a pool close_pool() closed while connections were checked out: the
# next get_pool() may well be the ``get_pool(url).putconn(conn)`` in a ``finally`` (no kwargs),
# so the new pool opens nothing up front and keeps the old one's connect_kwargs
_closed_busy: dict[str, dict[str, Any]] = {}


def _env_number(name: str, default: float | None) -> float | None:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def get_pool(dsn: str | None = None, **connect_kwargs: Any) -> ConnectionPool:
    """The process-wide pool for ``dsn`` (default: env ``DATABASE_URL``), created on first use.

    The first call's ``connect_kwargs`` configure the pool; later calls just return it. It
    opens ``DB_POOL_MIN_SIZE`` connections at once, unless it replaces a pool ``close_pool()``
    closed while connections were checked out: then it opens none up front (their ``putconn``
    would otherwise connect) and, when this call gives no ``connect_kwargs``, keeps the old
    pool's.
    """
    if dsn is None:
        dsn = os.environ.get("DATABASE_URL")
        if not dsn:
            raise PoolError("get_pool: no dsn given and DATABASE_URL is not set")
    pool = _pools.get(dsn)
    if pool is not None and not pool.closed:
        return pool
    with _pools_lock:
        pool = _pools.get(dsn)
        if pool is None or pool.closed:
            min_size = int(_env_number("DB_POOL_MIN_SIZE", 1))
            lazy = dsn in _closed_busy
            connect_kwargs = connect_kwargs or _closed_busy.get(dsn, {})
            _closed_busy.pop(dsn, None)
            pool = _pools[dsn] = ConnectionPool(
                dsn,
                min_size=0 if lazy else min_size,
                max_size=int(_env_number("DB_POOL_MAX_SIZE", 10)),
                timeout=_env_number("DB_POOL_TIMEOUT", 30.0),
                max_lifetime=_env_number("DB_POOL_MAX_LIFETIME", None),
                **connect_kwargs,
            )
            pool.min_size = min_size  # configured; none opened up front when lazy
        return pool


def close_pool() -> None:
    """Close every pool ``get_pool`` created (for tests and shutdown hooks)."""
    with _pools_lock:
        pools = list(_pools.items())
        _pools.clear()
        for dsn, pool in pools:
            pool.close()
            if pool.stats()["in_use"]:
                _closed_busy[dsn] = pool.connect_kwargs


def getconn(
    dsn: str | None = None,
    *,
    connection_factory: Any = None,
    cursor_factory: Any = None,
    **params: Any,
) -> Connection:
    """A connection from the process-wide pool for these ``psycopg2.connect`` arguments.

    Takes what ``psycopg2.connect`` takes (a DSN, keyword parameters, ``**config``); the same
    arguments give the same pool. Give the connection back with :func:`putconn`.
    """
    if params:
        dsn = make_dsn(dsn, **params)
    factories = {"connection_factory": connection_factory, "cursor_factory": cursor_factory}
    return get_pool(dsn, **{k: v for k, v in factories.items() if v is not None}).getconn()


def putconn(conn: Any) -> None:
    """Give ``conn`` back to the pool it came from; a connection no pool knows (a SQLite
    request connection, a plain one) is closed instead. Never raises for ``None``."""
    if conn is None:
        return
    owner = _owner_of(conn)
    if owner is None:
        conn.close()
    else:
        owner.putconn(conn)


@contextlib.contextmanager
def borrowed(conn: Any) -> Iterator[Any]:
    """``with borrowed(getconn(...)) as conn:``: give ``conn`` back when the block ends."""
    try:
        yield conn
    finally:
        putconn(conn)
