"""Conversation routing: which task a message or call from an external channel lands in.

A channel is one external conversation (a chat id, a call id or a caller's number) bound to
a task. The account's routing setting decides what a new message does (ARCHITECTURE.md §2):
    reuse_open     the newest open task of the channel, else a new task (default)
    always_new     a new task every time
    reopen_closed  the newest task of the channel, reopened if it was closed
"""

from __future__ import annotations

from dataclasses import dataclass
from types import EllipsisType

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import tasks as task_store
from frontdesk.core.auth import ExtensionPrincipal
from frontdesk.core.extensions import ACCOUNT_COLUMNS, Account, usable_account
from frontdesk.core.users import Person
from frontdesk.storage.sql import Deferred, Query, Row, Tx
from frontdesk.storage.tables import channels, extension_accounts, extensions, tasks, users


@dataclass(slots=True)  # made per request (docs/decisions.md)
class Routed:
    #: Deferred for a new conversation: its task and channel are deferred writes
    task_id: int | Deferred
    channel_id: int | Deferred
    is_new_task: bool
    responsible: Person | None = None


#: what routing needs of a channel: its task, whether that is closed, who is responsible
_ROUTE_COLUMNS = (
    channels.c.task_id,
    channels.c.chat_generation,
    tasks.c.closed_at,
    tasks.c.responsible_id,
    users.c.first_name,
    users.c.last_name,
    users.c.work_phone,
)
LATEST_CHANNEL = Query(
    sa.select(channels.c.id, *_ROUTE_COLUMNS)
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
        chat_generation=p("generation"),
        message_type=p("message_type"),
        sender_name=p("sender_name"),
        created_at=p("now"),
    )
    .returning(channels.c.id)
)


#: the account, and the newest channel of one of its conversations, in one query: a message
#: needs both, and on PostgreSQL every query is a round trip
_newest = channels.alias("newest")
_NEWEST_CHANNEL_ID = (
    sa.select(sa.func.max(_newest.c.id))
    .where(
        _newest.c.account_ref == extension_accounts.c.id,
        _newest.c.kind == p("kind"),
        _newest.c.key == p("key"),
    )
    .correlate(extension_accounts)
    .scalar_subquery()
)
ACCOUNT_WITH_LATEST_CHANNEL = Query(
    sa.select(
        *ACCOUNT_COLUMNS,
        extensions.c.secret_generation,
        channels.c.id.label("channel_id"),
        *_ROUTE_COLUMNS,
    )
    .select_from(
        extension_accounts.join(extensions, extensions.c.id == extension_accounts.c.extension_id)
        .outerjoin(channels, channels.c.id == _NEWEST_CHANNEL_ID)
        .outerjoin(tasks, tasks.c.id == channels.c.task_id)
        .outerjoin(users, users.c.id == tasks.c.responsible_id)
    )
    .where(
        extension_accounts.c.extension_id == p("extension_id"),
        extension_accounts.c.account_id == p("account_id"),
    )
)


@dataclass(slots=True)  # made per request (docs/decisions.md)
class Conversation:
    """An account, and the newest channel of one of its conversations (None before any)."""

    account: Account
    latest: Row | None


async def find_conversation(
    tx: Tx, principal: ExtensionPrincipal, account_id: str, kind: str, key: str
) -> Conversation:
    row = await tx.one(
        ACCOUNT_WITH_LATEST_CHANNEL,
        extension_id=principal.extension_id,
        account_id=account_id,
        kind=kind,
        key=key,
    )
    account = await usable_account(tx, principal, account_id, row)
    assert row is not None
    latest = None if row["channel_id"] is None else {**row, "id": row["channel_id"]}
    return Conversation(account, latest)


async def _existing(tx: Tx, account: Account, latest: Row | None) -> Routed | None:
    """The channel's task if the account's routing reuses it (reopening it if need be)."""
    if latest is None:
        return None
    task_id: int | Deferred = latest["task_id"]
    if latest["closed_at"] is None:
        task_id = task_store.still_open(tx, latest["task_id"])
    elif account.routing == "reopen_closed":
        await task_store.reopen(tx, latest["task_id"])
    else:
        return None
    responsible = None
    if latest["responsible_id"] is not None:
        responsible = Person(
            latest["responsible_id"],
            latest["first_name"],
            latest["last_name"],
            latest["work_phone"],
        )
    return Routed(task_id, latest["id"], False, responsible)


async def _latest(tx: Tx, account: Account, kind: str, key: str) -> Row | None:
    return await tx.one(LATEST_CHANNEL, account_ref=account.id, kind=kind, key=key)


async def route(
    tx: Tx,
    account: Account,
    kind: str,
    key: str,
    *,
    latest: Row | EllipsisType | None = ...,
    subject: str | None = None,
    message_type: str | None = None,
    sender_name: str | None = None,
    responsible: Person | None = None,
) -> Routed:
    """Find or create the task for a conversation, per the account's routing.

    `latest` is the conversation's newest channel when the caller read it already
    (`find_conversation`); by default it is read here. `responsible` is who a new task
    gets (an existing one keeps its own). A new conversation is made of deferred writes.
    """
    if latest is ...:
        latest = await _latest(tx, account, kind, key)
    if account.routing == "always_new":
        # Every message claims the next generation and only one claim of a round wins: the
        # others ran again, met the winner's newer generation, and lost again (150 messages
        # at once into one chat: 16 answered 500 after their last retry). They take turns.
        if await tx.lock("conversation", account.id, kind, key):
            latest = await _latest(tx, account, kind, key)
    elif (found := await _existing(tx, account, latest)) is not None:
        return found
    return new_conversation(
        tx,
        account,
        kind,
        key,
        generation=next_generation(latest),
        subject=subject,
        message_type=message_type,
        sender_name=sender_name,
        responsible=responsible,
    )


def next_generation(latest: Row | None) -> int:
    """The generation a conversation's next channel claims.

    Two first messages of one conversation must make one task: both claim the same
    generation (a unique key), and the one that finds it taken runs again (LostRace) and
    finds the other's task. Cheaper than a lock and a read after it: those cost two round
    trips on PostgreSQL for every new conversation.
    """
    return 1 + int((latest or {}).get("chat_generation") or 0)


def new_conversation(
    tx: Tx,
    account: Account,
    kind: str,
    key: str,
    *,
    generation: int,
    subject: str | None = None,
    message_type: str | None = None,
    sender_name: str | None = None,
    responsible: Person | None = None,
) -> Routed:
    """A new task with the conversation's channel, as deferred writes, whatever the routing.

    For `route`, and for a conversation the caller knows to be new (a call's first report:
    a call id is a conversation of its own, see core.calls).
    """
    task = task_store.insert_task_later(
        tx,
        form_id=account.form_id,
        account_ref=account.id,
        subject=subject,
        responsible_id=responsible.user_id if responsible else None,
    )
    channel = tx.defer(
        INSERT_CHANNEL,
        claim=True,
        task_id=task,
        account_ref=account.id,
        kind=kind,
        key=key,
        generation=generation,
        message_type=message_type,
        sender_name=sender_name,
        now=tx.now,
    )
    return Routed(task, channel, True, responsible)
