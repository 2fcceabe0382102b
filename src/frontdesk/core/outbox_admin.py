"""The outbox as operators see it: deliveries listed, shown with their attempts, sent again
(`frontdesk deliveries …` and the admin API)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core.clock import utcnow
from frontdesk.core.outbox import DEAD, PENDING, SENDING, SENT, STATUSES
from frontdesk.errors import FrontdeskError, NotFound
from frontdesk.storage.sql import Query, Row, Tx, constant
from frontdesk.storage.tables import deliveries, delivery_attempts

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
    # in the order they were made: a redelivered one counts its attempts from 1 again
    .order_by(delivery_attempts.c.id)
)


async def redeliver(tx: Tx, ids: Sequence[int]) -> list[int]:
    """Send finished deliveries again, with fresh attempts and the same delivery id (the
    receiver may have acted on the first send: the id lets it tell)."""
    now = utcnow()
    done = []
    for delivery in dict.fromkeys(ids):  # once each, in the order given
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
    if limit < 1:
        raise FrontdeskError("validation_error", "limit must be 1 or more")
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


#: deliveries not sent yet: pending, dead (for a redeliver), and sending (the attempt in flight
#: keeps its address; a retry takes the row's). A sent one keeps where it was sent.
_UNSENT = deliveries.c.status.in_([constant(PENDING), constant(SENDING), constant(DEAD)])
UNSENT_OF_EXTENSION = Query(
    sa.select(deliveries.c.id, deliveries.c.url).where(
        deliveries.c.extension_id == p("extension_id"), _UNSENT
    )
)
SET_URL = Query(
    sa.update(deliveries).where(deliveries.c.id == p("id"), _UNSENT).values(url=p("url"))
)
#: a chat system's answers (its own ordering keys: another provider may share its URL)
SET_URL_OF_KEYS = Query(
    sa.update(deliveries)
    .where(deliveries.c.ordering_key.startswith(p("key_prefix")), _UNSENT)
    .values(url=p("url"))
)


async def repoint(tx: Tx, unsent: Sequence[Row], old_base: str, new_base: str) -> int:
    """Send these deliveries to `new_base` instead of `old_base`; returns how many were to
    `old_base` (https://a.example/x, not https://a.example/xy)."""
    old, new = old_base.rstrip("/"), new_base.rstrip("/")
    moved = 0
    for row in unsent:
        url = str(row["url"])
        if url == old or url.startswith(old + "/"):
            moved += await tx.run(SET_URL, id=row["id"], url=new + url[len(old) :])
    return moved
