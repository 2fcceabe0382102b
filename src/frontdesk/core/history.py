"""Job history that is deleted after a while: sent deliveries, finished attachment downloads.

Only rows of one finished status go (a dead delivery waits for someone to redeliver it, a
failed download's reason is in its comment already, an open row is not done). The sweep reads
the oldest rows by id, a batch at a time: ids follow creation, so it stops at rows younger
than the history kept and never reads the rest, with no index on finish times for every
settle to maintain. It writes only where a batch holds something to delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core.attachment_fetches import DONE
from frontdesk.core.outbox import SENT
from frontdesk.storage.sql import Query, Tx, constant
from frontdesk.storage.tables import attachment_fetches, deliveries

#: rows one step looks at (and at most deletes: a short transaction on either engine)
BATCH = 1000


@dataclass(frozen=True)
class History:
    """A table with id, status, created_at and finished_at whose `done` rows are history."""

    done: str
    oldest: Query
    prune: Query


def _history(table: sa.Table, done: str) -> History:
    c = table.c
    oldest = (
        sa.select(c.id, c.status, c.created_at, c.finished_at)
        .where(c.id > p("after"))
        .order_by(c.id)
        .limit(p("limit"))
    )
    prune = sa.delete(table).where(
        c.id > p("after"),
        c.id <= p("upto"),
        c.status == constant(done),
        c.finished_at < p("before"),
    )
    return History(done, Query(oldest), Query(prune))


#: a delivery's attempts go with it (ON DELETE CASCADE)
SENT_DELIVERIES = _history(deliveries, SENT)
FINISHED_DOWNLOADS = _history(attachment_fetches, DONE)


@dataclass(frozen=True)
class Step:
    #: the last id looked at
    upto: int
    #: whether any of the rows looked at is to be deleted
    found: bool
    #: whether rows after `upto` may be old enough too
    more: bool


async def next_step(
    tx: Tx, history: History, after: int, before: datetime, limit: int
) -> Step | None:
    """The next `limit` rows after id `after` (a read); None when there are none."""
    rows = await tx.all(history.oldest, after=after, limit=limit)
    if not rows:
        return None
    found = any(row["status"] == history.done and row["finished_at"] < before for row in rows)
    more = len(rows) == limit and rows[-1]["created_at"] < before
    return Step(rows[-1]["id"], found, more)


async def prune(tx: Tx, history: History, after: int, upto: int, before: datetime) -> int:
    """Delete the history rows with ids in (after, upto] that finished before `before`."""
    return await tx.run(history.prune, after=after, upto=upto, before=before)
