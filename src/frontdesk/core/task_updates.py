"""What an agent does to tasks through API v4: creates them, and comments on them.

A comment can carry everything Pyrus lets one carry here: text (plain or HTML, sanitised as
everywhere), the user's uploads, field updates, closing or reopening the task, a new
responsible person, and an answer to the customer in the task's external channel. What it
did is stored with it (`comments.action`, `comments.changes`), so the task's history shows it.

Unlike the Extensions API, nothing is half-done: any bad part refuses the whole request
with Pyrus' API v4 code for it (`invalid_field_id`, `invalid_value_format`, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import files, users
from frontdesk.core import tasks as task_store
from frontdesk.core.auth import UserPrincipal, ensure_current_user
from frontdesk.core.comments import (
    INTERNAL,
    OUTBOUND,
    Formatted,
    NewComment,
    add_comment,
    formatted,
)
from frontdesk.core.field_values import normalize
from frontdesk.core.forms import Field, Form, load_form
from frontdesk.core.intake import MAX_ATTACHMENTS, check_text_length
from frontdesk.core.replies import Answer, ChannelWanted, answer_channel, send_to_customer
from frontdesk.core.task_views import TaskRow, readable_form, visible_task
from frontdesk.errors import FrontdeskError, NotFound
from frontdesk.storage.sql import Query, Tx
from frontdesk.storage.tables import comments

#: the longest value a text field takes (Pyrus: text_field_value_limit_exceeded)
MAX_FIELD_TEXT = 10_000
ACTIONS = ("finished", "reopened")


@dataclass(frozen=True)
class PersonRef:
    """Someone named by id or by e-mail (Pyrus' Person in requests)."""

    id: int | None = None
    email: str | None = None


@dataclass(frozen=True)
class FieldInput:
    """A value for a field named by id, code or name; `value` None clears the field."""

    id: int | None = None
    code: str | None = None
    name: str | None = None
    value: str | None = None
    #: a choice picked by id (its position, from 1) instead of by name
    choice_id: int | None = None


@dataclass(frozen=True)
class NewAgentTask:
    form_id: int | None = None
    text: str | None = None
    html: str | None = None
    subject: str | None = None
    responsible: PersonRef | None = None
    fields: Sequence[FieldInput] = ()
    attachments: Sequence[str] = ()


@dataclass(frozen=True)
class AgentComment:
    task_id: int
    text: str | None = None
    html: str | None = None
    action: str | None = None
    reassign_to: PersonRef | None = None
    field_updates: Sequence[FieldInput] = ()
    attachments: Sequence[str] = ()
    #: an answer to the customer, in the task's external channel
    to_channel: bool = False
    #: the kind of chat the answer must go to, when the caller named one
    channel_wanted: ChannelWanted | None = None


@dataclass
class _Changes:
    """What a comment does besides saying something."""

    values: list[tuple[Field, str | None]] = field(default_factory=list)
    responsible_id: int | None = None
    action: str | None = None

    def snapshot(self) -> dict[str, Any] | None:
        found: dict[str, Any] = {}
        if self.responsible_id is not None:
            found["reassigned_to"] = self.responsible_id
        if self.values:
            found["field_updates"] = [
                {"id": f.id, "code": f.code, "name": f.name, "type": f.type, "value": value}
                for f, value in self.values
            ]
        return found or None


SET_EFFECTS = Query(
    sa.update(comments)
    .where(comments.c.id == p("id"))
    .values(action=p("action"), changes=p("changes"))
)


def _error(code: str, message: str) -> FrontdeskError:
    return FrontdeskError(code, message)


# --- people -------------------------------------------------------------------------------


async def resolve_person(tx: Tx, ref: PersonRef) -> int:
    """The user's id; Pyrus' codes for an unknown id or e-mail, or the two disagreeing."""
    email = (ref.email or "").strip().lower()
    if ref.id is None:
        if not email:
            raise _error("person_identity_missing", "Name the person by id or email")
        row = await tx.one(users.USER_BY_EMAIL, email=email)
        if row is None:
            raise _error("invalid_email", f"No person with email {ref.email}")
        return int(row["id"])
    try:
        member = await users.get_member(tx, ref.id)
    except NotFound:
        raise _error("invalid_person_id", f"No person with id {ref.id}") from None
    if email and member.email != email:
        raise _error("invalid_person_id_email", f"Person {ref.id} is not {ref.email}")
    return member.user_id


# --- field values -------------------------------------------------------------------------


def _named_field(form: Form, given: FieldInput) -> Field | None:
    if given.code is not None:
        found = form.fields.get(given.code)
        if found is None:
            raise _error(
                "invalid_field_code", f"Form {form.id} has no field with code {given.code!r}"
            )
        return found
    if given.name is None:
        return None
    named = [f for f in form.fields.values() if f.name == given.name]
    if len(named) > 1:
        raise _error(
            "non_unique_name", f"Several fields of form {form.id} are named {given.name!r}"
        )
    if not named:
        raise _error("invalid_field_name", f"Form {form.id} has no field named {given.name!r}")
    return named[0]


def _target(form: Form, given: FieldInput) -> Field:
    by_name = _named_field(form, given)
    if given.id is None:
        if by_name is None:
            raise _error("field_identity_missing", "Name each field by id, code or name")
        return by_name
    by_id = form.field_with_id(given.id)
    if by_id is None:
        raise _error("invalid_field_id", f"Form {form.id} has no field {given.id}")
    if by_name is not None and by_name.id != by_id.id:
        raise _error("invalid_field_id_name", f"Field {given.id} is not {by_name.name!r}")
    return by_id


def _choice_text(target: Field, given: FieldInput) -> str | None:
    if given.choice_id is None:
        return given.value
    if not 1 <= given.choice_id <= len(target.choices):
        raise _error("invalid_value_format", f"Field {target.id} has no choice {given.choice_id}")
    return target.choices[given.choice_id - 1]


def _checked_value(target: Field, given: FieldInput) -> str | None:
    """The value as the field stores it (None: clear the field)."""
    raw = _choice_text(target, given)
    if raw is None or raw == "":
        return None
    if target.type == "text" and len(raw) > MAX_FIELD_TEXT:
        raise _error(
            "text_field_value_limit_exceeded",
            f"Field {target.id}: {len(raw)} characters; the limit is {MAX_FIELD_TEXT}",
        )
    value = normalize(target.type, raw, target.choices)
    if value is None:
        expected = "one of " + "|".join(target.choices) if target.choices else target.type
        raise _error("invalid_value_format", f"Field {target.id} expects {expected}, not {raw!r}")
    return value


def resolve_values(form: Form, given: Sequence[FieldInput]) -> list[tuple[Field, str | None]]:
    resolved: list[tuple[Field, str | None]] = []
    for item in given:
        target = _target(form, item)
        if any(done.id == target.id for done, _ in resolved):
            raise _error("duplicate_field", f"Field {target.id} is given twice")
        resolved.append((target, _checked_value(target, item)))
    return resolved


async def _store_values(tx: Tx, task_id: int, values: list[tuple[Field, str | None]]) -> None:
    await task_store.set_values(tx, task_id, {f.id: v for f, v in values if v is not None})
    await task_store.clear_values(tx, task_id, [f.id for f, v in values if v is None])


# --- text and files -----------------------------------------------------------------------


def _body(text: str | None, html: str | None) -> Formatted:
    """The comment's text and sanitised HTML; blank when nothing visible is left."""
    check_text_length(text, html, name="text", html_name="formatted_text")
    body = formatted(text, html)
    return body if body.text.strip() else Formatted("")


async def _file_ids(tx: Tx, user_id: int, guids: Sequence[str]) -> list[int]:
    """The user's own uploads; any other guid refuses the request."""
    if len(guids) > MAX_ATTACHMENTS:
        raise _error(
            "too_many_attachments", f"{len(guids)} attachments; the limit is {MAX_ATTACHMENTS}"
        )
    resolved = await files.resolve_user_guids(tx, user_id, guids)
    if resolved.unknown:
        raise _error(
            "unrecognized_attachment_id", "Unknown attachment guids: " + ", ".join(resolved.unknown)
        )
    return resolved.ids


# --- creating a task ----------------------------------------------------------------------


async def _form_for_new_task(
    tx: Tx, user_id: int, new: NewAgentTask, body: Formatted
) -> Form | None:
    if new.form_id is None:
        if new.fields:
            raise _error("form_id_missing", "Fields need a form_id")
        if not body.text:
            raise _error("text_missing", "A task without a form needs text")
        return None
    return await readable_form(tx, user_id, new.form_id)


async def create_task(tx: Tx, principal: UserPrincipal, new: NewAgentTask) -> int:
    """POST /tasks: a simple task (text) or a form task (fields); the user is its author."""
    await ensure_current_user(tx, principal)
    user_id = principal.user_id
    body = _body(new.text, new.html)
    form = await _form_for_new_task(tx, user_id, new, body)
    values = [] if form is None else resolve_values(form, new.fields)
    file_ids = await _file_ids(tx, user_id, new.attachments)
    responsible = None if new.responsible is None else await resolve_person(tx, new.responsible)
    task_id = await task_store.create_authored_task(
        tx,
        author_id=user_id,
        form_id=new.form_id,
        subject=new.subject or task_store.subject_from(body.text),
        responsible_id=responsible,
    )
    await _store_values(tx, task_id, values)
    if body.text or file_ids:  # the task's text is its first comment, as in Pyrus
        await add_comment(
            tx, NewComment(task_id, body, INTERNAL, author_id=user_id, file_ids=file_ids)
        )
    return task_id


# --- commenting ---------------------------------------------------------------------------


async def _changes(tx: Tx, task: TaskRow, form: Form | None, new: AgentComment) -> _Changes:
    if new.field_updates and form is None:
        raise _error("task_has_no_form", f"Task {task.id} has no form, so no fields to update")
    if new.action is not None and new.action not in ACTIONS:
        raise _error("invalid_value_format", f"action is finished or reopened, not {new.action!r}")
    found = _Changes(action=new.action)
    if form is not None:
        found.values = resolve_values(form, new.field_updates)
    if new.reassign_to is not None:
        found.responsible_id = await resolve_person(tx, new.reassign_to)
    return found


async def _apply(tx: Tx, task: TaskRow, changes: _Changes) -> None:
    await _store_values(tx, task.id, changes.values)
    if changes.responsible_id is not None:
        await task_store.set_responsible(tx, task.id, changes.responsible_id)
    if changes.action == "finished" and task.closed_at is None:
        await task_store.close(tx, task.id)
    elif changes.action == "reopened" and task.closed_at is not None:
        await task_store.reopen(tx, task.id)


async def _comment_row(
    tx: Tx, task_id: int, user_id: int, new: AgentComment, body: Formatted, file_ids: list[int]
) -> int:
    if not new.to_channel:
        return await add_comment(
            tx, NewComment(task_id, body, INTERNAL, author_id=user_id, file_ids=file_ids)
        )
    if not (body.text or file_ids):
        raise _error("text_missing", "An answer to the customer needs text or attachments")
    chat = await answer_channel(tx, task_id, new.channel_wanted)
    answer = NewComment(
        task_id,
        body,
        OUTBOUND,
        channel_id=chat.channel_id,
        author_id=user_id,
        message_type=chat.message_type,
        send_to_external_channel=True,
        file_ids=file_ids,
    )
    comment_id = await add_comment(tx, answer)
    # delivered through the outbox, in this transaction: the answer and its webhook together
    author = await users.get_person(tx, user_id)
    await send_to_customer(tx, Answer(task_id, comment_id, body.text, file_ids, sender=author))
    return comment_id


def _says_nothing(new: AgentComment, body: Formatted, changes: _Changes) -> bool:
    return not (body.text or new.attachments or new.to_channel or changes.snapshot() or new.action)


async def comment_task(tx: Tx, principal: UserPrincipal, new: AgentComment) -> None:
    """POST /tasks/{id}/comments: say something, and change the task as the comment says."""
    await ensure_current_user(tx, principal)
    user_id = principal.user_id
    # What the comment changes is decided from the task as read here: two agents closing
    # and reopening at once each read it open, and a "finished" comment was recorded on a
    # task left open (12 of 20 rounds of ten of each on PostgreSQL). They take turns.
    await tx.lock("task", new.task_id)
    task = await visible_task(tx, user_id, new.task_id)
    # the task's own form: its author or responsible may comment without being a member
    form = None if task.form_id is None else await load_form(tx, task.form_id)
    body = _body(new.text, new.html)
    changes = await _changes(tx, task, form, new)
    if _says_nothing(new, body, changes):
        raise _error("text_missing", "The comment has no text, files or changes")
    file_ids = await _file_ids(tx, user_id, new.attachments)
    comment_id = await _comment_row(tx, task.id, user_id, new, body, file_ids)
    await _apply(tx, task, changes)
    snapshot = changes.snapshot()
    if changes.action or snapshot:
        await tx.run(SET_EFFECTS, id=comment_id, action=changes.action, changes=snapshot)
