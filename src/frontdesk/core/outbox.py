"""The transactional outbox: webhooks as rows, written with the change that causes them.

A unit of work that must notify an extension or a chat provider calls `enqueue` inside its own
transaction, so the webhook exists exactly when the change does. The delivery worker
(frontdesk.delivery) claims due rows, sends them and records every attempt here.

Order: rows sharing an `ordering_key` (one channel, one account) go out one at a time in id
order. Only the oldest unfinished row of a key may be claimed, so a message waits behind an
earlier one that is being retried; different keys go in parallel.

Claims are a conditional UPDATE (`status = 'pending'` or an expired lease), portable to both
engines: two workers never hold one row at once. A worker that dies mid-send leaves a
`sending` row whose lease runs out; the next claim takes it again (at-least-once, same
delivery id).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core.clock import utcnow
from frontdesk.storage.sql import Query, Row, Tx, constant
from frontdesk.storage.tables import deliveries, extensions, planfix_integrations

PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"
STATUSES = (PENDING, SENDING, SENT, DEAD)
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
#: Pyrus': the first try and two retries (the worker's policy may say otherwise)
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker now holds, with what it needs to send it."""

    id: int
    delivery_id: str
    kind: str
    url: str
    content_type: str
    body: bytes
    #: the extension's current secret when the body is to be signed
    secret: str | None
    attempt: int
    max_attempts: int


INSERT = Query(
    sa.insert(deliveries)
    .values(
        delivery_id=p("delivery_id"),
        kind=p("kind"),
        url=p("url"),
        content_type=p("content_type"),
        body=p("body"),
        extension_id=p("extension_id"),
        ordering_key=p("ordering_key"),
        status=PENDING,
        attempts=0,
        max_attempts=DEFAULT_MAX_ATTEMPTS,
        next_attempt_at=p("now"),
        created_at=p("now"),
    )
    .returning(deliveries.c.id)
)


def is_open(table: Any) -> sa.ColumnElement[bool]:
    """Pending or being sent. Spelled with literals, as the partial indexes of open rows are
    (storage/tables.py): SQLite uses a partial index only for a query that repeats its WHERE."""
    found: sa.ColumnElement[bool] = table.c.status.in_([constant(PENDING), constant(SENDING)])
    return found


def _claimable(table: Any) -> sa.ColumnElement[bool]:
    """Due: a pending row whose time came, or a sending row whose lease ran out (its worker
    died mid-send); a claim sets next_attempt_at to the lease's end."""
    return sa.and_(is_open(table), table.c.next_attempt_at <= p("now"))


def _due(table: Any, closing: Any = None, settling: Any = None) -> sa.Select[tuple[int]]:
    """The oldest open row of each key, when it is due, oldest first. Both lookups run on
    the partial indexes of open rows: sent and dead history costs them nothing.

    For a claim in the statement of a settle (outbox_settle): `closing`, the ids of open
    rows it closes (its snapshot still shows them open), which hold back nothing; `settling`,
    all the ids it settles, which are not due to it (a row whose lease ran out would be;
    PostgreSQL changes a row once per statement)."""
    earlier = deliveries.alias("earlier")
    before = [earlier.c.ordering_key == table.c.ordering_key, earlier.c.id < table.c.id]
    if closing is not None:
        before.append(earlier.c.id.not_in(closing))
    where = [_claimable(table), ~sa.exists().where(is_open(earlier), *before)]
    if settling is not None:
        where.append(table.c.id.not_in(settling))
    return sa.select(table.c.id).where(*where).order_by(table.c.id).limit(p("limit"))


DUE = Query(_due(deliveries))
_CLAIMED_COLUMNS = (
    deliveries.c.id,
    deliveries.c.delivery_id,
    deliveries.c.kind,
    deliveries.c.url,
    deliveries.c.content_type,
    deliveries.c.body,
    deliveries.c.extension_id,
    deliveries.c.attempts,
    deliveries.c.max_attempts,
    # read at the claim: a rotated secret applies to what is still waiting
    sa.select(extensions.c.secret)
    .where(extensions.c.id == deliveries.c.extension_id)
    .scalar_subquery()
    .label("secret"),
)
#: an extension's webhook goes to the extension's address at the claim, `<base>/<kind>` (the
#: kinds queued for extensions are their method names: sendmessage, toggle). `set-url`
#: re-points what is waiting too, but an answer whose unit read the old address and committed
#: after it would keep that address; read here, no delivery outlives a change of address.
_EXTENSION_BASE = (
    sa.select(extensions.c.base_url)
    .where(extensions.c.id == deliveries.c.extension_id)
    .scalar_subquery()
)
#: (core.planfix_answers.PLANFIX_MESSAGE, which imports this module)
PLANFIX_KIND = "planfix_message"
#: a Planfix chat system's answer likewise goes to its integration's address at the claim
#: (rows of one integration share the key prefix `planfix:<id>:`, core.planfix_answers)
_PLANFIX_URL = (
    sa.select(planfix_integrations.c.provider_url)
    .where(
        deliveries.c.kind == PLANFIX_KIND,
        deliveries.c.ordering_key.startswith(
            sa.literal("planfix:").concat(sa.cast(planfix_integrations.c.id, sa.String())) + ":"
        ),
    )
    .limit(1)
    .scalar_subquery()
)
_CURRENT_URL = sa.func.coalesce(  # (|| with NULL is NULL: a row of no extension keeps its URL)
    sa.func.rtrim(_EXTENSION_BASE, "/", type_=sa.String()).concat("/").concat(deliveries.c.kind),
    _PLANFIX_URL,
    deliveries.c.url,
)
_TAKE = {
    "url": _CURRENT_URL,
    "status": SENDING,
    "attempts": deliveries.c.attempts + 1,
    "max_attempts": p("max_attempts"),
    "lease_until": p("lease_until"),
    "next_attempt_at": p("lease_until"),
}
ABANDONED = "No outcome recorded for the last attempt (its worker stopped)"
# A due row that is still 'sending' lost its worker mid-send (its lease ran out). When that
# was its last attempt, nobody learned how it went: it is dead, not sent once more.
_SPENT = sa.and_(deliveries.c.status == SENDING, deliveries.c.attempts >= p("max_attempts"))


def _unless_spent(taken: Any, spent: Any) -> Any:
    return sa.case((_SPENT, spent), else_=taken)


def claim_due_statement(closing: Any = None, settling: Any = None) -> sa.Update:
    """One statement that claims a batch and buries the spent rows among it (RETURNING status
    tells which is which), with the secret that signs each: a claim is one round trip. The
    WHERE is checked again on each row as it is locked, so of two workers that read the same
    due rows, each row goes to one (PostgreSQL, READ COMMITTED); SQLite has one writer at a
    time anyway.

    `closing`, `settling`: for a claim in the statement of a settle (see _due)."""
    due = _due(deliveries.alias("due"), closing, settling)
    where = [deliveries.c.id.in_(due.scalar_subquery()), _claimable(deliveries)]
    taken = {name: _unless_spent(value, deliveries.c[name]) for name, value in _TAKE.items()}
    buried = {
        "status": _unless_spent(SENDING, DEAD),
        "lease_until": _unless_spent(p("lease_until"), None),
        "finished_at": _unless_spent(deliveries.c.finished_at, p("now")),
        "last_error": _unless_spent(deliveries.c.last_error, ABANDONED),
    }
    return (
        sa.update(deliveries)
        .where(*where)
        .values(taken | buried)
        .returning(*_CLAIMED_COLUMNS, deliveries.c.status)
    )


CLAIM_DUE = Query(claim_due_statement())
CLAIM = Query(
    sa.update(deliveries)
    .where(deliveries.c.id == p("id"), _claimable(deliveries))
    .values(**_TAKE)
    .returning(*_CLAIMED_COLUMNS)
)
NEXT_DUE = Query(
    sa.select(sa.func.min(deliveries.c.next_attempt_at).label("due")).where(
        is_open(deliveries),  # (the partial indexes of open rows serve it)
        deliveries.c.status == constant(PENDING),
    )
)
#: the row as the claim that made attempt `attempt` left it (a later claim moved attempts on)
THIS_CLAIM = (
    deliveries.c.id == p("id"),
    deliveries.c.status == SENDING,
    deliveries.c.attempts == p("attempt"),
)
# A claimed row that was never sent (its worker stopped first) goes back as it was.
RELEASE = Query(
    sa.update(deliveries)
    .where(*THIS_CLAIM)
    .values(
        status=PENDING,
        attempts=deliveries.c.attempts - 1,
        lease_until=None,
        next_attempt_at=p("now"),
    )
)
#: deliveries.ordering_key's length
ORDERING_KEY_LENGTH = 200


def bounded_key(key: str) -> str:
    """The key as stored: one longer than the column (a 300-character channel id) is named by
    its digest, keeping its first part readable."""
    if len(key) <= ORDERING_KEY_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: ORDERING_KEY_LENGTH - len(digest) - 8]}:sha256:{digest}"


async def enqueue(
    tx: Tx,
    *,
    kind: str,
    url: str,
    body: bytes,
    ordering_key: str,
    content_type: str = JSON_TYPE,
    extension_id: int | None = None,
) -> int:
    """Write a webhook to send once this transaction commits; returns its row id."""
    ordering_key = bounded_key(ordering_key)
    # Writers of one key take turns until they commit, so ids of a key are in commit order:
    # otherwise a later id could commit first and be sent first (PostgreSQL; SQLite has one
    # writer anyway).
    await tx.lock("outbox", ordering_key)
    row = await tx.one(
        INSERT,
        delivery_id=str(uuid.uuid4()),
        kind=kind,
        url=url,
        content_type=content_type,
        body=body.decode(),
        extension_id=extension_id,
        ordering_key=ordering_key,
        now=utcnow(),
    )
    assert row is not None
    return int(row["id"])


async def due_ids(tx: Tx, limit: int) -> list[int]:
    """Up to `limit` deliveries that are due, the head of each key (a read: an idle worker
    polls with this and writes nothing)."""
    return [row["id"] for row in await tx.all(DUE, now=utcnow(), limit=limit)]


async def claim(
    tx: Tx, ids: Sequence[int], lease: timedelta, max_attempts: int = DEFAULT_MAX_ATTEMPTS
) -> list[Claimed]:
    """Take these deliveries for `lease`, unless another worker took one first."""
    now = utcnow()
    rows = []
    for delivery in ids:
        taken = await tx.one(
            CLAIM, id=delivery, now=now, lease_until=now + lease, max_attempts=max_attempts
        )
        if taken is not None:
            rows.append(taken)
    return _claimed(rows)


async def claim_due(
    tx: Tx, limit: int, lease: timedelta, max_attempts: int = DEFAULT_MAX_ATTEMPTS
) -> list[Claimed]:
    """Take up to `limit` due deliveries (the head of each key) for `lease`; the worker's
    retry policy sets how many attempts they get."""
    now = utcnow()
    rows = await tx.all_alone(
        CLAIM_DUE, now=now, limit=limit, lease_until=now + lease, max_attempts=max_attempts
    )
    return claimed_rows(rows)


def claimed_rows(rows: list[Row]) -> list[Claimed]:
    """A claim's rows as deliveries to send, in id order (the spent rows it buried left out)."""
    rows.sort(key=lambda row: row["id"])
    return _claimed([row for row in rows if row["status"] == SENDING])


async def next_due(tx: Tx) -> datetime | None:
    """When the next pending delivery falls due (None: nothing pending)."""
    row = await tx.one(NEXT_DUE)
    return None if row is None else row["due"]


def _claimed(rows: list[Row]) -> list[Claimed]:
    return [
        Claimed(
            id=row["id"],
            delivery_id=row["delivery_id"],
            kind=row["kind"],
            url=row["url"],
            content_type=row["content_type"],
            body=row["body"].encode(),
            secret=row["secret"],
            attempt=row["attempts"],
            max_attempts=row["max_attempts"],
        )
        for row in rows
    ]


async def release(tx: Tx, unsent: Sequence[Claimed]) -> None:
    """Give back claimed deliveries that were not sent: due at once, their attempt unspent."""
    now = utcnow()
    await tx.run_many(RELEASE, [{"id": c.id, "attempt": c.attempt, "now": now} for c in unsent])
