"""Deferred writes (Tx.defer): one statement on PostgreSQL, at once on SQLite, same results."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from frontdesk.core.clock import utcnow
from frontdesk.core.comments import Formatted, NewComment, add_comment_later
from frontdesk.core.tasks import insert_task_later, upsert_values
from frontdesk.storage import tables
from frontdesk.storage.sql import Deferred, Query, Tx

from factories import db_of, make_connector, rows

INSERT_FORM = Query(
    sa.insert(tables.forms)
    .values(name=sa.bindparam("name"), created_at=sa.bindparam("now"))
    .returning(tables.forms.c.id, tables.forms.c.name)
)
RENAME_FORM = Query(
    sa.update(tables.forms)
    .where(tables.forms.c.name == sa.bindparam("old"))
    .values(name=sa.bindparam("new"))
    .returning(tables.forms.c.id)
)
INSERT_TASK_ROW = Query(
    sa.insert(tables.tasks)
    .values(created_at=sa.bindparam("now"), updated_at=sa.bindparam("now"))
    .returning(tables.tasks.c.id)
)
FORM_NAMED = Query(sa.select(tables.forms.c.id).where(tables.forms.c.name == sa.bindparam("name")))


async def test_writes_that_refer_to_each_other_land_together(client):
    connector = await make_connector(client)
    field_id = (await rows(client, sa.select(tables.form_fields.c.id)))[0]["id"]

    async def unit(tx: Tx) -> tuple[int, int]:
        task = insert_task_later(tx, form_id=None, subject="deferred", responsible_id=None)
        comment = add_comment_later(tx, NewComment(task, Formatted("hello")))
        tx.defer(upsert_values(1), task_id=task, field_id_0=field_id, value_0="v")
        await tx.flush(last=True)
        return int(task.value), int(comment.value)

    task_id, comment_id = await db_of(client).write(unit)
    comment = (
        await rows(client, sa.select(tables.comments).where(tables.comments.c.id == comment_id))
    )[0]
    assert comment["task_id"] == task_id and comment["text"] == "hello"
    values = await rows(client, sa.select(tables.task_values.c.task_id, tables.task_values.c.value))
    assert {"task_id": task_id, "value": "v"} in values
    assert connector.account_id  # (the connector made the form the field belongs to)


async def test_what_a_deferred_write_returned_is_read_after_flush(client):
    async def unit(tx: Tx) -> tuple[dict[str, object] | None, dict[str, object] | None]:
        made = tx.defer(INSERT_FORM, name="first", now=utcnow())
        missed = tx.defer(RENAME_FORM, old="no such form", new="x")
        await tx.flush()
        return made.row, missed.row

    made, missed = await db_of(client).write(unit)
    assert made is not None and made["name"] == "first" and isinstance(made["id"], int)
    assert missed is None  # an UPDATE that matched nothing returned no row


async def test_reading_a_deferred_write_before_flush_is_an_error():
    deferred = Deferred(INSERT_FORM, {"name": "x"}, claim=False)
    with pytest.raises(RuntimeError, match=r"before Tx\.flush"):
        _ = deferred.value


async def test_a_read_sees_the_deferred_writes_before_it(client):
    async def unit(tx: Tx) -> object:
        tx.defer(INSERT_FORM, name="seen", now=utcnow())
        return await tx.one(FORM_NAMED, name="seen")

    assert await db_of(client).write(unit) is not None


async def test_a_unit_that_fails_leaves_none_of_its_deferred_writes(client):
    async def unit(tx: Tx) -> None:
        tx.defer(INSERT_FORM, name="undone early", now=utcnow())
        await tx.flush()
        tx.defer(INSERT_FORM, name="undone late", now=utcnow())
        raise ValueError("the unit fails")

    with pytest.raises(ValueError):
        await db_of(client).write(unit)
    names = [row["name"] for row in await rows(client, sa.select(tables.forms.c.name))]
    assert "undone early" not in names and "undone late" not in names


async def test_writes_deferred_past_a_direct_write_commit_with_it(client):
    async def unit(tx: Tx) -> None:
        await tx.one(INSERT_FORM, name="direct", now=utcnow())
        tx.defer(RENAME_FORM, old="direct", new="renamed later")
        await tx.flush(last=True)

    await db_of(client).write(unit)
    names = [row["name"] for row in await rows(client, sa.select(tables.forms.c.name))]
    assert "renamed later" in names and "direct" not in names


async def test_postgresql_refuses_a_write_after_the_last_flush(client):
    if db_of(client).dialect != "postgresql":
        pytest.skip("SQLite runs deferred writes at once: there is no last statement")

    async def unit(tx: Tx) -> None:
        tx.defer(INSERT_FORM, name="sealed", now=utcnow())
        await tx.flush(last=True)
        await tx.one(FORM_NAMED, name="sealed")  # reads are fine
        tx.defer(INSERT_FORM, name="too late", now=utcnow())

    with pytest.raises(AssertionError, match="after the unit's deferred writes committed"):
        await db_of(client).write(unit)


async def test_a_unit_cancelled_mid_query_raises_cancelled_and_leaves_the_pool_whole(client):
    """Its rollback may fail on the busy connection; the caller must still see the cancel
    (a delivery worker that saw another error instead logged it and never stopped)."""
    if db_of(client).dialect != "postgresql":
        pytest.skip("SQLite units never wait on the server")
    slow = Query(sa.select(sa.func.pg_sleep(5).label("slept")))

    async def unit(tx: Tx) -> None:
        await tx.one(INSERT_FORM, name="cancelled", now=utcnow())
        await tx.one(slow)

    running = asyncio.create_task(db_of(client).write(unit))
    await asyncio.sleep(0.3)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    names = [row["name"] for row in await rows(client, sa.select(tables.forms.c.name))]
    assert "cancelled" not in names


async def test_an_unchanged_field_value_is_not_written_again(client):
    """A connector resends its mappings with every message: the same value changes no row."""
    await make_connector(client)
    field_id = (await rows(client, sa.select(tables.form_fields.c.id)))[0]["id"]

    async def unit(tx: Tx) -> list[int]:
        task = int((await tx.one(INSERT_TASK_ROW, now=tx.now))["id"])  # type: ignore[index]
        return [
            await tx.run(upsert_values(1), task_id=task, field_id_0=field_id, value_0=value)
            for value in ("v", "v", "w", "w")
        ]

    assert await db_of(client).write(unit) == [1, 0, 1, 0]


async def test_a_lone_write_returns_its_rows_and_ends_the_unit(client):
    """all_alone: the unit's one statement (on PostgreSQL without BEGIN/COMMIT)."""

    async def unit(tx: Tx) -> list[str]:
        made = await tx.all_alone(INSERT_FORM, name="alone", now=utcnow())
        return [str(row["name"]) for row in made]

    assert await db_of(client).write(unit) == ["alone"]
    names = [row["name"] for row in await rows(client, sa.select(tables.forms.c.name))]
    assert "alone" in names
    if db_of(client).dialect != "postgresql":
        return

    async def writes_after(tx: Tx) -> None:
        await tx.all_alone(INSERT_FORM, name="first", now=utcnow())
        tx.defer(INSERT_FORM, name="second", now=utcnow())

    with pytest.raises(AssertionError, match="after the unit's deferred writes committed"):
        await db_of(client).write(writes_after)


async def _closed_task_on_postgresql(db) -> int:
    """A closed task, for the checks of Tx.confirm (SQLite has none to make: skipped)."""
    from frontdesk.core.tasks import CLOSE

    if db.dialect == "sqlite":
        pytest.skip("a SQLite unit reads and writes in one transaction: its reads stand")

    async def closed_task(tx: Tx) -> int:
        row = await tx.one(INSERT_TASK_ROW, now=tx.now)
        assert row is not None
        await tx.run(CLOSE, id=row["id"], now=tx.now)
        return int(row["id"])

    task_id: int = await db.write(closed_task)
    return task_id


@pytest.mark.parametrize("checked_alone", [False, True])
async def test_a_confirmed_task_closed_before_the_writes_is_a_lost_race(client, checked_alone):
    """Tx.confirm: the writes that depend on a closed task fail whole, and the unit is told
    to run again; the writes of the same batch that do not depend on it are undone too."""
    from frontdesk.core.tasks import still_open
    from frontdesk.storage.database import LostRace

    db = db_of(client)
    task_id = await _closed_task_on_postgresql(db)

    async def unit(tx: Tx) -> None:
        tx.defer(INSERT_FORM, name="beside the comment", now=tx.now)
        task = still_open(tx, task_id)
        if checked_alone:
            await tx.one(FORM_NAMED, name="nothing")  # (the check goes out before its writes)
        add_comment_later(tx, NewComment(task, Formatted("into a closed task")))
        await tx.flush(last=True)

    with pytest.raises(LostRace):
        await db.write(unit)
    assert await rows(client, sa.select(tables.comments)) == []
    assert await rows(client, FORM_NAMED.statement, name="beside the comment") == []


async def test_a_check_no_write_takes_is_undone_with_its_statement(client):
    """A check whose value no write puts in a NOT NULL column fails its statement all the
    same when it finds nothing: the writes beside it are not committed (they had been, and
    written again at every rerun)."""
    from frontdesk.core.tasks import SET_RESPONSIBLE, still_open
    from frontdesk.storage.database import LostRace

    db = db_of(client)
    task_id = await _closed_task_on_postgresql(db)

    async def unit(tx: Tx) -> None:
        tx.defer(INSERT_FORM, name="beside the check", now=tx.now)
        task = still_open(tx, task_id)
        tx.defer(SET_RESPONSIBLE, id=task, user_id=None)  # (WHERE id = NULL: no error)
        await tx.flush(last=True)

    with pytest.raises(LostRace):
        await db.write(unit)
    assert await rows(client, FORM_NAMED.statement, name="beside the check") == []


@pytest.mark.parametrize("bug_in", ["another table", "the check-fed table"])
async def test_a_null_no_check_fed_is_a_bug_reported_as_it_is_not_a_lost_race(client, bug_in):
    """Beside a check that stands, a write putting NULL in a NOT NULL column fails as the
    error it is, even in the table a check-fed write writes to: it is not run three times
    and then reported as a race (a check's own NULL fails its statement before any write
    takes it, see pg_batch)."""
    from frontdesk.core.tasks import still_open
    from frontdesk.storage.database import LostRace

    db = db_of(client)

    async def open_task(tx: Tx) -> int:
        row = await tx.one(INSERT_TASK_ROW, now=tx.now)
        assert row is not None
        return int(row["id"])

    task_id = await db.write(open_task)
    attempts = 0

    async def unit(tx: Tx) -> None:
        nonlocal attempts
        attempts += 1
        task = still_open(tx, task_id)
        add_comment_later(tx, NewComment(task, Formatted("into an open task")))
        if bug_in == "another table":
            tx.defer(INSERT_FORM, name=None, now=tx.now)  # (forms.name is NOT NULL)
        else:  # (comments.direction is NOT NULL)
            add_comment_later(tx, NewComment(task_id, Formatted("a bug"), direction=None))  # type: ignore[arg-type]
        await tx.flush(last=True)

    with pytest.raises(Exception) as failed:
        await db.write(unit)
    assert not isinstance(failed.value, LostRace)
    assert "null" in str(failed.value).lower()
    assert attempts == 1
    assert await rows(client, sa.select(tables.comments)) == []
