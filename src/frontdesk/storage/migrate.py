"""Alembic, run from inside the package: `frontdesk migrate` works from an installed wheel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from frontdesk.storage.database import is_sqlite, postgres_dsn, sqlite_path

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "%%(year)d-%%(month).2d-%%(day).2d_%%(slug)s_%%(rev)s")
    config.attributes["connection"] = connection
    return config


def sqlalchemy_url(url: str) -> str:
    """The URL SQLAlchemy (Alembic) uses for the same database."""
    if is_sqlite(url):
        return url
    return "postgresql+asyncpg://" + postgres_dsn(url).partition("://")[2]


def _upgrade(connection: sa.Connection, revision: str) -> None:
    command.upgrade(alembic_config(connection), revision)


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (creating the SQLite file if needed)."""
    await run_with_connection(url, _upgrade, revision)


def _downgrade(connection: sa.Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection), revision)


async def downgrade(url: str, revision: str) -> None:
    """Take the database at `url` back to `revision` ("base": no tables)."""
    await run_with_connection(url, _downgrade, revision)


async def run_with_connection(url: str, fn: Any, *args: Any) -> Any:
    """Call fn(sync_connection, *args) in a transaction on the database at `url`."""
    if is_sqlite(url):
        Path(sqlite_path(url)).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url)
        try:
            with engine.begin() as connection:
                return fn(connection, *args)
        finally:
            engine.dispose()
    async_engine = create_async_engine(sqlalchemy_url(url))
    try:
        async with async_engine.begin() as connection:
            return await connection.run_sync(fn, *args)
    finally:
        await async_engine.dispose()
