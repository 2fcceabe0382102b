"""Every test gets a real, migrated database: a SQLite file of its own, and, when
FRONTDESK_TEST_DATABASE_URL is set, the same test again on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar

from frontdesk.app import create_app
from frontdesk.delivery.http import Outbound
from frontdesk.settings import Settings
from frontdesk.storage.database import postgres_dsn
from frontdesk.storage.migrate import upgrade
from frontdesk.storage.tables import metadata
from receivers import Receiver

PG_URL = os.environ.get("FRONTDESK_TEST_DATABASE_URL", "")
ENGINES = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


def run_now(coro: Any) -> Any:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings in tests come from the test, never from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("FRONTDESK_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test copies it."""
    path = tmp_path_factory.mktemp("template") / "frontdesk.db"
    run_now(upgrade(f"sqlite:///{path}"))
    return path


def _pg_url_for(database: str) -> str:
    base, _, _ = postgres_dsn(PG_URL).rpartition("/")
    return f"{base}/{database}"


async def _drop(database: str) -> None:
    admin = await asyncpg.connect(postgres_dsn(PG_URL))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()


async def _recreate(database: str) -> None:
    admin = await asyncpg.connect(postgres_dsn(PG_URL))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of this test process, migrated once, dropped at the end.

    Named after the process so that concurrent runs (xdist workers, two developers' shells)
    never share one.
    """
    name = f"frontdesk_test_{os.getpid()}"
    run_now(_recreate(name))
    url = _pg_url_for(name)
    run_now(upgrade(url))
    yield url
    run_now(_drop(name))


TABLES = ", ".join(table.name for table in metadata.sorted_tables)


async def _truncate(url: str) -> None:
    conn = await asyncpg.connect(postgres_dsn(url))
    try:
        await conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=ENGINES)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "frontdesk.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    await _truncate(url)
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "var",
        maintenance_interval_seconds=3600,
        # tests send the outbox themselves (DeliveryWorker.drain), to local receivers
        delivery_in_process=False,
        delivery_allow_private=True,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, in this test's event loop, called through ASGI."""
    app = create_app(settings)
    async with running(app.litestar):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://frontdesk.test") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


@contextlib.asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[None]:
    """The app's lifespan, kept in one task of its own (anyio scopes must exit where entered)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def live() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(live())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # startup failed: raise its error
    try:
        yield
    finally:
        stop.set()
        await task


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real local HTTP server that records requests and answers as scripted."""
    started = await Receiver().start()
    yield started
    await started.stop()


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    """The outbound HTTP module, short timeouts, loopback allowed (receivers are local)."""
    client = Outbound(connect_timeout=1.0, read_timeout=1.0, allow_private=True)
    yield client
    await client.close()
