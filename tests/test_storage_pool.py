"""PostgreSQL: units of work get a connection in the order they asked for one."""

from __future__ import annotations

import asyncio
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
