"""Conversation routing: which task a message or call from an external channel lands in.

A channel is one external conversation (a chat id, a call id or a caller's number) bound to
a task. The account's routing setting decides what a new message does (ARCHITECTURE.md §2):
    reuse_open     the newest open task of the channel, else a new task (default)
    always_new     a new task every time
    reopen_closed  the newest task of the channel, reopened if it was closed
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import tasks as task_store
from frontdesk.core.clock import utcnow
from frontdesk.core.extensions import Account
from frontdesk.core.users import Person
from frontdesk.storage.sql import Query, Tx
from frontdesk.storage.tables import channels, tasks, users


@dataclass(frozen=True)
class Routed:
    task_id: int
    channel_id: int
    is_new_task: bool
    responsible: Person | None = None


LATEST_CHANNEL = Query(
    sa.select(
        channels.c.id,
        channels.c.task_id,
        tasks.c.closed_at,
        tasks.c.responsible_id,
        users.c.first_name,
        users.c.last_name,
        users.c.work_phone,
    )
    .join(tasks, tasks.c.id == channels.c.task_id)
    .outerjoin(users, users.c.id == tasks.c.responsible_id)
    .where(
        channels.c.account_ref == p("account_ref"),
        channels.c.kind == p("kind"),
        channels.c.key == p("key"),
    )
    .order_by(channels.c.id.desc())
    .limit(1)
)
INSERT_CHANNEL = Query(
    sa.insert(channels)
    .values(
        task_id=p("task_id"),
        account_ref=p("account_ref"),
        kind=p("kind"),
        key=p("key"),
        message_type=p("message_type"),
        sender_name=p("sender_name"),
        created_at=p("now"),
    )
    .returning(channels.c.id)
)


async def open_channel(
    tx: Tx,
    task_id: int,
    account: Account,
    kind: str,
    key: str,
    *,
    message_type: str | None = None,
    sender_name: str | None = None,
) -> int:
    row = await tx.one(
        INSERT_CHANNEL,
        task_id=task_id,
        account_ref=account.id,
        kind=kind,
        key=key,
        message_type=message_type,
        sender_name=sender_name,
        now=utcnow(),
    )
    assert row is not None
    return int(row["id"])


async def _existing(tx: Tx, account: Account, kind: str, key: str) -> Routed | None:
    """The channel's task if the account's routing reuses it (reopening it if need be)."""
    latest = await tx.one(LATEST_CHANNEL, account_ref=account.id, kind=kind, key=key)
    if latest is None:
        return None
    if latest["closed_at"] is not None:
        if account.routing != "reopen_closed":
            return None
        await task_store.reopen(tx, latest["task_id"])
    responsible = None
    if latest["responsible_id"] is not None:
        responsible = Person(
            latest["responsible_id"],
            latest["first_name"],
            latest["last_name"],
            latest["work_phone"],
        )
    return Routed(latest["task_id"], latest["id"], False, responsible)


async def route(
    tx: Tx,
    account: Account,
    kind: str,
    key: str,
    *,
    subject: str | None = None,
    message_type: str | None = None,
    sender_name: str | None = None,
) -> Routed:
    """Find or create the task for a conversation, per the account's routing."""
    reuse = account.routing != "always_new"
    if reuse:
        found = await _existing(tx, account, kind, key)
        if found is not None:
            return found
        # Two first messages of one conversation must make one task: serialise creators,
        # and look again if another writer may have created it while we waited.
        if await tx.lock("channel", account.id, kind, key):
            found = await _existing(tx, account, kind, key)
            if found is not None:
                return found
    task_id = await task_store.create_task(
        tx, form_id=account.form_id, account_ref=account.id, subject=subject
    )
    channel_id = await open_channel(
        tx, task_id, account, kind, key, message_type=message_type, sender_name=sender_name
    )
    return Routed(task_id, channel_id, True)
