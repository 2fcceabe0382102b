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
from frontdesk.storage.sql import Query, Tx
from frontdesk.storage.tables import channels, tasks


@dataclass(frozen=True)
class Routed:
    task_id: int
    channel_id: int
    is_new_task: bool


LATEST_CHANNEL = Query(
    sa.select(channels.c.id, channels.c.task_id, tasks.c.closed_at)
    .join(tasks, tasks.c.id == channels.c.task_id)
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
    await tx.lock("channel", account.id, kind, key)  # two first messages make one task
    if account.routing != "always_new":
        latest = await tx.one(LATEST_CHANNEL, account_ref=account.id, kind=kind, key=key)
        if latest is not None and latest["closed_at"] is None:
            return Routed(latest["task_id"], latest["id"], False)
        if latest is not None and account.routing == "reopen_closed":
            await task_store.reopen(tx, latest["task_id"])
            return Routed(latest["task_id"], latest["id"], False)
    task_id = await task_store.create_task(
        tx, form_id=account.form_id, account_ref=account.id, subject=subject
    )
    channel_id = await open_channel(
        tx, task_id, account, kind, key, message_type=message_type, sender_name=sender_name
    )
    return Routed(task_id, channel_id, True)
