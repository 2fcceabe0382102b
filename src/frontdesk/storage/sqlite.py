"""SQLite: units of work run on the event loop, committed together once per loop iteration.

The first write of a loop iteration opens `BEGIN IMMEDIATE` and schedules the COMMIT for the
end of the iteration; every write of that iteration runs inside it. A unit's caller gets its
result only after the COMMIT returned (explicit group commit, performance.md appendix).

A unit that fails must leave nothing behind, and the units beside it in the batch must not
suffer for it. A unit that fails before it changed a row (a refused request, nearly every
failure) has nothing to undo. One that fails after writing rolls the whole batch back, and
the other units of the batch run again in the next one, as a unit that lost a race does
(their callers have no answer yet). A SAVEPOINT per unit would undo the failing unit alone,
but it costs every unit: SQLite copies each page the unit changes that the batch had changed
already into a sub-journal (a temporary file past 64 KiB): 3-11% of the CPU of a new
conversation or call.

Why on the loop and not on a writer thread: a unit is a few statements of microseconds each,
and a second Python thread makes the two threads trade the GIL at every SQLite call, which
measured several times slower than doing the work where the request already is. The two things
that could block the loop for long are kept off it: another process holding the write lock
(BEGIN is retried asynchronously instead of waiting in SQLite's busy handler) and WAL
checkpoints with their fsync (a background thread runs them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from frontdesk.errors import Busy
from frontdesk.storage.database import RACE_RETRIES, LostRace, P, T, Work
from frontdesk.storage.sql import Compiled, Deferred, Query, Row

log = logging.getLogger(__name__)

#: how long a write waits for another process to release the write lock
LOCK_WAIT_SECONDS = 5.0
CHECKPOINT_INTERVAL_SECONDS = 1.0
#: WAL frames (pages) past which a checkpoint also makes the next writer start the WAL over
#: (64 MiB at the default 4 KiB page); the file is cut back to JOURNAL_SIZE_LIMIT then
WAL_RESTART_FRAMES = 16384
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
RESTART_WAIT_MS = 100


def run_to_completion(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends, in one step.

    SQLite units of work await only `SqliteTx` methods, which do their I/O synchronously.
    """
    try:
        coro.send(None)
    except StopIteration as finished:
        return finished.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a SQLite unit of work awaited something other than its Tx")


#: prepared statements kept per connection: more than the app has (Python's default, 128, is
#: about the number of statements in the code; past it each execute would prepare again)
CACHED_STATEMENTS = 1024


CACHE_KIB = 64 * 1024


def _connect(path: str, synchronous: str, busy_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, cached_statements=CACHED_STATEMENTS
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute(f"PRAGMA busy_timeout={busy_ms}")
    conn.execute("PRAGMA foreign_keys=ON")
    # SQLite's default page cache is 2 MB: past that, statements read index pages back from
    # the OS with a system call each (64 MB is a ceiling, not an allocation)
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
    return conn


class _RunAgain(Exception):
    """The unit's batch was rolled back because another unit in it failed after writing."""


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class SqliteTx:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection, memo: dict[Any, Any]) -> None:
        self._conn = conn
        self.memo = memo
        self.now = datetime.now(UTC)

    def _one(self, compiled: Compiled, args: tuple[Any, ...]) -> Row | None:
        if compiled.rowid_column is not None:
            cursor = self._conn.execute(compiled.sql_without_returning, args)
            return {compiled.rowid_column: cursor.lastrowid} if cursor.rowcount > 0 else None
        values = self._conn.execute(compiled.sql, args).fetchone()
        return None if values is None else compiled.row(values)

    async def one(self, query: Query, /, **params: Any) -> Row | None:
        compiled = query.compiled("sqlite")
        return self._one(compiled, compiled.args(params))

    async def all(self, query: Query, /, **params: Any) -> list[Row]:
        compiled = query.compiled("sqlite")
        cursor = self._conn.execute(compiled.sql, compiled.args(params))
        return [compiled.row(values) for values in cursor.fetchall()]

    async def all_alone(self, query: Query, /, **params: Any) -> list[Row]:
        return await self.all(query, **params)

    async def run(self, query: Query, /, **params: Any) -> int:
        compiled = query.compiled("sqlite")
        return self._conn.execute(compiled.sql, compiled.args(params)).rowcount

    async def run_many(self, query: Query, rows: Sequence[Mapping[str, Any]], /) -> None:
        if rows:
            compiled = query.compiled("sqlite")
            self._conn.executemany(compiled.sql, [compiled.args(row) for row in rows])

    def defer(
        self, query: Query, /, *, claim: bool = False, confirms: bool = False, **params: Any
    ) -> Deferred:
        """Run at once: SQLite has no round trips to save."""
        compiled = query.compiled("sqlite")
        for name, value in params.items():  # (the values of this call's own dict)
            if value.__class__ is Deferred:
                params[name] = value.value
        deferred = Deferred(query, params, claim)
        try:
            deferred.resolve(self._one(compiled, compiled.args(params)))
        except sqlite3.IntegrityError as exc:
            if claim and "UNIQUE" in str(exc):
                raise LostRace(str(exc)) from exc
            raise
        if confirms and deferred.row is None:  # (the unit read in this transaction: a bug)
            raise LostRace(f"{compiled.sql!r} matched no row")
        return deferred

    def confirm(self, _query: Query, value: T, /, **_params: Any) -> T:
        """What the unit read stands: it runs inside the batch's BEGIN IMMEDIATE, alone."""
        return value

    async def flush(self, *, last: bool = False) -> None:
        """Nothing kept: `defer` ran every write already."""

    async def lock(self, *_key: object) -> bool:
        """Nothing to do: one connection writes, one unit at a time."""
        return False


class _Checkpointer(threading.Thread):
    """Moves the WAL into the database file in the background (the fsync stays off the loop).

    A PASSIVE checkpoint copies the WAL without stopping writers, but it never starts the
    WAL over: SQLite rewinds it only when a writer finds every frame copied, and under steady
    load the next batch has always appended more. The WAL then grew without end (860 MB
    after 30 s of calls), and every page of it went to disk. So once it is long, a RESTART
    checkpoint follows: it holds writers off while it copies the few frames written since
    the PASSIVE one (18-23 ms under a load of new calls, every 64 MiB, about every 10 s),
    and the next batch writes from the start of the file, cut back to
    JOURNAL_SIZE_LIMIT. The writer stands aside meanwhile (`restarting`: its BEGIN waits
    asynchronously, as for another process's lock); without that, batches back to back
    left the checkpoint no moment to take the write lock in.
    """

    def __init__(self, path: str, synchronous: str) -> None:
        super().__init__(name="sqlite-checkpoint", daemon=True)
        # how long a RESTART waits for a reader that began before it (writers stand aside)
        self._conn = _connect(path, synchronous, busy_ms=RESTART_WAIT_MS)
        self._stop_event = threading.Event()
        #: set while a RESTART checkpoint wants the write lock: the writer does not BEGIN
        self.restarting = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.wait(CHECKPOINT_INTERVAL_SECONDS):
                try:
                    self.checkpoint()
                except sqlite3.Error:
                    log.warning("SQLite checkpoint failed; will retry", exc_info=True)
        finally:
            self._conn.close()

    def checkpoint(self) -> bool:
        """Copy the WAL into the database; True when the WAL was also started over."""
        _busy, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        # A reader still on an older snapshot (a shell in a transaction, a backup) keeps
        # frames from being copied, and a RESTART would wait for it with writers held off:
        # left for a later round, when PASSIVE got everything.
        if frames <= WAL_RESTART_FRAMES or copied < frames:
            return False
        self.restarting.set()
        try:
            busy, _frames, _copied = self._conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        finally:
            self.restarting.clear()
        return not busy

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, path: str, synchronous: str | None = None) -> None:
        self.path = path
        self.synchronous = synchronous or "NORMAL"
        self.memo: dict[Any, Any] = {}
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._checkpointer: _Checkpointer | None = None
        #: futures of the units in the open transaction; None while none is open
        self._batch: list[asyncio.Future[None]] | None = None
        self._opening: asyncio.Future[None] | None = None

    async def open(self) -> None:
        # Datetimes are stored as ISO 8601 text, the form SQLAlchemy's DateTime reads back
        # (a process-wide registration, the same every time).
        sqlite3.register_adapter(datetime, datetime.isoformat)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # No busy waiting inside SQLite on the loop: BEGIN retries asynchronously instead.
        self._writer = _connect(self.path, self.synchronous, busy_ms=0)
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        self._reader = _connect(self.path, self.synchronous, busy_ms=100)
        self._checkpointer = _Checkpointer(self.path, self.synchronous)
        self._checkpointer.start()

    async def read(self, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        # The reader connection sees committed data only; point reads take microseconds.
        assert self._reader is not None, "database is not open"
        return run_to_completion(work(SqliteTx(self._reader, self.memo), *args, **kwargs))  # type: ignore[arg-type]

    async def write(self, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        # One writer: a unit cannot lose a race here, but the contract is the engines' own
        lost_races = 0
        while True:
            try:
                return await self._write_once(work, *args, **kwargs)
            except _RunAgain:
                continue  # another unit's failure rolled this one's batch back
            except LostRace:
                lost_races += 1
                if lost_races == RACE_RETRIES:
                    raise

    async def _write_once(self, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        while self._batch is None:
            if self._opening is None and self._try_begin():
                break
            await self._open_batch()
        conn = self._writer
        assert conn is not None, "database is not open"
        # rows written by triggers count too; a statement's count is in once its cursor is
        # done with it (SqliteTx drops or exhausts every cursor before the unit goes on)
        changes = conn.total_changes
        # From here to the end of the unit nothing awaits: the unit runs whole in this batch.
        try:
            unit = work(SqliteTx(conn, self.memo), *args, **kwargs)
            result: T = run_to_completion(unit)  # type: ignore[arg-type]
        except BaseException as exc:
            if conn.total_changes != changes or not conn.in_transaction:
                self._abandon_batch(exc)
            raise
        committed = asyncio.get_running_loop().create_future()
        assert self._batch is not None
        self._batch.append(committed)
        await committed
        return result

    def _abandon_batch(self, exc: BaseException) -> None:
        """A unit failed after writing: roll the batch back; its other units run again.

        If SQLite aborted the transaction itself (disk full, I/O error), the units before the
        failing one are told that error instead: running them again would meet it again.
        """
        assert self._writer is not None
        batch, self._batch = self._batch or [], None
        outcome: BaseException
        try:
            if self._writer.in_transaction:
                self._writer.execute("ROLLBACK")
                outcome = _RunAgain()
            else:
                log.error("SQLite rolled back a whole batch: %s", exc)
                outcome = sqlite3.OperationalError(f"the transaction was rolled back: {exc}")
        except sqlite3.Error as failed:  # (an I/O error): the waiting units fail, never hang
            log.exception("SQLite could not roll back a batch")
            outcome = failed
        for future in batch:
            if not future.done():  # (a cancelled caller's unit is not run again)
                future.set_exception(outcome)

    def _try_begin(self, *, late: bool = False) -> bool:
        """Open the batch transaction; False while another process holds the write lock.

        `late`: the batch opens after a wait, with other writers waiting to join it; its
        COMMIT is put off one loop iteration more so that they run in it first.
        """
        assert self._writer is not None, "database is not open"
        if self._standing_aside():
            return False
        try:
            self._writer.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_locked(exc):
                return False
            raise
        self._batch = []
        loop = asyncio.get_running_loop()
        if late:
            loop.call_soon(loop.call_soon, self._commit)
        else:
            loop.call_soon(self._commit)
        return True

    async def _open_batch(self) -> None:
        """Wait (asynchronously) until a batch is open; one waiter retries, the rest follow."""
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._begin_when_free())
        opening = self._opening
        try:
            await asyncio.shield(opening)
        finally:
            if self._opening is opening and opening.done():
                self._opening = None

    async def _begin_when_free(self) -> None:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        delay = 0.001
        while not self._try_begin(late=True):
            if time.monotonic() > deadline:
                raise Busy("The database is busy (another process is writing); retry shortly")
            await asyncio.sleep(delay)
            # (our own checkpoint's 20 ms or so: looked at every millisecond, not backed off)
            if not self._standing_aside():
                delay = min(delay * 2, 0.05)

    def _standing_aside(self) -> bool:
        return self._checkpointer is not None and self._checkpointer.restarting.is_set()

    def _commit(self) -> None:
        batch, self._batch = self._batch, None
        if batch is None:  # the batch was already rolled back (see _abandon_batch)
            return
        assert self._writer is not None
        try:
            self._writer.execute("COMMIT")
        except Exception as exc:
            log.exception("SQLite commit of %d units failed", len(batch))
            if self._writer.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # its units are told of `exc` anyway
                    self._writer.execute("ROLLBACK")
            for future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for future in batch:
            if not future.done():  # a cancelled request: its unit is committed all the same
                future.set_result(None)

    async def ping(self) -> None:
        assert self._reader is not None, "database is not open"
        self._reader.execute("SELECT 1").fetchone()

    async def close(self) -> None:
        if self._batch is not None:
            self._commit()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
            self._checkpointer = None
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()
        self._writer = self._reader = None
