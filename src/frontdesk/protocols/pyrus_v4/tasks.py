"""GET /v4/tasks/{task_id}, POST /v4/tasks, POST /v4/tasks/{task_id}/comments, GET /v4/inbox.

Bodies are Pyrus' `CreateTaskRequest` and `TaskCommentRequest` (pyrus-api 2.50.0
`models/requests.py`): persons as `{"id"}` or `{"email"}` (a bare id or e-mail is taken too),
fields as `{"id" | "code" | "name", "value"}`, attachments as upload guids (or `{"guid"}`),
`channel` as `{"type"}`. Both methods answer the task as GET does, comments included.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from frontdesk.core import task_updates, task_views
from frontdesk.core.auth import UserPrincipal
from frontdesk.core.numbers import small_number
from frontdesk.core.replies import ChannelWanted
from frontdesk.core.task_updates import AgentComment, FieldInput, NewAgentTask, PersonRef
from frontdesk.core.task_views import TaskView
from frontdesk.errors import FrontdeskError
from frontdesk.protocols.pyrus_v4.common import endpoint, json_method, user_method
from frontdesk.protocols.pyrus_v4.forms import path_id
from frontdesk.protocols.pyrus_v4.shapes import chat_type, task_head_json, task_json
from frontdesk.storage.sql import Tx
from frontdesk.web.endpoints import Call, Reply
from frontdesk.web.json_body import Body, text
from frontdesk.web.responses import ok

#: an id the storage can hold (BIGINT): the drivers refuse to bind a larger one
PositiveId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]
INBOX_DEFAULT = 50
INBOX_MAX = 1000


class PersonIn(msgspec.Struct):
    id: PositiveId | None = None
    email: str | None = None


class FieldIn(msgspec.Struct):
    id: PositiveId | None = None
    code: str | None = None
    name: str | None = None
    value: Any = None


class NewFileIn(msgspec.Struct):
    """An attachment as an object: only uploads (`guid`) are served."""

    guid: str | None = None


class ChannelIn(msgspec.Struct):
    type: str | None = None


Person = PersonIn | PositiveId | str
Attachment = str | NewFileIn


class TaskIn(Body):
    limits: ClassVar = {"subject": 1000}
    form_id: PositiveId | None = None
    text: str | None = None
    formatted_text: str | None = None
    subject: str | None = None
    responsible: Person | None = None
    fields: list[FieldIn] | None = None  # (null: none)
    attachments: list[Attachment] | None = None  # (null: none)


class CommentIn(Body):
    text: str | None = None
    formatted_text: str | None = None
    action: str | None = None
    reassign_to: Person | None = None
    field_updates: list[FieldIn] | None = None  # (null: none)
    attachments: list[Attachment] | None = None  # (null: none)
    channel: ChannelIn | str | None = None


# --- from Pyrus' shapes to the core's -----------------------------------------------------


def _bad_value(item: FieldIn) -> FrontdeskError:
    name = item.id or item.code or item.name
    return FrontdeskError("invalid_value_format", f"Field {name}: cannot read {item.value!r}")


def _single(values: Any) -> Any:
    """One choice: Pyrus' choice fields here hold a single option."""
    if isinstance(values, list) and len(values) == 1:
        return values[0]
    return None


def _choice_input(item: FieldIn, value: dict[str, Any]) -> FieldInput:
    """`{"choice_ids": [2]}`, `{"choice_id": 2}` or `{"choice_names": ["VK"]}`."""
    choice_id = _single(value["choice_ids"]) if "choice_ids" in value else value.get("choice_id")
    if isinstance(choice_id, int) and not isinstance(choice_id, bool):
        return FieldInput(item.id, item.code, item.name, choice_id=choice_id)
    name = _single(value.get("choice_names"))
    if isinstance(name, str):
        return FieldInput(item.id, item.code, item.name, value=name)
    raise _bad_value(item)


def field_input(item: FieldIn) -> FieldInput:
    value = item.value
    if isinstance(value, dict):
        return _choice_input(item, value)
    if isinstance(value, list):
        value = _single(value)
        if value is None or isinstance(value, dict | list):
            raise _bad_value(item)
    if isinstance(value, bool):
        value = "checked" if value else "unchecked"
    return FieldInput(item.id, item.code, item.name, value=text(value))


def person_ref(person: Person | None) -> PersonRef | None:
    if person is None:
        return None
    if isinstance(person, PersonIn):
        return PersonRef(person.id, person.email)
    return PersonRef(id=person) if isinstance(person, int) else PersonRef(email=person)


def guids(attachments: list[Attachment]) -> list[str]:
    found = []
    for item in attachments:
        guid = item if isinstance(item, str) else item.guid
        if not guid:
            raise FrontdeskError(
                "unrecognized_attachment_id", "Attach files by the guid their upload returned"
            )
        found.append(guid)
    return found


#: the channel types a comment may name (pyrus-api's CommentRequest check)
ANSWER_CHANNEL_TYPES = frozenset(
    {
        "email",
        "telegram",
        "facebook",
        "vk",
        "viber",
        "instagram",
        "private_channel",
        "whats_app",
        "mobile_app",
        "web_widget",
        "sms",
        "custom",
        "max_messenger",
    }
)


def _channel_wanted(channel: ChannelIn | str | None) -> ChannelWanted | None:
    """The kind of chat an answer names. "custom" (an integration's own channel) is any chat;
    a chat whose message type maps to no Pyrus type takes any named type (which it is, is
    not known); otherwise the types must agree: a Telegram answer never goes out on VK."""
    if channel is None:
        return None
    kind = channel if isinstance(channel, str) else channel.type
    if not kind:
        raise FrontdeskError("invalid_value_format", "channel needs a type")
    if kind not in ANSWER_CHANNEL_TYPES:
        known = ", ".join(sorted(ANSWER_CHANNEL_TYPES))
        raise FrontdeskError("invalid_value_format", f"channel type {kind[:50]!r} is not {known}")
    if kind == "custom":
        return ChannelWanted(kind, lambda _message_type: True)
    return ChannelWanted(kind, lambda message_type: chat_type(message_type) in (kind, "custom"))


def new_task(body: TaskIn) -> NewAgentTask:
    return NewAgentTask(
        form_id=body.form_id,
        text=body.text,
        html=body.formatted_text,
        subject=body.subject,
        responsible=person_ref(body.responsible),
        fields=[field_input(item) for item in body.fields or []],
        attachments=guids(body.attachments or []),
    )


def new_comment(task_id: int, body: CommentIn) -> AgentComment:
    return AgentComment(
        task_id,
        text=body.text,
        html=body.formatted_text,
        action=body.action,
        reassign_to=person_ref(body.reassign_to),
        field_updates=[field_input(item) for item in body.field_updates or []],
        attachments=guids(body.attachments or []),
        to_channel=body.channel is not None,
        channel_wanted=_channel_wanted(body.channel),
    )


# --- the methods --------------------------------------------------------------------------


def task_id_of(call: Call) -> int:
    raw = call.path_param("task_id")
    refusal = FrontdeskError("access_denied_task", f"You have no access to task {raw[:40]}", 403)
    return path_id(raw, refusal)


def task_reply(call: Call, view: TaskView) -> Reply:
    return ok({"task": task_json(view, call.public_base_url())})


async def get_task(call: Call, principal: UserPrincipal) -> Reply:
    view = await call.ctx.db.read(task_views.read_task, principal, task_id_of(call))
    return task_reply(call, view)


async def _create(tx: Tx, principal: UserPrincipal, new: NewAgentTask) -> TaskView:
    task_id = await task_updates.create_task(tx, principal, new)
    return await task_views.view_of(tx, principal.user_id, task_id)


async def create_task(call: Call, principal: UserPrincipal, body: TaskIn) -> Reply:
    view = await call.ctx.db.write(_create, principal, new_task(body))
    return task_reply(call, view)


async def _comment(tx: Tx, principal: UserPrincipal, new: AgentComment) -> TaskView:
    await task_updates.comment_task(tx, principal, new)
    return await task_views.view_of(tx, principal.user_id, new.task_id)


async def comment_task(call: Call, principal: UserPrincipal, body: CommentIn) -> Reply:
    task_id = task_id_of(call)
    view = await call.ctx.db.write(_comment, principal, new_comment(task_id, body))
    return task_reply(call, view)


def _inbox_size(raw: str | None) -> int:
    if raw is None or raw == "":
        return INBOX_DEFAULT
    size = small_number(raw)
    if size is None or not 1 <= size <= INBOX_MAX:
        raise FrontdeskError(
            "invalid_value_format", f"item_count is 1 to {INBOX_MAX}, not {raw[:40]!r}"
        )
    return size


async def inbox(call: Call, principal: UserPrincipal) -> Reply:
    """The open tasks the user is responsible for; `group_item_count` asks for groups, which
    Frontdesk does not have."""
    limit = _inbox_size(call.query().get("item_count"))
    found = await call.ctx.db.read(task_views.inbox, principal, limit)
    tasks = [task_head_json(task, found.people) for task in found.tasks]
    return ok({"tasks": tasks, "has_more": found.has_more})


GET = ("GET",)
ENDPOINTS = (
    endpoint("/v4/tasks/{task_id}", user_method(get_task), "A task with its comments", methods=GET),
    endpoint("/v4/tasks", json_method(TaskIn, create_task), "Create a task", TaskIn),
    endpoint(
        "/v4/tasks/{task_id}/comments",
        json_method(CommentIn, comment_task),
        "Comment on a task (and change it)",
        CommentIn,
    ),
    endpoint(
        "/v4/inbox", user_method(inbox), "Open tasks the user is responsible for", methods=GET
    ),
)
