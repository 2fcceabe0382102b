"""PostgreSQL through an asyncpg pool: each unit of work on one connection, its writes in one
transaction (or in one statement, see PostgresTx)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import sqlalchemy as sa
from asyncpg.transaction import Transaction

from frontdesk.storage import pg_batch
from frontdesk.storage.database import RACE_RETRIES, LostRace, P, T, Work
from frontdesk.storage.sql import Deferred, Query, Row, Tx


def lock_id(key: tuple[object, ...]) -> int:
    """A stable signed 64-bit id for pg_advisory_xact_lock."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresTx:
    """A unit of work on one connection. Reads go straight to the server; the transaction
    starts at the first write (BEGIN costs a round trip, and a unit that only reads, or whose
    only writes are deferred into one statement, needs none)."""

    dialect = "postgresql"

    def __init__(self, conn: asyncpg.Connection, memo: dict[Any, Any], *, writing: bool) -> None:
        self._conn = conn
        self.memo = memo
        self.now = datetime.now(UTC)
        self._writing = writing
        self._transaction: Transaction | None = None
        self._pending: list[Deferred] = []
        #: the deferred writes committed on their own: nothing may be written after them
        self._sealed = False

    async def _ready(self, query: Query | None) -> None:
        """Before a statement: pending writes go first, and a write needs the transaction."""
        if self._pending or query is None or query.writes:
            await self._begin()
        if self._pending:
            await self._send_pending()

    async def _begin(self) -> None:
        if self._transaction is None and self._writing:
            assert not self._sealed, "a write after the unit's deferred writes committed"
            self._transaction = self._conn.transaction()
            await self._transaction.start()

    async def one(self, query: Query, /, **params: Any) -> Row | None:
        await self._ready(query)
        compiled = query.compiled("postgresql")
        record = await self._conn.fetchrow(compiled.sql, *compiled.args(params))
        return None if record is None else compiled.row(record.values())

    async def all(self, query: Query, /, **params: Any) -> list[Row]:
        await self._ready(query)
        return await self._fetch(query, params)

    async def all_alone(self, query: Query, /, **params: Any) -> list[Row]:
        assert self._transaction is None and not self._pending, "not the unit's only statement"
        self._sealed = True
        return await self._fetch(query, params)

    async def _fetch(self, query: Query, params: Mapping[str, Any]) -> list[Row]:
        compiled = query.compiled("postgresql")
        records = await self._conn.fetch(compiled.sql, *compiled.args(params))
        return [compiled.row(record.values()) for record in records]

    async def run(self, query: Query, /, **params: Any) -> int:
        await self._ready(query)
        compiled = query.compiled("postgresql")
        status = await self._conn.execute(compiled.sql, *compiled.args(params))
        # asyncpg answers the command tag, e.g. "UPDATE 3" or "INSERT 0 1"
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def run_many(self, query: Query, rows: Sequence[Mapping[str, Any]], /) -> None:
        if rows:
            await self._ready(query)
            compiled = query.compiled("postgresql")
            await self._conn.executemany(compiled.sql, [compiled.args(row) for row in rows])

    def defer(
        self, query: Query, /, *, claim: bool = False, confirms: bool = False, **params: Any
    ) -> Deferred:
        assert not self._sealed, "a write after the unit's deferred writes committed"
        deferred = Deferred(query, params, claim, confirms=confirms)
        self._pending.append(deferred)
        return deferred

    def confirm(self, query: Query, _value: Any, /, **params: Any) -> Deferred:
        assert not self._sealed, "a check after the unit's deferred writes committed"
        check = Deferred(query, params, False, confirms=True)
        self._pending.append(check)
        return check

    async def flush(self, *, last: bool = False) -> None:
        if not self._pending:
            return
        found = pg_batch.batch(self._pending)
        if last and self._transaction is None and found.atomic_alone:
            self._sealed = True  # one statement, atomic on its own: no BEGIN, no COMMIT
        else:
            await self._begin()
        await self._send_pending(found)

    async def _send_pending(self, found: pg_batch.Batch | None = None) -> None:
        steps, self._pending = self._pending, []
        found = found or pg_batch.batch(steps)
        try:
            values = await self._conn.fetchrow(found.sql, *found.args)
        except asyncpg.UniqueViolationError as exc:
            if any(step.claim for step in steps):
                raise LostRace(str(exc)) from exc
            raise
        except asyncpg.DivisionByZeroError as exc:  # a check found nothing (pg_batch)
            if any(step.confirms for step in steps):
                raise LostRace(f"what the unit read changed before its writes: {exc}") from exc
            raise
        pg_batch.resolve(found, steps, values)
        if any(step.confirms and step.row is None for step in steps):
            # (a check sent alone: in the unit's transaction, see Batch.atomic_alone)
            raise LostRace("what the unit read changed before its writes")

    async def lock(self, *key: object) -> bool:
        # (outside a transaction the lock would be released as soon as it is taken)
        assert self._writing, "a lock in a unit that only reads"
        await self._ready(None)
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id(key))
        return True

    async def finish(self) -> None:
        """The end of a unit that returned: its deferred writes, then COMMIT."""
        await self.flush(last=True)
        if self._transaction is not None:
            await self._transaction.commit()

    async def abandon(self) -> None:
        """The end of a unit that raised: nothing it wrote stays."""
        self._pending = []
        if self._transaction is not None and not self._conn.is_closed():
            await self._transaction.rollback()


async def _reset(conn: asyncpg.Connection) -> None:
    """After a unit that raised: no transaction may be handed on (units leave no other session
    state behind: their locks are transaction locks, and keeping prepared statements is the
    point of keeping the connection)."""
    if conn.is_in_transaction():  # cannot happen on the happy path
        await conn.execute("ROLLBACK")


async def _run_unit(tx: PostgresTx, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    try:
        result = await work(tx, *args, **kwargs)
        await tx.finish()
    except BaseException:
        # The unit's own error is what goes on, whatever the rollback does: a unit cancelled
        # mid-query leaves the connection busy, its ROLLBACK fails, and that error in place
        # of CancelledError made a cancelled worker log it and go on running. The connection
        # is rolled back or dropped when it is given back (PostgresDatabase._unit).
        with contextlib.suppress(Exception):
            await tx.abandon()
        raise
    return result


class PostgresDatabase:
    """Units of work on up to `pool_size` connections, handed out first come, first served.

    The pool is a semaphore and a list of idle connections, not asyncpg's pool: that one
    queues its waiters so that a woken waiter loses its connection to any newcomer that
    asks first and goes to the back of the line (under load a tail of requests waited many
    rounds: p99 112 ms at p50 30 ms, 64 connections to a pool of 8), and it makes a task and
    a timer on every release: without it, a new call's app CPU fell from 344 to 288 us.
    """

    dialect = "postgresql"

    def __init__(self, dsn: str, pool_size: int = 8) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self.memo: dict[Any, Any] = {}
        self._turns = asyncio.Semaphore(pool_size)
        self._idle: list[asyncpg.Connection] = []
        self._open: set[asyncpg.Connection] = set()
        self._closed = True

    async def _connect(self) -> asyncpg.Connection:
        conn = await asyncpg.connect(
            self.dsn,
            statement_cache_size=512,
            # Every statement is prepared once per connection and run with a fresh set of
            # values: PostgreSQL's default planned most of them again on every run (a custom
            # plan each time). Our statements are point lookups and inserts whose best plan
            # does not depend on the values; planned once, the server's CPU per request fell
            # by 10-20% (getmessage 377 -> 313 us, a new call 567 -> 508 us).
            server_settings={"plan_cache_mode": "force_generic_plan"},
        )
        self._open.add(conn)
        return conn

    async def open(self) -> None:
        self._closed = False
        self._idle.append(await self._connect())  # fails here when the server is unreachable

    async def _unit(self, work: Work[P, T], writing: bool, *args: Any, **kwargs: Any) -> T:
        assert not self._closed, "database is not open"
        async with self._turns:
            if self._closed:  # (closed while this unit waited for its turn)
                raise RuntimeError("database is closed")
            conn = None
            while self._idle and conn is None:
                conn = self._idle.pop()
                if conn.is_closed():  # (the server ended it while it was idle)
                    self._open.discard(conn)
                    conn = None
            if conn is None:
                conn = await self._connect()
            try:
                tx = PostgresTx(conn, self.memo, writing=writing)
                result = await (
                    _run_unit(tx, work, *args, **kwargs) if writing else work(tx, *args, **kwargs)
                )
            except Exception:
                await self._give_back(conn, after_error=True)
                raise
            except BaseException:  # cancelled, maybe mid-query: the connection is not reused
                self._drop(conn)
                raise
            await self._give_back(conn)
            return result

    async def _give_back(self, conn: asyncpg.Connection, *, after_error: bool = False) -> None:
        if after_error and not conn.is_closed():
            try:
                await _reset(conn)
            except Exception:  # (a broken connection): the next unit connects anew
                self._drop(conn)
                return
            except BaseException:  # cancelled mid-ROLLBACK: not reused, not left open
                self._drop(conn)
                raise
        if conn.is_closed() or self._closed:
            self._drop(conn)
        else:
            self._idle.append(conn)

    def _drop(self, conn: asyncpg.Connection) -> None:
        self._open.discard(conn)
        if not conn.is_closed():
            conn.terminate()

    async def read(self, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._unit(work, False, *args, **kwargs)

    async def write(self, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(1, RACE_RETRIES + 1):
            try:
                return await self._unit(work, True, *args, **kwargs)
            except (LostRace, asyncpg.DeadlockDetectedError):
                # A deadlock's victim is rolled back whole and may run again: units lock a
                # task's row and its values in more than one order (a message: the task, then
                # its values; v4 field updates in one statement: whichever comes first)
                if attempt == RACE_RETRIES:
                    raise
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        await self.read(_ping)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._open.discard(conn)
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)
        for conn in list(self._open):  # (units still running when the server stops)
            self._drop(conn)


_SELECT_ONE = Query(sa.select(sa.literal(1)))


async def _ping(tx: Tx, /) -> None:
    await tx.one(_SELECT_ONE)
