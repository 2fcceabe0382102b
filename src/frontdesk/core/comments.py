"""Comments: every message, call, note and answer in a task."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import files
from frontdesk.core.html import sanitize, to_text
from frontdesk.storage.sql import Deferred, Query, Tx
from frontdesk.storage.tables import comments

#: from the customer or a connector
INBOUND = "in"
#: to the customer's channel
OUTBOUND = "out"
#: seen by agents only
INTERNAL = "internal"
#: a sender's name is shown, not matched: a longer one (a Planfix contact's first and last
#: names are 200 characters each) is cut to fit its column
COMMENT_SENDER_LENGTH: int = comments.c.sender_name.type.length  # type: ignore[attr-defined]


@dataclass(slots=True)  # made per request (docs/decisions.md)
class Formatted:
    """A comment's text and its sanitised HTML (None when it was sent as plain text)."""

    text: str
    html: str | None = None


def formatted(text: str | None, html: str | None) -> Formatted:
    """Sanitise the HTML; derive the plain text from it when no text was sent."""
    if not html:
        return Formatted(text or "")
    clean = sanitize(html)
    return Formatted(text if text else to_text(clean), clean)


@dataclass(slots=True)  # made per request (docs/decisions.md)
class NewComment:
    #: (a Deferred: a task or channel written in the same batch of deferred writes)
    task_id: int | Deferred
    body: Formatted
    direction: str = INBOUND
    channel_id: int | Deferred | None = None
    author_id: int | None = None
    sender_name: str | None = None
    message_type: str | None = None
    send_to_external_channel: bool = False
    file_ids: Sequence[int] = field(default_factory=tuple)


INSERT_COMMENT = Query(
    sa.insert(comments)
    .values(
        task_id=p("task_id"),
        channel_id=p("channel_id"),
        direction=p("direction"),
        author_id=p("author_id"),
        sender_name=p("sender_name"),
        text=p("text"),
        html=p("html"),
        message_type=p("message_type"),
        send_to_external_channel=p("send_to_external_channel"),
        created_at=p("now"),
    )
    .returning(comments.c.id)
)


async def add_comment(tx: Tx, new: NewComment) -> int:
    """Write the comment with its attachments.

    The database marks the task as just active (trigger comments_touch_task, migration 0002).
    """
    comment = add_comment_later(tx, new)
    await tx.flush()
    return int(comment.value)


def add_comment_later(tx: Tx, new: NewComment) -> Deferred:
    """`add_comment` as deferred writes (the comment's id: the Deferred's value)."""
    comment = tx.defer(
        INSERT_COMMENT,
        task_id=new.task_id,
        channel_id=new.channel_id,
        direction=new.direction,
        author_id=new.author_id,
        sender_name=new.sender_name and new.sender_name[:COMMENT_SENDER_LENGTH],
        text=new.body.text,
        html=new.body.html,
        message_type=new.message_type,
        send_to_external_channel=new.send_to_external_channel,
        now=tx.now,
    )
    files.attach_later(tx, comment, new.file_ids)
    return comment
