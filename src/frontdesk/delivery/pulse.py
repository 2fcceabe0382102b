"""GET /pulse: Pyrus probes each extension service now and then; so do we.

The result (when, and "ok" or what went wrong) is kept on the extension and shown by
`frontdesk extension show`. The probe is signed like every request Pyrus sends: the
signature of the empty body.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core.clock import utcnow
from frontdesk.core.replies import endpoint_url
from frontdesk.delivery.http import Outbound, OutboundError
from frontdesk.delivery.signing import DELIVERY_ID_HEADER, pyrus_signature
from frontdesk.storage.database import Database
from frontdesk.storage.sql import Query, Row, Tx
from frontdesk.storage.tables import extensions

log = logging.getLogger(__name__)

#: the extensions with a URL not probed since :since, each marked as probed now, so that of
#: several processes (serve --workers, frontdesk worker) one probes each per interval. One
#: being probed (no result yet) is left alone until that probe must have ended (:stale), if
#: its process died meanwhile: a probe slower than the interval is not doubled.
CLAIM = Query(
    sa.update(extensions)
    .where(
        extensions.c.base_url.is_not(None),
        sa.or_(
            extensions.c.pulse_at.is_(None),
            sa.and_(
                extensions.c.pulse_at <= p("since"),
                sa.or_(extensions.c.pulse_result.is_not(None), extensions.c.pulse_at <= p("stale")),
            ),
        ),
    )
    .values(pulse_at=p("now"), pulse_result=None)  # (no result yet: being probed)
    .returning(extensions.c.id, extensions.c.base_url, extensions.c.secret)
)
RECORD = Query(
    sa.update(extensions)
    .where(extensions.c.id == p("id"))
    .values(pulse_at=p("now"), pulse_result=p("result"))
)
#: a process whose loop runs a little early still finds the last probe old enough
EARLY = 0.9


#: past a probe's time limit, before its claim counts as abandoned (seconds)
ABANDONED_AFTER = 5.0


async def _claim(tx: Tx, min_age: float, probe_limit: float) -> list[Row]:
    now = utcnow()
    since = now - timedelta(seconds=min_age)
    stale = now - timedelta(seconds=probe_limit + ABANDONED_AFTER)
    return await tx.all_alone(CLAIM, since=since, stale=stale, now=now)


async def _record(tx: Tx, extension_id: int, result: str) -> None:
    await tx.run(RECORD, id=extension_id, now=utcnow(), result=result[:300])


async def probe(outbound: Outbound, base_url: str, secret: str) -> str:
    """'ok', or what went wrong."""
    headers = {
        "Content-Type": "application/json",
        "X-Pyrus-Sig": pyrus_signature(secret, b""),
        "X-Pyrus-Retry": "1/1",
        DELIVERY_ID_HEADER: str(uuid.uuid4()),
    }
    try:
        answer = await outbound.request("GET", endpoint_url(base_url, "pulse"), headers=headers)
    except OutboundError as exc:
        return str(exc)
    return "ok" if 200 <= answer.status < 300 else f"HTTP {answer.status}"


async def pulse_all(db: Database, outbound: Outbound, min_age: float = 0.0) -> dict[int, str]:
    """Probe every extension that has a URL and was not probed in the last `min_age` seconds,
    at once; returns extension id -> result."""
    targets = await db.write(_claim, min_age, outbound.time_limit)
    results = await asyncio.gather(
        *(probe(outbound, row["base_url"], row["secret"]) for row in targets)
    )
    for row, result in zip(targets, results, strict=True):
        await db.write(_record, row["id"], result)
    return {row["id"]: result for row, result in zip(targets, results, strict=True)}


async def pulse_forever(db: Database, outbound: Outbound, interval: float) -> None:
    while True:
        try:
            await pulse_all(db, outbound, min_age=interval * EARLY)
        except Exception:
            log.exception("Pulse failed; will retry")
        await asyncio.sleep(interval)
