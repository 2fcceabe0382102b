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

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core.clock import utcnow
from frontdesk.errors import FrontdeskError, NotFound
from frontdesk.storage.sql import Query, Row, Tx
from frontdesk.storage.tables import deliveries, delivery_attempts, extensions

PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"
STATUSES = (PENDING, SENDING, SENT, DEAD)
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
#: what `deliveries show` keeps of an answer
EXCERPT_LIMIT = 2000


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
        max_attempts=p("max_attempts"),
        next_attempt_at=p("now"),
        created_at=p("now"),
    )
    .returning(deliveries.c.id)
)

_earlier = deliveries.alias("earlier")
_claimable = sa.or_(
    deliveries.c.status == PENDING,
    sa.and_(deliveries.c.status == SENDING, deliveries.c.lease_until < p("now")),
)
#: the oldest unfinished row of each key, when it is due
DUE = Query(
    sa.select(deliveries.c.id)
    .where(
        _claimable,
        deliveries.c.next_attempt_at <= p("now"),
        ~sa.exists().where(
            _earlier.c.ordering_key == deliveries.c.ordering_key,
            _earlier.c.id < deliveries.c.id,
            # (not IN: a literal list compiles to an expanding parameter we do not run)
            sa.or_(_earlier.c.status == PENDING, _earlier.c.status == SENDING),
        ),
    )
    .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
    .limit(p("limit"))
)
CLAIM = Query(
    sa.update(deliveries)
    .where(deliveries.c.id == p("id"), _claimable)
    .values(status=SENDING, attempts=deliveries.c.attempts + 1, lease_until=p("lease_until"))
    .returning(
        deliveries.c.id,
        deliveries.c.delivery_id,
        deliveries.c.kind,
        deliveries.c.url,
        deliveries.c.content_type,
        deliveries.c.body,
        deliveries.c.extension_id,
        deliveries.c.attempts,
        deliveries.c.max_attempts,
    )
)
NEXT_DUE = Query(
    sa.select(sa.func.min(deliveries.c.next_attempt_at).label("due")).where(
        deliveries.c.status == PENDING
    )
)
SECRET = Query(sa.select(extensions.c.secret).where(extensions.c.id == p("id")))
INSERT_ATTEMPT = Query(
    sa.insert(delivery_attempts).values(
        delivery_ref=p("delivery_ref"),
        attempt=p("attempt"),
        started_at=p("started_at"),
        latency_ms=p("latency_ms"),
        status_code=p("status_code"),
        error=p("error"),
        response_excerpt=p("response_excerpt"),
    )
)
FINISH = Query(
    sa.update(deliveries)
    .where(deliveries.c.id == p("id"), deliveries.c.status == SENDING)
    .values(
        status=p("status"),
        lease_until=None,
        last_error=p("last_error"),
        finished_at=p("finished_at"),
        next_attempt_at=p("next_attempt_at"),
    )
)
REDELIVER = Query(
    sa.update(deliveries)
    .where(
        deliveries.c.id == p("id"), sa.or_(deliveries.c.status == DEAD, deliveries.c.status == SENT)
    )
    .values(
        status=PENDING,
        attempts=0,
        next_attempt_at=p("now"),
        lease_until=None,
        finished_at=None,
        last_error=None,
    )
)
_LISTED = (
    deliveries.c.id,
    deliveries.c.delivery_id,
    deliveries.c.kind,
    deliveries.c.url,
    deliveries.c.status,
    deliveries.c.attempts,
    deliveries.c.max_attempts,
    deliveries.c.next_attempt_at,
    deliveries.c.last_error,
    deliveries.c.created_at,
    deliveries.c.finished_at,
)
LIST_ALL = Query(sa.select(*_LISTED).order_by(deliveries.c.id.desc()).limit(p("limit")))
LIST_BY_STATUS = Query(
    sa.select(*_LISTED)
    .where(deliveries.c.status == p("status"))
    .order_by(deliveries.c.id.desc())
    .limit(p("limit"))
)
ONE = Query(
    sa.select(
        *_LISTED, deliveries.c.content_type, deliveries.c.body, deliveries.c.ordering_key
    ).where(deliveries.c.id == p("id"))
)
ATTEMPTS = Query(
    sa.select(delivery_attempts)
    .where(delivery_attempts.c.delivery_ref == p("id"))
    .order_by(delivery_attempts.c.attempt, delivery_attempts.c.id)
)


async def enqueue(
    tx: Tx,
    *,
    kind: str,
    url: str,
    body: bytes,
    ordering_key: str,
    max_attempts: int,
    content_type: str = JSON_TYPE,
    extension_id: int | None = None,
) -> int:
    """Write a webhook to send once this transaction commits; returns its row id."""
    row = await tx.one(
        INSERT,
        delivery_id=str(uuid.uuid4()),
        kind=kind,
        url=url,
        content_type=content_type,
        body=body.decode(),
        extension_id=extension_id,
        ordering_key=ordering_key,
        max_attempts=max_attempts,
        now=utcnow(),
    )
    assert row is not None
    return int(row["id"])


async def claim_due(tx: Tx, limit: int, lease: timedelta) -> list[Claimed]:
    """Take up to `limit` due deliveries, the head of each key, for `lease`."""
    now = utcnow()
    claimed = []
    for row in await tx.all(DUE, now=now, limit=limit):
        taken = await tx.one(CLAIM, id=row["id"], now=now, lease_until=now + lease)
        if taken is not None:  # another worker may have taken it between the two statements
            claimed.append(await _claimed(tx, taken))
    return claimed


async def next_due(tx: Tx) -> datetime | None:
    """When the next pending delivery falls due (None: nothing pending)."""
    row = await tx.one(NEXT_DUE)
    return None if row is None else row["due"]


async def _claimed(tx: Tx, row: Row) -> Claimed:
    secret = None
    if row["extension_id"] is not None:
        found = await tx.one(SECRET, id=row["extension_id"])
        secret = None if found is None else found["secret"]
    return Claimed(
        id=row["id"],
        delivery_id=row["delivery_id"],
        kind=row["kind"],
        url=row["url"],
        content_type=row["content_type"],
        body=row["body"].encode(),
        secret=secret,
        attempt=row["attempts"],
        max_attempts=row["max_attempts"],
    )


@dataclass(frozen=True)
class Attempt:
    """What one try of a delivery came to."""

    started_at: datetime
    latency_ms: int
    status_code: int | None = None
    error: str | None = None
    response_excerpt: str | None = None


async def record_attempt(
    tx: Tx, claimed: Claimed, attempt: Attempt, *, retry_at: datetime | None, done: bool
) -> None:
    """Log the attempt; then the row is sent (`done`), due again at `retry_at`, or dead."""
    await tx.run(
        INSERT_ATTEMPT,
        delivery_ref=claimed.id,
        attempt=claimed.attempt,
        started_at=attempt.started_at,
        latency_ms=attempt.latency_ms,
        status_code=attempt.status_code,
        error=_clip(attempt.error, 500),
        response_excerpt=_clip(attempt.response_excerpt, EXCERPT_LIMIT),
    )
    now = utcnow()
    status = SENT if done else (PENDING if retry_at is not None else DEAD)
    await tx.run(
        FINISH,
        id=claimed.id,
        status=status,
        last_error=None if done else _clip(attempt.error or f"HTTP {attempt.status_code}", 500),
        finished_at=None if status == PENDING else now,
        next_attempt_at=retry_at or now,
    )


def _clip(text: str | None, limit: int) -> str | None:
    return None if text is None else text[:limit]


async def redeliver(tx: Tx, ids: Sequence[int]) -> list[int]:
    """Send finished deliveries again, with fresh attempts and the same delivery id (the
    receiver may have acted on the first send: the id lets it tell)."""
    now = utcnow()
    done = []
    for delivery in ids:
        if await tx.run(REDELIVER, id=delivery, now=now):
            done.append(delivery)
        elif await tx.one(ONE, id=delivery) is None:
            raise NotFound(f"No delivery {delivery}")
        else:
            raise FrontdeskError(
                "conflict", f"Delivery {delivery} is still pending or being sent", 409
            )
    return done


async def list_deliveries(tx: Tx, status: str | None = None, limit: int = 100) -> list[Row]:
    if status is None:
        return await tx.all(LIST_ALL, limit=limit)
    if status not in STATUSES:
        raise FrontdeskError("validation_error", f"status must be one of {', '.join(STATUSES)}")
    return await tx.all(LIST_BY_STATUS, status=status, limit=limit)


async def show_delivery(tx: Tx, delivery: int) -> dict[str, Any]:
    row = await tx.one(ONE, id=delivery)
    if row is None:
        raise NotFound(f"No delivery {delivery}")
    return {**row, "attempt_log": await tx.all(ATTEMPTS, id=delivery)}
