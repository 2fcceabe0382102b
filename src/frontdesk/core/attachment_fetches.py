"""Attachments given by URL, fetched after the message is in: a small job queue.

A Planfix message names its files by URL (spec.md §5.1). The message is recorded at once with
one job per file, in its own transaction; the fetcher (frontdesk.delivery.fetcher) downloads
each into the file store and attaches it to the comment at the file's place. A file that
cannot be fetched leaves its name and URL in the comment's text instead, so nothing the
customer sent is lost.

Jobs are claimed as the outbox's deliveries are (core.outbox): a conditional UPDATE, portable
to both engines, with a lease after which a job whose fetcher died is taken again. Unlike the
outbox, jobs have no order among them, and what a finished job does (a file, an attachment)
is its own, which is why they are not outbox rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import files
from frontdesk.core.clock import utcnow
from frontdesk.errors import FrontdeskError
from frontdesk.storage.blobs import StoredBlob
from frontdesk.storage.sql import Query, Row, Tx, constant
from frontdesk.storage.tables import attachment_fetches, comments

PENDING, FETCHING, DONE, FAILED = "pending", "fetching", "done", "failed"


@dataclass(frozen=True)
class RemoteFile:
    """A file a message names: its name, and where to fetch it."""

    name: str
    url: str


@dataclass(frozen=True)
class Fetch:
    """A claimed job."""

    id: int
    comment_id: int
    position: int
    name: str
    url: str
    #: this attempt's number, from 1
    attempt: int


INSERT = Query(
    sa.insert(attachment_fetches).values(
        comment_id=p("comment_id"),
        position=p("position"),
        name=p("name"),
        url=p("url"),
        status=PENDING,
        attempts=0,
        next_attempt_at=p("now"),
        created_at=p("now"),
    )
)


def _claimable(table: Any) -> sa.ColumnElement[bool]:
    """Waiting, or held by a fetcher whose lease ran out (it died mid-download)."""
    return sa.or_(
        table.c.status == constant(PENDING),
        sa.and_(table.c.status == constant(FETCHING), table.c.lease_until < p("now")),
    )


def _due(table: Any) -> sa.Select[tuple[int]]:
    return (
        sa.select(table.c.id)
        .where(_claimable(table), table.c.next_attempt_at <= p("now"))
        .order_by(table.c.next_attempt_at, table.c.id)
        .limit(p("limit"))
    )


DUE = Query(_due(attachment_fetches))
CLAIM_DUE = Query(
    sa.update(attachment_fetches)
    .where(
        attachment_fetches.c.id.in_(_due(attachment_fetches.alias("due")).scalar_subquery()),
        _claimable(attachment_fetches),
    )
    .values(
        status=FETCHING, attempts=attachment_fetches.c.attempts + 1, lease_until=p("lease_until")
    )
    .returning(
        attachment_fetches.c.id,
        attachment_fetches.c.comment_id,
        attachment_fetches.c.position,
        attachment_fetches.c.name,
        attachment_fetches.c.url,
        attachment_fetches.c.attempts,
    )
)
NEXT_DUE = Query(
    sa.select(sa.func.min(attachment_fetches.c.next_attempt_at).label("due")).where(
        attachment_fetches.c.status == constant(PENDING)
    )
)
_HELD = (attachment_fetches.c.id == p("id"), attachment_fetches.c.status == FETCHING)
FINISH = Query(
    sa.update(attachment_fetches)
    .where(*_HELD)
    .values(
        status=p("status"),
        lease_until=None,
        file_id=p("file_id"),
        last_error=p("last_error"),
        finished_at=p("now"),
    )
)
RETRY = Query(
    sa.update(attachment_fetches)
    .where(*_HELD)
    .values(status=PENDING, lease_until=None, last_error=p("last_error"), next_attempt_at=p("at"))
)
COMMENT_TEXT = Query(sa.select(comments.c.text).where(comments.c.id == p("id")))
SET_COMMENT_TEXT = Query(sa.update(comments).where(comments.c.id == p("id")).values(text=p("text")))


async def enqueue(tx: Tx, comment_id: int, remote: Sequence[RemoteFile]) -> None:
    """Jobs for a comment's files, fetched once this transaction commits."""
    now = utcnow()
    rows = [
        {"comment_id": comment_id, "position": position, "name": f.name, "url": f.url, "now": now}
        for position, f in enumerate(remote)
    ]
    await tx.run_many(INSERT, rows)


async def due_ids(tx: Tx, limit: int) -> list[int]:
    """A read: an idle fetcher polls with this and writes nothing."""
    return [row["id"] for row in await tx.all(DUE, now=utcnow(), limit=limit)]


async def claim_due(tx: Tx, limit: int, lease: timedelta) -> list[Fetch]:
    now = utcnow()
    rows = await tx.all(CLAIM_DUE, now=now, limit=limit, lease_until=now + lease)
    return [_fetch(row) for row in sorted(rows, key=lambda row: row["id"])]


def _fetch(row: Row) -> Fetch:
    return Fetch(
        row["id"], row["comment_id"], row["position"], row["name"], row["url"], row["attempts"]
    )


async def next_due(tx: Tx) -> datetime | None:
    row = await tx.one(NEXT_DUE)
    return None if row is None else row["due"]


def _lost(fetch: Fetch) -> FrontdeskError:
    # the lease ran out and another fetcher holds the job now: undo this one's work
    return FrontdeskError("conflict", f"Fetch {fetch.id} is no longer held", 409)


async def complete(tx: Tx, fetch: Fetch, blob: StoredBlob, content_type: str) -> int:
    """Record the fetched bytes as a file attached to the comment; returns the file id."""
    file_id = await files.register_file(
        tx, guid=blob.key, name=fetch.name, size=blob.size, md5=blob.md5, content_type=content_type
    )
    finished = await tx.run(
        FINISH, id=fetch.id, status=DONE, file_id=file_id, last_error=None, now=utcnow()
    )
    if not finished:
        raise _lost(fetch)
    attached = {"comment_id": fetch.comment_id, "file_id": file_id, "position": fetch.position}
    await tx.run(files.INSERT_ATTACHMENT, **attached)
    return file_id


async def retry_later(tx: Tx, fetch: Fetch, error: str, at: datetime) -> None:
    await tx.run(RETRY, id=fetch.id, last_error=error[:500], at=at)


async def give_up(tx: Tx, fetch: Fetch, error: str) -> None:
    """The file stays a link: its name and URL go into the comment's text, with the reason."""
    if not await tx.run(
        FINISH, id=fetch.id, status=FAILED, file_id=None, last_error=error[:500], now=utcnow()
    ):
        raise _lost(fetch)
    row = await tx.one(COMMENT_TEXT, id=fetch.comment_id)
    if row is None:
        return
    line = f"{fetch.name}: {fetch.url} (not downloaded: {error[:200]})"
    text = f"{row['text']}\n{line}" if row["text"] else line
    await tx.run(SET_COMMENT_TEXT, id=fetch.comment_id, text=text)
