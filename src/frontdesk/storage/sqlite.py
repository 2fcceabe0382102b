"""SQLite: one writer thread with explicit group commit, and point reads on the event loop.

Writes from concurrent requests are queued; the writer thread takes everything queued and runs
`BEGIN IMMEDIATE; unit 1; unit 2; ...; COMMIT`, each unit inside its own SAVEPOINT so that one
failing unit rolls back alone. A unit's result is released only after the COMMIT returned.
This is what makes SQLite reach 15-19k writes/s here (performance.md §3.3); a connection shared
by concurrent requests would instead mix their statements into one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

from frontdesk.storage.database import P, T, Work
from frontdesk.storage.sql import Query, Row

log = logging.getLogger(__name__)

MAX_BATCH = 256
_STOP = object()


def run_to_completion(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends, without an event loop.

    SQLite units of work await only `SqliteTx` methods, which do their I/O synchronously, so
    the whole unit completes in one step on the writer thread.
    """
    try:
        coro.send(None)
    except StopIteration as finished:
        return finished.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a SQLite unit of work awaited something other than its Tx")


def _connect(path: str, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class SqliteTx:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, memo: dict[Any, Any]) -> None:
        self._conn = conn
        self.memo = memo

    async def one(self, query: Query, /, **params: Any) -> Row | None:
        compiled = query.compiled("sqlite")
        values = self._conn.execute(compiled.sql, compiled.args(params)).fetchone()
        return None if values is None else compiled.row(values)

    async def all(self, query: Query, /, **params: Any) -> list[Row]:
        compiled = query.compiled("sqlite")
        cursor = self._conn.execute(compiled.sql, compiled.args(params))
        return [compiled.row(values) for values in cursor.fetchall()]

    async def run(self, query: Query, /, **params: Any) -> int:
        compiled = query.compiled("sqlite")
        return self._conn.execute(compiled.sql, compiled.args(params)).rowcount

    async def run_many(self, query: Query, rows: Sequence[Mapping[str, Any]], /) -> None:
        if rows:
            compiled = query.compiled("sqlite")
            self._conn.executemany(compiled.sql, [compiled.args(row) for row in rows])

    async def lock(self, *key: object) -> bool:
        """Nothing to do: the single writer already serialises every write."""
        return False


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, path: str, synchronous: str | None = None) -> None:
        self.path = path
        self.synchronous = synchronous or "NORMAL"
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._reader: sqlite3.Connection | None = None
        self.memo: dict[Any, Any] = {}

    async def open(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        writer = _connect(self.path, self.synchronous)
        self._reader = _connect(self.path, self.synchronous)
        self._thread = threading.Thread(
            target=self._writer_loop, args=(writer,), name="sqlite-writer", daemon=True
        )
        self._thread.start()

    async def read(self, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        # Point reads by key take microseconds: cheaper on the loop than a thread hop.
        assert self._reader is not None, "database is not open"
        return run_to_completion(work(SqliteTx(self._reader, self.memo), *args, **kwargs))  # type: ignore[arg-type]

    async def write(self, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        assert self._thread is not None, "database is not open"
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((work, args, kwargs, future))
        return await future

    async def ping(self) -> None:
        assert self._reader is not None, "database is not open"
        self._reader.execute("SELECT 1").fetchone()

    async def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _writer_loop(self, conn: sqlite3.Connection) -> None:
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < MAX_BATCH and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                stop = _STOP in batch
                units = [item for item in batch if item is not _STOP]
                if units:
                    _settle_soon(units, self._run_batch(conn, units))
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: sqlite3.Connection, units: list[Any]) -> list[tuple[bool, Any]]:
        tx = SqliteTx(conn, self.memo)
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for work, args, kwargs, _future in units:
                conn.execute("SAVEPOINT unit")
                try:
                    outcomes.append((True, run_to_completion(work(tx, *args, **kwargs))))
                except Exception as exc:
                    conn.execute("ROLLBACK TO unit")
                    outcomes.append((False, exc))
                conn.execute("RELEASE unit")
            conn.execute("COMMIT")
        except Exception as exc:
            log.exception("SQLite batch of %d units failed", len(units))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return [(False, exc)] * len(units)
        return outcomes


def _settle_soon(units: list[Any], outcomes: list[tuple[bool, Any]]) -> None:
    """Hand each outcome to its caller's event loop (one wake-up per loop, not per unit)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, tuple[bool, Any]]]] = {}
    for unit, outcome in zip(units, outcomes, strict=True):
        by_loop.setdefault(unit[3].get_loop(), []).append((unit, outcome))
    for loop, pairs in by_loop.items():
        loop.call_soon_threadsafe(_settle, [u for u, _ in pairs], [o for _, o in pairs])


def _settle(units: list[Any], outcomes: list[tuple[bool, Any]]) -> None:
    for (_work, _args, _kwargs, future), (ok, value) in zip(units, outcomes, strict=True):
        if future.done():  # the request was cancelled (client went away)
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
