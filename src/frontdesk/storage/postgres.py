"""PostgreSQL through an asyncpg pool: each write is one transaction on one connection."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from frontdesk.storage.database import RACE_RETRIES, LostRace, P, T, Work
from frontdesk.storage.sql import Query, Row


def lock_id(key: tuple[object, ...]) -> int:
    """A stable signed 64-bit id for pg_advisory_xact_lock."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresTx:
    dialect = "postgresql"

    def __init__(self, conn: asyncpg.Connection, memo: dict[Any, Any]) -> None:
        self._conn = conn
        self.memo = memo

    async def one(self, query: Query, /, **params: Any) -> Row | None:
        compiled = query.compiled("postgresql")
        record = await self._conn.fetchrow(compiled.sql, *compiled.args(params))
        return None if record is None else compiled.row(record.values())

    async def all(self, query: Query, /, **params: Any) -> list[Row]:
        compiled = query.compiled("postgresql")
        records = await self._conn.fetch(compiled.sql, *compiled.args(params))
        return [compiled.row(record.values()) for record in records]

    async def run(self, query: Query, /, **params: Any) -> int:
        compiled = query.compiled("postgresql")
        status = await self._conn.execute(compiled.sql, *compiled.args(params))
        # asyncpg answers the command tag, e.g. "UPDATE 3" or "INSERT 0 1"
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def run_many(self, query: Query, rows: Sequence[Mapping[str, Any]], /) -> None:
        if rows:
            compiled = query.compiled("postgresql")
            await self._conn.executemany(compiled.sql, [compiled.args(row) for row in rows])

    async def lock(self, *key: object) -> bool:
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id(key))
        return True


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's reset on release (one more round trip per unit of work): units leave no
    session state behind (their locks are transaction locks, their transactions are closed by
    context managers), and keeping prepared statements is the point."""
    if conn.is_in_transaction():  # cannot happen on the happy path; never hand one on
        await conn.execute("ROLLBACK")


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, dsn: str, pool_size: int = 8) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self.memo: dict[Any, Any] = {}

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=1,
            max_size=self.pool_size,
            statement_cache_size=512,
            reset=_keep_session,
        )

    async def read(self, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        assert self._pool is not None, "database is not open"
        async with self._pool.acquire() as conn:
            return await work(PostgresTx(conn, self.memo), *args, **kwargs)

    async def write(self, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        assert self._pool is not None, "database is not open"
        for attempt in range(1, RACE_RETRIES + 1):
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    return await work(PostgresTx(conn, self.memo), *args, **kwargs)
            except LostRace:
                if attempt == RACE_RETRIES:
                    raise
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        assert self._pool is not None, "database is not open"
        await self._pool.fetchval("SELECT 1")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
