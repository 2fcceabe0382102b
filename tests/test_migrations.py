"""The Alembic migrations produce exactly the tables of storage/tables.py, on both engines."""

from __future__ import annotations

import os

import asyncpg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from conftest import ENGINES, PG_URL
from frontdesk.storage.database import postgres_dsn
from frontdesk.storage.migrate import downgrade, run_with_connection, upgrade
from frontdesk.storage.tables import metadata


def _differences(connection):
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, metadata)


async def test_migrated_schema_equals_the_models(database_url):
    # database_url is already at head (the fixtures migrate it); upgrading again is a no-op
    await upgrade(database_url)
    assert await run_with_connection(database_url, _differences) == []


async def test_a_fresh_sqlite_file_migrates_from_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'new.db'}"
    await upgrade(url)
    assert await run_with_connection(url, _differences) == []


def _drop_a_column(connection):
    connection.exec_driver_sql("ALTER TABLE users DROP COLUMN work_phone")


async def test_the_check_notices_drift(tmp_path):
    """The comparison is not vacuous: a schema that differs is reported."""
    url = f"sqlite:///{tmp_path / 'drift.db'}"
    await upgrade(url)
    await run_with_connection(url, _drop_a_column)
    differences = await run_with_connection(url, _differences)
    assert any("work_phone" in repr(diff) for diff in differences)


@pytest.fixture(params=ENGINES)
async def blank_database_url(request, tmp_path):
    """A database of its own, empty: migrations go down and up on it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.db'}"
        return
    name = f"frontdesk_test_blank_{os.getpid()}"
    admin_url = postgres_dsn(PG_URL)
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _table_names(connection):
    return set(sa.inspect(connection).get_table_names()) - {"alembic_version"}


async def test_every_migration_goes_down_and_up_again(blank_database_url):
    url = blank_database_url
    await upgrade(url)
    await downgrade(url, "base")
    assert await run_with_connection(url, _table_names) == set()
    await upgrade(url)
    assert await run_with_connection(url, _differences) == []


@pytest.mark.parametrize(
    "query",
    [
        "replies.CHAT_TARGETS",
        "replies.TASK_CHATS",
        "planfix_answers.TARGETS",
        "intake.PLANFIX_CHAT_OF_TASK",
    ],
)
async def test_the_chats_of_a_task_are_found_by_index(tmp_path, query):
    """Every answer to the customer reads its task's chats: a scan of the channels table
    per answer grew with every conversation ever had."""
    import sqlite3

    from frontdesk.core import intake, planfix_answers, replies

    url = f"sqlite:///{tmp_path / 'plans.db'}"
    await upgrade(url)
    module, name = query.split(".")
    compiled = getattr(
        {"replies": replies, "planfix_answers": planfix_answers, "intake": intake}[module], name
    ).compiled("sqlite")
    with sqlite3.connect(tmp_path / "plans.db") as conn:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {compiled.sql}", [None] * len(compiled.names))
        steps = [row[3] for row in plan]
    assert not any(step.startswith("SCAN channels") for step in steps), steps
