"""PostgreSQL: units of work get a connection in the order they asked for one."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import pytest
import sqlalchemy as sa

from frontdesk.storage.database import postgres_dsn
from frontdesk.storage.postgres import PostgresDatabase
from frontdesk.storage.sql import Query, Tx

ONE = Query(sa.select(sa.literal(1).label("one")))


async def test_units_get_the_connection_first_come_first_served(database_url: str) -> None:
    """A unit that just gave its connection back and asks again queues behind those waiting.

    asyncpg's own queue hands a returned connection to whoever asks first, and a woken waiter
    that finds it gone waits again at the back: under load some requests waited many rounds.
    """
    if not database_url.startswith("postgresql"):
        pytest.skip("the pool is PostgreSQL's")
    db = PostgresDatabase(postgres_dsn(database_url), pool_size=1)
    await db.open()
    tickets = itertools.count()
    served: list[int] = []

    async def unit(tx: Tx, ticket: int) -> None:
        served.append(ticket)
        await tx.one(ONE)

    async def client(pause: int) -> None:
        for _ in range(5):
            for _ in range(pause):  # newcomers arrive at every moment, as requests do
                await asyncio.sleep(0)
            await db.read(unit, next(tickets))

    try:
        await asyncio.gather(*(client(pause) for pause in range(10)))
    finally:
        await db.close()
    assert len(served) == 50
    assert served == sorted(served)


async def test_a_connection_comes_back_clean_or_is_replaced(database_url: str) -> None:
    """A unit that failed inside its transaction leaves its connection rolled back and kept
    (a refused request must not cost a reconnect); one the server ended while idle is
    replaced, not handed on."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the pool is PostgreSQL's")
    db = PostgresDatabase(postgres_dsn(database_url), pool_size=1)
    await db.open()
    pid = Query(sa.select(sa.func.pg_backend_pid().label("pid")))
    locked = Query(
        sa.text("SELECT 1 AS one FROM pg_class LIMIT 1 FOR UPDATE").columns(one=sa.Integer)
    )

    async def fails_in_transaction(tx: Tx) -> None:
        await tx.one(locked)  # (a row lock: the unit's transaction is open)
        raise ValueError("refused")

    async def state(tx: Tx) -> tuple[int, bool]:
        row = await tx.one(pid)
        assert row is not None
        return int(row["pid"]), tx._conn.is_in_transaction()  # type: ignore[attr-defined]

    try:
        with pytest.raises(ValueError, match="refused"):
            await db.write(fails_in_transaction)
        first_pid, in_transaction = await db.read(state)
        assert not in_transaction
        assert (await db.read(state))[0] == first_pid  # the same connection, kept

        async def end_backend(tx: Tx) -> None:
            ended = sa.text(f"SELECT pg_terminate_backend({first_pid}) AS ended")
            await tx.one(Query(ended.columns(ended=sa.Boolean)))

        other = PostgresDatabase(postgres_dsn(database_url), pool_size=1)
        await other.open()
        try:
            await other.read(end_backend)
        finally:
            await other.close()
        for _ in range(50):  # the client notices the closed socket on its next loop turn
            await asyncio.sleep(0.01)
        second_pid, _ = await db.read(state)
        assert second_pid != first_pid
    finally:
        await db.close()


async def test_a_unit_cancelled_while_its_connection_rolls_back_leaves_none_open(
    database_url: str,
) -> None:
    """A cancellation landing in the ROLLBACK after a failed unit drops the connection: it is
    neither kept for the next unit nor left open beside the ones that are."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the pool is PostgreSQL's")
    db = PostgresDatabase(postgres_dsn(database_url), pool_size=1)
    await db.open()

    async def fails_in_transaction(tx: Tx) -> None:
        await tx._conn.execute("BEGIN")  # type: ignore[attr-defined]
        asyncio.get_running_loop().call_soon(unit.cancel)  # lands in the ROLLBACK
        raise ValueError("refused")

    unit = asyncio.ensure_future(db.read(fails_in_transaction))
    try:
        with pytest.raises(asyncio.CancelledError):
            await unit
        assert db._open == set(db._idle)  # every open connection is one a unit may take
        assert await db.read(lambda tx: tx.one(ONE)) == {"one": 1}
    finally:
        await db.close()


async def test_a_unit_waiting_for_its_turn_when_the_database_closes_is_refused(
    database_url: str,
) -> None:
    """close() while a unit waits for a connection: it is refused, and no connection is
    opened after close."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the pool is PostgreSQL's")
    db = PostgresDatabase(postgres_dsn(database_url), pool_size=1)
    await db.open()
    sleep = Query(sa.text("SELECT pg_sleep(0.3) IS NULL AS slept").columns(slept=sa.Boolean))
    running = asyncio.ensure_future(db.read(lambda tx: tx.one(sleep)))
    await asyncio.sleep(0.05)
    waiting = asyncio.ensure_future(db.read(lambda tx: tx.one(ONE)))
    await asyncio.sleep(0.01)
    await db.close()
    with pytest.raises(RuntimeError, match="closed"):
        await waiting
    with contextlib.suppress(Exception):  # (its connection was ended under it)
        await running
    assert db._open == set() and db._idle == []
