"""Tasks: the unit of work an agent sees; a form's field values live beside them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core.users import Person, get_person
from frontdesk.storage.sql import Deferred, Query, Tx
from frontdesk.storage.tables import task_values, tasks

SUBJECT_LENGTH = 200


@dataclass(frozen=True)
class TaskRef:
    id: int
    form_id: int | None
    account_ref: int | None
    responsible_id: int | None
    closed_at: datetime | None


INSERT_TASK = Query(
    sa.insert(tasks)
    .values(
        form_id=p("form_id"),
        account_ref=p("account_ref"),
        subject=p("subject"),
        responsible_id=p("responsible_id"),
        author_id=p("author_id"),
        created_at=p("now"),
        updated_at=p("now"),
    )
    .returning(tasks.c.id)
)
TASK_BY_ID = Query(
    sa.select(
        tasks.c.id,
        tasks.c.form_id,
        tasks.c.account_ref,
        tasks.c.responsible_id,
        tasks.c.closed_at,
    ).where(tasks.c.id == p("id"))
)
#: a task's row, locked as an UPDATE locks it (PostgreSQL: FOR NO KEY UPDATE; see `lock`)
_LOCKED_TASK = sa.select(tasks.c.id).where(tasks.c.id == p("id")).with_for_update(key_share=True)
LOCK_TASK = Query(_LOCKED_TASK)
#: the task if it is open, locked: a close still being written is waited for and then seen
#: (without a lock the statement saw the task open, and its comment's trigger waited for the
#: close and wrote into the closed task); not FOR SHARE, which two messages both held while
#: their triggers each waited for the other's (deadlocks)
OPEN_TASK = Query(_LOCKED_TASK.where(tasks.c.closed_at.is_(None)))
REOPEN = Query(
    sa.update(tasks).where(tasks.c.id == p("id")).values(closed_at=None, updated_at=p("now"))
)
CLOSE = Query(
    sa.update(tasks).where(tasks.c.id == p("id")).values(closed_at=p("now"), updated_at=p("now"))
)
SET_RESPONSIBLE = Query(
    sa.update(tasks).where(tasks.c.id == p("id")).values(responsible_id=p("user_id"))
)
#: SET_RESPONSIBLE when someone else is responsible; the task's id if it changed hands
HAND_OVER = Query(
    sa.update(tasks)
    .where(
        tasks.c.id == p("id"),
        tasks.c.responsible_id.is_distinct_from(p("user_id")),
    )
    .values(responsible_id=p("user_id"))
    .returning(tasks.c.id)
)
#: by count: the statement that sets that many values of one task (made once each)
_UPSERT_VALUES: dict[int, Query] = {}


def upsert_values(count: int) -> Query:
    """Set `count` values of a task (:task_id, :field_id_N, :value_N) in one statement.

    The same ON CONFLICT spelling works on SQLite (>= 3.24) and PostgreSQL. An unchanged
    value is not written again (a connector resends its mappings with every message)."""
    found = _UPSERT_VALUES.get(count)
    if found is None:
        rows = ", ".join(f"(:task_id, :field_id_{n}, :value_{n})" for n in range(count))
        found = _UPSERT_VALUES[count] = Query(
            sa.text(
                f"INSERT INTO task_values (task_id, field_id, value) VALUES {rows} "
                "ON CONFLICT (task_id, field_id) DO UPDATE SET value = excluded.value "
                "WHERE task_values.value <> excluded.value"
            ).bindparams(
                sa.bindparam("task_id", type_=sa.BigInteger),
                *(sa.bindparam(f"field_id_{n}", type_=sa.BigInteger) for n in range(count)),
                *(sa.bindparam(f"value_{n}", type_=sa.Text) for n in range(count)),
            )
        )
    return found


CLEAR_VALUE = Query(
    sa.delete(task_values).where(
        task_values.c.task_id == p("task_id"), task_values.c.field_id == p("field_id")
    )
)


def subject_from(text: str) -> str | None:
    """A task's title: the first line of its first message, shortened."""
    first_line = text.strip().split("\n", 1)[0].strip()
    if len(first_line) > SUBJECT_LENGTH:
        return first_line[: SUBJECT_LENGTH - 1] + "…"
    return first_line or None


async def create_task(
    tx: Tx,
    *,
    form_id: int | None,
    account_ref: int | None = None,
    subject: str | None = None,
    responsible_id: int | None = None,
) -> int:
    task = insert_task_later(
        tx, form_id=form_id, account_ref=account_ref, subject=subject, responsible_id=responsible_id
    )
    await tx.flush()
    return int(task.value)


async def create_authored_task(
    tx: Tx,
    *,
    author_id: int,
    form_id: int | None,
    subject: str | None = None,
    responsible_id: int | None = None,
) -> int:
    """A task an agent made (API v4): no extension account, the agent as its author."""
    task = insert_task_later(
        tx, form_id=form_id, subject=subject, responsible_id=responsible_id, author_id=author_id
    )
    await tx.flush()
    return int(task.value)


def insert_task_later(
    tx: Tx,
    *,
    form_id: int | None,
    subject: str | None,
    responsible_id: int | None,
    account_ref: int | None = None,
    author_id: int | None = None,
) -> Deferred:
    """A new task, as a deferred write (its id: the Deferred's value)."""
    return tx.defer(
        INSERT_TASK,
        form_id=form_id,
        account_ref=account_ref,
        subject=subject,
        responsible_id=responsible_id,
        author_id=author_id,
        now=tx.now,
    )


async def get_task(tx: Tx, task_id: int) -> TaskRef | None:
    row = await tx.one(TASK_BY_ID, id=task_id)
    return None if row is None else TaskRef(**row)


def still_open(tx: Tx, task_id: int) -> int | Deferred:
    """The open task a message was routed to, for the message's writes: if an agent closes
    it before they run, the unit runs again and routes the message anew (`Tx.confirm`)."""
    return tx.confirm(OPEN_TASK, task_id, id=task_id)


async def lock(tx: Tx, task_id: int) -> None:
    """Hold the task's row until the unit ends, before writing its values and comments:
    every writer takes a task's row, then its values, or two of them deadlock (PostgreSQL;
    SQLite has one writer)."""
    if tx.dialect == "postgresql":
        await tx.one(LOCK_TASK, id=task_id)


async def reopen(tx: Tx, task_id: int) -> None:
    await tx.run(REOPEN, id=task_id, now=tx.now)


async def close(tx: Tx, task_id: int) -> None:
    await tx.run(CLOSE, id=task_id, now=tx.now)


async def set_responsible(tx: Tx, task_id: int, user_id: int) -> None:
    await tx.run(SET_RESPONSIBLE, id=task_id, user_id=user_id)


async def set_values(tx: Tx, task_id: int, values: dict[int, str]) -> None:
    set_values_later(tx, task_id, values)
    await tx.flush()


def set_values_later(tx: Tx, task_id: int | Deferred, values: dict[int, str]) -> None:
    """`set_values` as one deferred write: nothing else in the batch may write these values."""
    if values:
        params: dict[str, Any] = {"task_id": task_id}
        for n, (field_id, value) in enumerate(values.items()):
            params[f"field_id_{n}"] = field_id
            params[f"value_{n}"] = value
        tx.defer(upsert_values(len(values)), **params)


async def clear_values(tx: Tx, task_id: int, field_ids: list[int]) -> None:
    await tx.run_many(CLEAR_VALUE, [{"task_id": task_id, "field_id": f} for f in field_ids])


async def responsible_of(tx: Tx, task_id: int) -> Person | None:
    task = await get_task(tx, task_id)
    if task is None or task.responsible_id is None:
        return None
    return await get_person(tx, task.responsible_id)
