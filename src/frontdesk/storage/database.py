"""The database as the core sees it: units of work run through `read` or `write`.

A unit of work is an async function taking a `Tx` first. On PostgreSQL it runs on an asyncpg
connection, its writes in one transaction, begun at its first write (or in one statement when
they are all deferred, see Tx.defer). On SQLite it runs on the event loop inside the batch
transaction of that loop iteration (group commit, see storage/sqlite.py), so it must await
nothing but its `Tx`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from frontdesk.storage.sql import Tx

T = TypeVar("T")
P = ParamSpec("P")
Work = Callable[Concatenate[Tx, P], Awaitable[T]]


#: how often a unit that lost a race is run again before the error is the caller's
RACE_RETRIES = 3


class LostRace(Exception):
    """Raised by a unit of work when a concurrent writer committed what it was about to
    write (a unique key taken meanwhile): its transaction is rolled back and `write` runs
    the unit again, which now finds the other writer's row. Cheaper than locking first
    when races are rare: the lock and the read after it cost two round trips every time."""


class Database(Protocol):
    dialect: str
    #: process-local memo of rows that never change once written (see Tx.memo)
    memo: dict[Any, Any]

    async def read(self, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a unit of work that only reads (no transaction on PostgreSQL)."""
        ...

    async def write(self, work: Work[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a unit of work in a transaction; it commits when the work returns."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def sqlite_path(url: str) -> str:
    """The file of a sqlite:///relative or sqlite:////absolute URL."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError(f"not a SQLite URL: {url!r}; expected sqlite:///path/to/file.db")
    return url[len(prefix) :]


def postgres_dsn(url: str) -> str:
    """The asyncpg DSN for a postgresql://, postgres:// or postgresql+driver:// URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in {"postgresql", "postgres"}:
        raise ValueError(
            f"unsupported database URL {url!r}: use sqlite:///path or postgresql://user@host/db"
        )
    return "postgresql://" + rest


async def open_database(url: str, **options: Any) -> Database:
    """Connect to the database named by `url` (it must already be migrated)."""
    if is_sqlite(url):
        from frontdesk.storage.sqlite import SqliteDatabase

        sqlite_db = SqliteDatabase(sqlite_path(url), synchronous=options.get("synchronous"))
        await sqlite_db.open()
        return sqlite_db
    from frontdesk.storage.postgres import PostgresDatabase

    pg_db = PostgresDatabase(postgres_dsn(url), pool_size=options.get("pool_size") or 8)
    await pg_db.open()
    return pg_db
