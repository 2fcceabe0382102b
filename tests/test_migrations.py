"""The Alembic migrations produce exactly the tables of storage/tables.py, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from frontdesk.storage.migrate import run_with_connection, upgrade
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
