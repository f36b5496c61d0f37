"""A thread-safe, fork-safe psycopg2 pool and the process-wide pool ``get_pool()``.

Why not ``psycopg2.pool``: ``SimpleConnectionPool`` is not thread-safe, and it and
``ThreadedConnectionPool`` close a returned connection whenever ``minconn`` are already
idle, so under load they reconnect on almost every call. This pool keeps the connections
it opened (up to ``max_size``), blocks up to ``timeout`` seconds when all are in use,
hands a returned connection to the longest waiter (first come, first served), and never
connects while holding its lock. The API follows psycopg_pool's (``getconn``,
``putconn``, ``connection()``, ``stats()``, ``close()``, ``with pool:``, ``reset``,
``max_idle``, ``max_lifetime``).

A returned connection is handed over clean: ``putconn`` rolls back an open or failed
transaction, restores the client-side settings a borrower changed (``autocommit``,
``readonly``, ``deferrable``, ``isolation_level``, ``cursor_factory``), runs the
``reset`` hook when one is given (server session state such as ``SET
statement_timeout``: ``reset="DISCARD ALL"`` costs one round trip per return) and drops
closed or broken connections, freeing their slot. Before handing out an idle connection
the pool polls its socket without blocking: an idle connection has nothing to read
unless the server closed it, so a readable socket means the connection is replaced. A
caller that closed a checked-out connection instead of returning it (legacy
``conn.close()``) has its slot reclaimed when a ``getconn`` finds no free one.

When connecting fails after the pool has connected once (server restarting,
``max_connections`` reached), callers do not fail: they wait, up to their timeout, for a
connection another caller returns, while one of them retries the connect with
exponential back-off. ``PoolTimeout`` then names the last connect error. A pool that
never connected raises the connect error at once, so a wrong DSN or password fails fast.
Events are logged to ``logging.getLogger("claun.db_pool")``.

``get_pool()`` reads ``DATABASE_URL`` and ``DB_POOL_MIN_SIZE`` (default 1),
``DB_POOL_MAX_SIZE`` (10), ``DB_POOL_TIMEOUT`` (30 s), ``DB_POOL_MAX_LIFETIME`` (3600
s), ``DB_POOL_MAX_IDLE`` (600 s), ``DB_POOL_CONNECT_TIMEOUT`` (10 s) and
``DB_POOL_RESET`` (SQL run on each returned connection, e.g. ``DISCARD ALL``; default
none).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import os
import random
import select
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import psycopg2
import psycopg2.extensions
from psycopg2.extensions import make_dsn
from psycopg2.pool import PoolError

if TYPE_CHECKING:
    from typing import Self  # Python 3.11; annotations are not evaluated

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
_log = logging.getLogger("claun.db_pool")
_monotonic = time.monotonic
_getpid = os.getpid
_RECHECK = 1.0  # seconds between a waiter's looks for slots freed by a caller's close()
# seconds before the first reconnect attempt; doubles up to _BACKOFF_MAX
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 2.0


class PoolTimeout(PoolError):
    """No connection became free within the timeout."""


class PoolClosed(PoolError):
    """The pool was closed."""


def _close_quietly(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        conn.close()


def _poller(conn: Connection) -> Callable[[float], list[Any]]:
    """``poll(0)`` on the connection's socket: events if the server sent or closed data.

    Made once per connection, so a checkout pays one system call and no set-up.
    """
    fd = conn.fileno()
    if not _HAS_POLL:  # Windows
        return lambda timeout: select.select([fd], [], [], timeout)[0]
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return poller.poll


def _blind(conn: Connection) -> None:
    """Point an inherited connection's descriptor at /dev/null, in a forked child.

    No lock is taken and nothing is closed: a thread of the parent may have held the
    connection's lock when the process forked, and that thread does not exist here.
    Whatever later closes the connection in this process sends its Terminate message
    nowhere.
    """
    with contextlib.suppress(Exception):
        fd = conn.fileno()
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)


def sql_reset(sql: str) -> Callable[[Connection], None]:
    """A ``reset`` hook running ``sql`` (``RESET ALL``, ``DISCARD ALL``), autocommit."""

    def reset(conn: Connection) -> None:
        autocommit = conn.autocommit
        conn.autocommit = True  # DISCARD ALL cannot run inside a transaction block
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.autocommit = autocommit

    reset.__qualname__ = f"sql_reset({sql!r})"
    return reset


def _settings(conn: Connection) -> tuple[Any, ...]:
    """The client-side settings a borrower may change and ``putconn`` restores."""
    return (
        conn.autocommit,
        conn.isolation_level,
        conn.readonly,
        conn.deferrable,
        conn.cursor_factory,
    )


def _restore(conn: Connection, settings: tuple[Any, ...]) -> None:
    autocommit, isolation_level, readonly, deferrable, cursor_factory = settings
    conn.cursor_factory = cursor_factory
    conn.set_session(  # leaving autocommit also resets the default_transaction_* it SET
        isolation_level="DEFAULT" if isolation_level is None else isolation_level,
        readonly="DEFAULT" if readonly is None else readonly,
        deferrable="DEFAULT" if deferrable is None else deferrable,
        autocommit=autocommit,
    )


class _Pooled:
    """One connection the pool opened, with what it needs to judge and clean it."""

    __slots__ = ("conn", "expires", "idle_since", "poll", "settings")

    def __init__(self, conn: Connection, expires: float) -> None:
        self.conn = conn
        self.expires = expires
        self.settings = _settings(conn)
        self.idle_since = 0.0
        # used by the thread that checked the connection out only
        self.poll = _poller(conn)


_SLOT = object()  # granted to a waiter: a free slot, to connect into


class _Waiter:
    __slots__ = ("cond", "grant")

    def __init__(self, lock: threading.Lock) -> None:
        self.cond = threading.Condition(lock)
        self.grant: _Pooled | object | None = None


class ConnectionPool:
    """At most ``max_size`` psycopg2 connections to ``dsn``, shared between threads.

    ``connect_kwargs`` go to ``psycopg2.connect`` (for example ``cursor_factory``).
    ``min_size`` connections are opened at once. ``max_lifetime`` (seconds, each
    connection gets 90-100% of it so they do not all expire together) and ``max_idle``
    (idle connections above ``min_size``, trimmed as connections are returned) replace
    or close old connections; ``None`` means no limit. ``connect_timeout`` (seconds)
    bounds one connect attempt; libpq counts whole seconds, at least 2. ``reset`` is
    called with each returned connection after its rollback (a callable, or SQL such as
    ``"DISCARD ALL"``); a reset that raises or leaves a transaction open discards the
    connection.
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
        max_lifetime: float | None = 3600.0,
        max_idle: float | None = 600.0,
        connect_timeout: float | None = 10.0,
        reset: Callable[[Connection], object] | str | None = None,
        **connect_kwargs: Any,
    ) -> None:
        if max_size < 1 or not 0 <= min_size <= max_size:
            raise ValueError(
                f"need 0 <= min_size <= max_size >= 1, got {min_size}, {max_size}"
            )
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self.timeout = timeout
        self.max_lifetime = max_lifetime
        self.max_idle = max_idle
        self.connect_timeout = connect_timeout
        self.reset = sql_reset(reset) if isinstance(reset, str) else reset
        self.connect_kwargs = connect_kwargs
        self.closed = False
        self._start_afresh()
        _POOLS.add(self)
        # a refused connect after the first: the rest come later
        for _ in range(min_size):
            with self._lock:
                self._size += 1
                self._opening += 1
            conn = self._open(_monotonic() + timeout)
            if conn is None:
                break
            self.putconn(conn)

    def _start_afresh(self) -> None:
        self._pid = _getpid()
        self._lock = threading.Lock()
        self._idle: list[_Pooled] = []  # LIFO at the end; the longest idle at index 0
        self._out: dict[int, _Pooled] = {}  # checked out, by id() of the connection
        self._waiters: collections.deque[_Waiter] = collections.deque()
        self._size = 0  # slots taken: idle + checked out + being opened
        self._opening = 0
        self._retry_at = 0.0  # while connecting fails: no new attempt before this time
        self._backoff = 0.0
        self._last_error = ""
        self._waits = self._timeouts = self._connects = self._discarded = 0
        self._errors = 0
        self._wait_time = self._longest_wait = 0.0

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's connections and start afresh."""
        for pooled in [*self._idle, *self._out.values()]:
            _blind(pooled.conn)
        self._start_afresh()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def getconn(self, timeout: float | None = None) -> Connection:
        """A live connection; waits up to ``timeout`` (default: the pool's) if none."""
        if self._pid != _getpid():
            self._after_fork()
        with self._lock:
            if self._idle and not self._waiters:
                pooled = self._idle.pop()
                self._out[id(pooled.conn)] = pooled
            else:
                pooled = None
        if pooled is not None:
            conn = pooled.conn
            if not conn.closed and _monotonic() < pooled.expires and not pooled.poll(0):
                return conn
        return self._getconn_slow(pooled, self.timeout if timeout is None else timeout)

    def _getconn_slow(self, pooled: _Pooled | None, wait: float) -> Connection:
        deadline = _monotonic() + wait
        while True:
            # dead or expired: close it, connect into its slot if allowed
            if pooled is not None:
                _close_quietly(pooled.conn)
                with self._lock:
                    # a waiter reclaimed it
                    if self._out.pop(id(pooled.conn), None) is None:
                        grant: _Pooled | object = self._acquire(deadline, wait)
                    elif self._may_connect(_monotonic()):
                        self._discarded += 1
                        self._opening += 1
                        grant = _SLOT
                    else:
                        self._discarded += 1
                        self._size -= 1
                        grant = self._acquire(deadline, wait)
            else:
                with self._lock:
                    grant = self._acquire(deadline, wait)
            if grant is _SLOT:
                pooled = None
                conn = self._open(deadline)
                if conn is not None:
                    return conn
                continue
            pooled = grant  # type: ignore[assignment]
            conn = pooled.conn
            if not conn.closed and _monotonic() < pooled.expires and not pooled.poll(0):
                return conn

    def _may_connect(self, now: float) -> bool:
        """A connect may start (lock held): not backing off, or one probe at a time."""
        if not self._retry_at:
            return True
        return now >= self._retry_at and not self._opening

    def _acquire(self, deadline: float, wait: float) -> _Pooled | object:
        """An idle connection (checked out) or ``_SLOT``; waits in line (lock held)."""
        if self.closed:
            raise PoolClosed("the connection pool is closed")
        now = _monotonic()
        while not self._waiters:
            if self._idle:
                pooled = self._idle.pop()
                self._out[id(pooled.conn)] = pooled
                return pooled
            if self._size < self.max_size and self._may_connect(now):
                self._size += 1
                self._opening += 1
                return _SLOT
            if not self._reclaim_closed():
                break
        waiter = _Waiter(self._lock)
        self._waiters.append(waiter)
        self._waits += 1
        started = now
        try:
            while waiter.grant is None:
                if self.closed:
                    raise PoolClosed("the connection pool is closed")
                if now >= deadline:
                    self._timeouts += 1
                    raise PoolTimeout(self._timeout_message(wait, now))
                if self._size < self.max_size and self._may_connect(now):
                    self._size += 1
                    self._opening += 1
                    return _SLOT
                if not self._reclaim_closed():
                    wake = min(deadline, now + _RECHECK)
                    if now < self._retry_at < wake and self._size < self.max_size:
                        wake = self._retry_at
                    waiter.cond.wait(wake - now)
                now = _monotonic()
            return waiter.grant
        finally:
            if waiter.grant is None:
                self._waiters.remove(waiter)
            waited = _monotonic() - started
            self._wait_time += waited
            self._longest_wait = max(self._longest_wait, waited)

    def _timeout_message(self, wait: float, now: float) -> str:
        if self._retry_at and self._size < self.max_size:
            return (
                f"no database connection after waiting {wait:g}s: the pool holds "
                f"{self._size} of {self.max_size} connections and connecting failed "
                f"({self._errors} errors so far, retrying every {self._backoff:.1f}s); "
                f"last error: {self._last_error}"
            )
        return (
            f"no database connection free after waiting {wait:g}s: all "
            f"{self.max_size} connections of the pool (max_size) are in use"
        )

    def _grant_slots(self) -> None:
        """Free slots to the longest waiters, if connecting is allowed (lock held)."""
        now = _monotonic()
        while self._waiters and self._size < self.max_size and self._may_connect(now):
            waiter = self._waiters.popleft()
            self._size += 1
            self._opening += 1
            waiter.grant = _SLOT
            waiter.cond.notify()

    def _reclaim_closed(self) -> bool:
        """Free the slots of checked-out connections their caller closed (lock held).

        Legacy code closes a pooled connection instead of returning it; without this its
        slot would stay taken for ever. Only called when no slot is free, so checkouts
        stay cheap.
        """
        dead = [key for key, pooled in self._out.items() if pooled.conn.closed]
        for key in dead:
            del self._out[key]
        self._size -= len(dead)
        self._discarded += len(dead)
        if dead:
            self._grant_slots()
        return bool(dead)

    def _open(self, deadline: float) -> Connection | None:
        """Connect into a slot this thread holds; on failure free it and back off.

        Returns None when the caller should wait again; raises when the pool never
        connected (a wrong DSN fails fast) or the failure is not a connection error.
        """
        limit = max(0.0, deadline - _monotonic())
        if self.connect_timeout:
            limit = min(limit, self.connect_timeout)
        try:
            conn = psycopg2.connect(
                self.dsn,
                connect_timeout=max(2, math.ceil(limit)),
                **self.connect_kwargs,
            )
        except BaseException as exc:
            with self._lock:
                self._size -= 1
                self._opening -= 1
                if not isinstance(exc, Exception):
                    self._grant_slots()
                    raise
                self._errors += 1
                self._backoff = min(
                    _BACKOFF_MAX, max(_BACKOFF_FIRST, self._backoff * 2)
                )
                self._retry_at = _monotonic() + self._backoff * random.uniform(0.8, 1.0)
                self._last_error = f"{type(exc).__name__}: {exc}".strip()
                # never connected, and no other attempt in flight that might: a wrong
                # DSN
                never = not self._connects and not self._opening
                fail_now = never or not isinstance(exc, psycopg2.OperationalError)
            _log.warning(
                "connect failed (%d connections open, next attempt in %.1fs): %s",
                self._size,
                self._backoff,
                self._last_error,
            )
            if fail_now:
                raise
            return None
        lifetime = self.max_lifetime
        expires = (
            math.inf
            if lifetime is None
            else _monotonic() + lifetime * random.uniform(0.9, 1)
        )
        pooled = _Pooled(conn, expires)
        with self._lock:
            self._opening -= 1
            self._connects += 1
            self._out[id(conn)] = pooled
            recovered = bool(self._retry_at)
            self._retry_at = self._backoff = 0.0
            if recovered:
                self._grant_slots()
        if recovered:
            _log.info("connected again after %d failed attempts", self._errors)
        return conn

    def putconn(self, conn: Connection, close: bool = False) -> None:
        """Give ``conn`` back: kept clean, or closed (``close``, broken, pool shut).

        A connection another live pool checked out goes back to that pool (say
        ``get_pool(url).putconn(conn)`` after ``close_pool()`` replaced the pool); one
        that no pool knows (or inherited across fork) is closed. Returning a connection
        that is already back in a pool raises ``PoolError`` and changes nothing.
        """
        # an object in _out is alive: its id is its own
        pooled = self._out.get(id(conn))
        if pooled is not None:
            self._return(pooled, close)
            return
        owner = _owner_of(conn) if self._pid == _getpid() else None
        if owner is None:
            _close_quietly(conn)
        else:
            owner.putconn(conn, close)

    def _return(self, pooled: _Pooled, close: bool) -> None:
        conn = pooled.conn
        now = _monotonic()
        if close or self.closed or conn.closed or now >= pooled.expires:
            keep = False
        elif (
            conn.get_transaction_status() == _IDLE
            and self.reset is None
            and (
                conn.autocommit,
                conn.isolation_level,
                conn.readonly,
                conn.deferrable,
                conn.cursor_factory,
            )
            == pooled.settings
        ):
            keep = True  # nothing to clean: the common case, kept cheap
        else:
            keep = self._clean(pooled)
        if not keep:
            # before its slot is freed: never more than max_size open
            _close_quietly(conn)
        with self._lock:
            if self._out.pop(id(conn), None) is None:
                # it broke or was closed, and a waiter reclaimed its slot
                if conn.closed:
                    return
                raise PoolError(
                    "connection returned twice at once; the second putconn ignored"
                )
            if keep and not self.closed:
                if self._waiters:  # first come, first served
                    waiter = self._waiters.popleft()
                    self._out[id(conn)] = pooled
                    waiter.grant = pooled
                    waiter.cond.notify()
                    return
                pooled.idle_since = now
                self._idle.append(pooled)
                idle = self._idle
                if (
                    self.max_idle is not None
                    and now - idle[0].idle_since > self.max_idle
                    and self._size > self.min_size
                ):
                    _close_quietly(idle.pop(0).conn)
                    self._size -= 1
                    self._discarded += 1
                return
            self._size -= 1
            if not self.closed:
                self._discarded += 1
                self._grant_slots()
        if keep:  # the pool closed meanwhile
            _close_quietly(conn)

    def _clean(self, pooled: _Pooled) -> bool:
        """Roll back, restore settings, run ``reset``; False if it is dead."""
        conn = pooled.conn
        if conn.closed:
            return False
        status = conn.get_transaction_status()
        if status != _IDLE:
            if status == _UNKNOWN:
                return False
            try:
                conn.rollback()
            except Exception:  # noqa: BLE001 - whatever the failure, the connection goes
                return False
            if conn.get_transaction_status() != _IDLE:
                return False
        try:
            if _settings(conn) != pooled.settings:
                _restore(conn, pooled.settings)
            if self.reset is None:
                return True
            self.reset(conn)
        except Exception as exc:  # noqa: BLE001 - the reset hook is the user's code
            _log.warning(
                "discarding a returned connection that could not be reset: %s", exc
            )
            return False
        return not conn.closed and conn.get_transaction_status() == _IDLE

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Connection]:
        """Check out a connection; commit on success; ``putconn`` rolls back errors."""
        conn = self.getconn(timeout)
        try:
            yield conn
            conn.commit()
        finally:
            self.putconn(conn)

    def stats(self) -> dict[str, Any]:
        """Current sizes and counters since creation (or since the last fork).

        ``connection_errors`` counts failed connects; ``wait_time`` and ``longest_wait``
        are the seconds callers spent waiting in ``getconn`` (in total and the longest
        one).
        """
        with self._lock:
            return {
                "max_size": self.max_size,
                "size": self._size,
                "idle": len(self._idle),
                "in_use": len(self._out),
                "waiting": len(self._waiters),
                "waits": self._waits,
                "timeouts": self._timeouts,
                "connects": self._connects,
                "connection_errors": self._errors,
                "discarded": self._discarded,
                "wait_time": self._wait_time,
                "longest_wait": self._longest_wait,
            }

    def close(self) -> None:
        """Close idle ones, fail waiters (``PoolClosed``), close returned ones."""
        with self._lock:
            self.closed = True
            idle, self._idle = self._idle, []
            self._size -= len(idle)
            for waiter in self._waiters:
                waiter.cond.notify()
        for pooled in idle:
            _close_quietly(pooled.conn)


_POOLS: weakref.WeakSet[ConnectionPool] = weakref.WeakSet()


def _owner_of(conn: Connection) -> ConnectionPool | None:
    """The live pool that checked out ``conn``, if any (the slow path of ``putconn``).

    Raises ``PoolError`` when ``conn`` is idle in a pool already: it was returned twice.
    """
    key = id(conn)
    for _ in range(3):
        try:
            pools = list(_POOLS)
        except RuntimeError:  # another thread created a pool during the copy
            continue
        for pool in pools:
            if key in pool._out:
                return pool
            with pool._lock:
                if any(idle.conn is conn for idle in pool._idle):
                    raise PoolError(
                        "putconn: this connection was already returned to the pool; "
                        "the second return was ignored"
                    )
        return None
    return None


def _after_fork_in_child() -> None:
    global _pools_lock
    # another thread may have held it when the process forked
    _pools_lock = threading.Lock()
    for pool in list(_POOLS):
        pool._after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)

_pools: dict[str, ConnectionPool] = {}
_pools_lock = threading.Lock()
# dsn -> connect_kwargs of a pool close_pool() closed while connections were checked
# out: the next get_pool() may well be the ``get_pool(url).putconn(conn)`` in a
# ``finally`` (no kwargs), so the new pool opens nothing up front and keeps the old
# one's connect_kwargs
_closed_busy: dict[str, dict[str, Any]] = {}


def _env_number(name: str, default: float | None) -> float | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if value.lower() in ("none", "off"):
        return None
    try:
        return float(value)
    except ValueError:
        raise PoolError(
            f"environment variable {name}: expected a number, got {value!r}"
        ) from None


def get_pool(dsn: str | None = None, **connect_kwargs: Any) -> ConnectionPool:
    """The process-wide pool for ``dsn`` (default ``$DATABASE_URL``), made on first use.

    The first call's ``connect_kwargs`` configure the pool; later calls just return it.
    It opens ``DB_POOL_MIN_SIZE`` connections at once, unless it replaces a pool
    ``close_pool()`` closed while connections were checked out: then it opens none up
    front (their ``putconn`` would otherwise connect) and, when this call gives no
    ``connect_kwargs``, keeps the old pool's.
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
            min_size = int(_env_number("DB_POOL_MIN_SIZE", 1) or 0)
            lazy = dsn in _closed_busy
            connect_kwargs = connect_kwargs or _closed_busy.get(dsn, {})
            _closed_busy.pop(dsn, None)
            pool = _pools[dsn] = ConnectionPool(
                dsn,
                min_size=0 if lazy else min_size,
                max_size=int(_env_number("DB_POOL_MAX_SIZE", 10) or 10),
                timeout=_env_number("DB_POOL_TIMEOUT", 30.0) or 0.0,
                max_lifetime=_env_number("DB_POOL_MAX_LIFETIME", 3600.0),
                max_idle=_env_number("DB_POOL_MAX_IDLE", 600.0),
                connect_timeout=_env_number("DB_POOL_CONNECT_TIMEOUT", 10.0),
                reset=os.environ.get("DB_POOL_RESET", "").strip() or None,
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

    Takes what ``psycopg2.connect`` takes (a DSN, keyword parameters, ``**config``); the
    same arguments give the same pool. Give the connection back with :func:`putconn`.
    """
    if params:
        dsn = make_dsn(dsn, **params)
    factories = {
        "connection_factory": connection_factory,
        "cursor_factory": cursor_factory,
    }
    return get_pool(
        dsn, **{k: v for k, v in factories.items() if v is not None}
    ).getconn()


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
    """``with borrowed(getconn(...)) as conn:`` gives ``conn`` back after the block."""
    try:
        yield conn
    finally:
        putconn(conn)
