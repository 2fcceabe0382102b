"""Reading tasks as an agent sees them (API v4): a task with its field values, its comments
(with attachments, channels, what each did) and the people they name; the inbox.

Every unit here checks the token's revocation and the access rules of `core.access` first.
An id that names no task or form is refused exactly like one the user may not see
(`access_denied_task` / `access_denied_form`, 403): Pyrus' list of error codes has no
"not found" for tasks or forms, and one answer for both keeps ids from being probed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import access
from frontdesk.core.auth import UserPrincipal, ensure_current_user
from frontdesk.core.forms import Form, load_form
from frontdesk.core.users import Member, get_member
from frontdesk.errors import Forbidden, NotFound
from frontdesk.storage.sql import Query, Row, Tx
from frontdesk.storage.tables import attachments, channels, comments, files, task_values, tasks


@dataclass(frozen=True)
class TaskRow:
    id: int
    form_id: int | None
    subject: str | None
    author_id: int | None
    responsible_id: int | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class FileView:
    id: int
    name: str
    size: int
    md5: str


@dataclass(frozen=True)
class ChannelView:
    """The external conversation a comment came from or went to."""

    kind: str
    message_type: str | None
    sender_name: str | None


@dataclass
class CommentView:
    id: int
    text: str
    html: str | None
    created_at: datetime
    direction: str
    author_id: int | None
    sender_name: str | None
    action: str | None
    #: {"reassigned_to": user id, "field_updates": [{"id", "code", "name", "type", "value"}]}
    changes: dict[str, Any]
    channel: ChannelView | None
    attachments: list[FileView] = field(default_factory=list)


@dataclass
class TaskView:
    task: TaskRow
    form: Form | None
    #: field id -> canonical text (core.field_values)
    values: dict[int, str]
    comments: list[CommentView]
    people: dict[int, Member]


@dataclass
class TaskList:
    """Tasks without their comments (the register, the inbox)."""

    tasks: list[TaskRow]
    people: dict[int, Member]
    #: task id -> field id -> canonical text; empty for lists that show no fields
    values: dict[int, dict[int, str]] = field(default_factory=dict)
    form: Form | None = None
    has_more: bool = False


TASK_COLUMNS = (
    tasks.c.id,
    tasks.c.form_id,
    tasks.c.subject,
    tasks.c.author_id,
    tasks.c.responsible_id,
    tasks.c.closed_at,
    tasks.c.created_at,
    tasks.c.updated_at,
)
TASK_BY_ID = Query(sa.select(*TASK_COLUMNS).where(tasks.c.id == p("id")))
VALUES_OF_TASK = Query(
    sa.select(task_values.c.field_id, task_values.c.value).where(
        task_values.c.task_id == p("task_id")
    )
)
COMMENTS_OF_TASK = Query(
    sa.select(
        comments.c.id,
        comments.c.text,
        comments.c.html,
        comments.c.created_at,
        comments.c.direction,
        comments.c.author_id,
        comments.c.sender_name,
        comments.c.action,
        comments.c.changes,
        channels.c.kind.label("channel_kind"),
        channels.c.message_type.label("channel_message_type"),
        channels.c.sender_name.label("channel_sender_name"),
    )
    .outerjoin(channels, channels.c.id == comments.c.channel_id)
    .where(comments.c.task_id == p("task_id"))
    .order_by(comments.c.id)
)
FILES_OF_TASK = Query(
    sa.select(attachments.c.comment_id, files.c.id, files.c.name, files.c.size, files.c.md5)
    .join(files, files.c.id == attachments.c.file_id)
    .join(comments, comments.c.id == attachments.c.comment_id)
    .where(comments.c.task_id == p("task_id"))
    .order_by(attachments.c.comment_id, attachments.c.position)
)
INBOX = Query(
    sa.select(*TASK_COLUMNS)
    .where(tasks.c.responsible_id == p("user_id"), tasks.c.closed_at.is_(None))
    .order_by(tasks.c.updated_at.desc(), tasks.c.id.desc())
    .limit(p("limit"))
)


def task_row(row: Row) -> TaskRow:
    return TaskRow(**row)


async def readable_form(tx: Tx, user_id: int, form_id: int) -> Form:
    """The form, if the user may see it (an unknown form is refused the same way)."""
    try:
        form = await load_form(tx, form_id)
    except NotFound:
        raise _form_denied(form_id) from None
    await access.check_form(tx, user_id, form_id)
    return form


def _form_denied(form_id: int) -> Forbidden:
    return Forbidden("access_denied_form", f"You have no access to form {form_id}")


async def visible_task(tx: Tx, user_id: int, task_id: int) -> TaskRow:
    """The task, if the user may see it (an unknown task is refused the same way)."""
    row = await tx.one(TASK_BY_ID, id=task_id)
    if row is None:
        raise Forbidden("access_denied_task", f"You have no access to task {task_id}")
    task = task_row(row)
    await access.check_task(
        tx,
        user_id,
        task_id,
        form_id=task.form_id,
        author_id=task.author_id,
        responsible_id=task.responsible_id,
    )
    return task


async def read_task(tx: Tx, principal: UserPrincipal, task_id: int) -> TaskView:
    """GET /tasks/{id}: the task with everything it shows."""
    await ensure_current_user(tx, principal)
    return await view_of(tx, principal.user_id, task_id)


async def view_of(tx: Tx, user_id: int, task_id: int) -> TaskView:
    """The task as the user sees it (for a unit that has checked the token already)."""
    return await task_view(tx, await visible_task(tx, user_id, task_id))


async def task_view(tx: Tx, task: TaskRow) -> TaskView:
    form = None if task.form_id is None else await load_form(tx, task.form_id)
    values = {r["field_id"]: r["value"] for r in await tx.all(VALUES_OF_TASK, task_id=task.id)}
    task_comments = await _comments(tx, task.id)
    ids = [task.author_id, task.responsible_id, *_people_in(task_comments)]
    return TaskView(task, form, values, task_comments, await people(tx, ids))


async def _comments(tx: Tx, task_id: int) -> list[CommentView]:
    found = [_comment(row) for row in await tx.all(COMMENTS_OF_TASK, task_id=task_id)]
    by_id = {comment.id: comment for comment in found}
    for row in await tx.all(FILES_OF_TASK, task_id=task_id):
        comment_id = row.pop("comment_id")
        by_id[comment_id].attachments.append(FileView(**row))
    return found


def _comment(row: Row) -> CommentView:
    kind = row.pop("channel_kind")
    message_type = row.pop("channel_message_type")
    channel_sender = row.pop("channel_sender_name")
    channel = None if kind is None else ChannelView(kind, message_type, channel_sender)
    row["changes"] = row["changes"] or {}
    return CommentView(**row, channel=channel)


def _people_in(task_comments: Iterable[CommentView]) -> list[int | None]:
    ids: list[int | None] = []
    for comment in task_comments:
        ids += [comment.author_id, comment.changes.get("reassigned_to")]
    return ids


async def people(tx: Tx, ids: Iterable[int | None]) -> dict[int, Member]:
    """The users these ids name (a task names a handful: one query each)."""
    return {user_id: await get_member(tx, user_id) for user_id in set(ids) if user_id is not None}


async def inbox(tx: Tx, principal: UserPrincipal, limit: int) -> TaskList:
    """The open tasks the user is responsible for, the most recently active first."""
    await ensure_current_user(tx, principal)
    rows = await tx.all(INBOX, user_id=principal.user_id, limit=limit + 1)
    found = [task_row(row) for row in rows[:limit]]
    ids = [id_ for task in found for id_ in (task.author_id, task.responsible_id)]
    return TaskList(found, await people(tx, ids), has_more=len(rows) > limit)
