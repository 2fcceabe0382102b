"""The JSON of forms, fields, tasks, comments, files and persons, as Pyrus API v4 sends them.

Field names and value shapes follow Pyrus' documentation ("Form fields format", "Tasks") and
what the official clients parse (pyrus-api 2.50.0 `models/entities.py`, Pyrus.ApiClient):
dates `yyyy-MM-ddTHH:mm:ssZ` in UTC, numbers as JSON numbers, a choice as
`{"choice_ids": [...], "choice_names": [...]}`, a field's code as its `code`. Empty fields
are left out (responses.ok drops None).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from frontdesk.core.forms import Field, Form
from frontdesk.core.task_views import (
    ChannelView,
    CommentView,
    FileView,
    TaskList,
    TaskRow,
    TaskView,
)
from frontdesk.core.users import Member
from frontdesk.protocols.pyrus_v4.people import person_json

Json = dict[str, Any]

#: our field types -> Pyrus' (`FormFieldType`). Pyrus has no plain date-and-time field: its
#: one writable type holding both is due_date_time, whose value format is exactly ours.
PYRUS_TYPES = {
    "text": "text",
    "number": "number",
    "money": "money",
    "date": "date",
    "time": "time",
    "datetime": "due_date_time",
    "phone": "phone",
    "email": "email",
    "checkmark": "checkmark",
    "choice": "multiple_choice",
}
#: message types of chats (the MessageType choices) -> Pyrus' channel types (`ChannelType`)
CHANNEL_TYPES = {
    "telegram": "telegram",
    "vk": "vk",
    "vkontakte": "vk",
    "whatsapp": "whats_app",
    "viber": "viber",
    "instagram": "instagram",
    "facebook": "facebook",
    "email": "email",
    "sms": "sms",
    "max": "max_messenger",
    "webwidget": "web_widget",
}


def date_time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def person_of(people: dict[int, Member], user_id: int | None) -> Json | None:
    """The Person a task or comment names (as /members shows them), if it names one."""
    found = None if user_id is None else people.get(user_id)
    return None if found is None else person_json(found)


# --- forms and field values ---------------------------------------------------------------


def _options(target: Field) -> list[Json]:
    return [
        {"choice_id": position, "choice_value": name}
        for position, name in enumerate(target.choices, start=1)
    ]


def field_schema_json(target: Field) -> Json:
    """A field as a form describes it (GET /forms): choices as `info.options`."""
    found = field_head(target)
    if target.choices:
        found["info"] = {"options": _options(target)}
    return found


def form_json(form: Form) -> Json:
    return {
        "id": form.id,
        "name": form.name,
        "fields": [field_schema_json(f) for f in form.fields.values()],
        "deleted_or_closed": False,
    }


def field_head(target: Field) -> Json:
    return {
        "id": target.id,
        "type": PYRUS_TYPES.get(target.type, target.type),
        "name": target.name,
        "code": target.code,
    }


def _number(text: str) -> int | float:
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


def typed_value(field_type: str, text: str, choices: tuple[str, ...] = ()) -> Any:
    """A stored value (canonical text) as Pyrus shows a value of that type."""
    if field_type in ("number", "money"):
        return _number(text)
    if field_type == "choice":
        choice_ids = [choices.index(text) + 1] if text in choices else []
        return {"choice_ids": choice_ids, "choice_names": [text]}
    return text


def field_value_json(target: Field, text: str | None) -> Json:
    found = field_head(target)
    if text is not None:
        found["value"] = typed_value(target.type, text, target.choices)
    return found


def _update_json(form: Form | None, update: Json) -> Json:
    """A recorded field update, shown with its field as it was written."""
    choices: tuple[str, ...] = ()
    if form is not None and (current := form.field_with_id(update["id"])) is not None:
        choices = current.choices
    target = Field(update["id"], update["code"], update["name"], update["type"], choices)
    return field_value_json(target, update.get("value"))


# --- comments -----------------------------------------------------------------------------


def file_json(found: FileView, base: str) -> Json:
    return {
        "id": found.id,
        "name": found.name,
        "size": found.size,
        "md5": found.md5,
        "url": f"{base}/services/attachment?Id={found.id}",
    }


def chat_type(message_type: str | None) -> str:
    """Pyrus' channel type of a chat of this message type; "custom" when it has none."""
    key = "".join(ch for ch in (message_type or "").casefold() if ch.isalnum())
    return CHANNEL_TYPES.get(key, "custom")


def channel_type(channel: ChannelView) -> str:
    if channel.kind == "call":
        return "api_telephony"
    return chat_type(channel.message_type)


def channel_json(comment: CommentView) -> Json | None:
    """Where a customer's message came from (`from`), or where an answer went (`to`)."""
    channel = comment.channel
    if channel is None or comment.direction not in ("in", "out"):
        return None
    found: Json = {"type": channel_type(channel)}
    name = comment.sender_name or channel.sender_name
    if name:
        found["from" if comment.direction == "in" else "to"] = {"name": name}
    return found


def comment_json(view: TaskView, comment: CommentView, base: str) -> Json:
    changes = comment.changes
    reassigned = changes.get("reassigned_to")
    updates = changes.get("field_updates")
    return {
        "id": comment.id,
        # an empty text is left out, as every empty field (a comment that only closed the task)
        "text": comment.text or None,
        "formatted_text": comment.html or None,
        "create_date": date_time(comment.created_at),
        "author": person_of(view.people, comment.author_id),
        "attachments": [file_json(f, base) for f in comment.attachments] or None,
        "action": comment.action,
        "reassigned_to": person_of(view.people, reassigned),
        "field_updates": None if not updates else [_update_json(view.form, u) for u in updates],
        "channel": channel_json(comment),
    }


# --- tasks --------------------------------------------------------------------------------


def task_head_json(task: TaskRow, people: dict[int, Member]) -> Json:
    """What every list of tasks shows of one (Pyrus' TaskHeader, with form and subject)."""
    return {
        "id": task.id,
        "form_id": task.form_id,
        "subject": task.subject,
        "create_date": date_time(task.created_at),
        "last_modified_date": date_time(task.updated_at),
        "close_date": date_time(task.closed_at),
        "author": person_of(people, task.author_id),
        "responsible": person_of(people, task.responsible_id),
    }


def _task_fields(form: Form | None, values: dict[int, str]) -> list[Json] | None:
    """Every field of the form, with its value when it has one."""
    if form is None:
        return None
    return [field_value_json(f, values.get(f.id)) for f in form.fields.values()]


def task_json(view: TaskView, base: str) -> Json:
    """A task with its comments (GET /tasks/{id} and every method that answers a task)."""
    task_comments = [comment_json(view, c, base) for c in view.comments]
    files = [file_json(f, base) for c in view.comments for f in c.attachments]
    first_text = view.comments[0].text if view.comments else None
    return {
        **task_head_json(view.task, view.people),
        # a simple task's text is its first comment's; a form task has fields instead
        "text": first_text if view.form is None else None,
        "fields": _task_fields(view.form, view.values),
        "attachments": files or None,
        "last_note_id": view.comments[-1].id if view.comments else None,
        "comments": task_comments,
    }


def register_task_json(tasks: TaskList, task: TaskRow) -> Json:
    """A task of a register: the fields it has values for (or those asked for)."""
    assert tasks.form is not None
    values = tasks.values.get(task.id, {})
    fields = [
        field_value_json(target, value)
        for field_id, value in values.items()
        if (target := tasks.form.field_with_id(field_id)) is not None
    ]
    return {**task_head_json(task, tasks.people), "fields": fields}
