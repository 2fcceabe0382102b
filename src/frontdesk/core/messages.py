"""Messages from an extension: a new task, a comment on a task, a chat message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from frontdesk.core import tasks as task_store
from frontdesk.core.auth import ExtensionPrincipal
from frontdesk.core.channels import find_conversation, route
from frontdesk.core.comments import (
    INBOUND,
    OUTBOUND,
    NewComment,
    add_comment,
    add_comment_later,
    formatted,
)
from frontdesk.core.forms import MESSAGE_TYPE_CODE, Form, load_form, map_values
from frontdesk.core.intake import (
    Outcome,
    account_and_form,
    check_text_length,
    open_to_extension,
    resolve_attachments,
)
from frontdesk.core.replies import Answer, send_to_customer
from frontdesk.errors import FrontdeskError, Problem, required
from frontdesk.storage.sql import Tx, id_of

Mappings = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class NewTask:
    account_id: str
    text: str | None = None
    html: str | None = None
    mappings: Mappings = ()


@dataclass(frozen=True)
class ExtensionComment:
    account_id: str
    task_id: int
    text: str | None = None
    html: str | None = None
    mappings: Mappings = ()
    attachments: Sequence[str] = ()
    send_to_external_channel: bool = False


@dataclass(slots=True)  # made per request (docs/decisions.md)
class ChatMessage:
    account_id: str
    channel_id: str
    text: str | None = None
    html: str | None = None
    sender_name: str | None = None
    message_type: str | None = None
    mappings: Mappings = ()
    attachments: Sequence[str] = ()


async def create_task(tx: Tx, principal: ExtensionPrincipal, new: NewTask) -> Outcome:
    """POST /task: always a new task in the account's form."""
    check_text_length(new.text, new.html, name="text")
    account, form = await account_and_form(tx, principal, new.account_id)
    mapped = map_values(form, new.mappings)
    body = formatted(new.text, new.html)
    task_id = await task_store.create_task(
        tx, form_id=form.id, account_ref=account.id, subject=task_store.subject_from(body.text)
    )
    await task_store.set_values(tx, task_id, mapped.values)
    if body.text:
        await add_comment(tx, NewComment(task_id, body))
    return Outcome(task_id, True, None, mapped.problems)


async def comment(tx: Tx, principal: ExtensionPrincipal, new: ExtensionComment) -> list[Problem]:
    """POST /comment: a comment (and field values) on a task of the account's form."""
    check_text_length(new.text, new.html, name="comment_text")
    if not (new.text or new.html or new.mappings or new.attachments):
        raise required("comment_text")
    account, form = await account_and_form(tx, principal, new.account_id)
    task = await task_store.get_task(tx, new.task_id)
    if task is None or task.form_id != form.id or not await open_to_extension(tx, task, principal):
        raise FrontdeskError(
            "unrecognized_task_id",
            f"Task {new.task_id} does not exist or is not in the form of account "
            f"{account.account_id!r}",
        )
    mapped = map_values(form, new.mappings)
    body = formatted(new.text, new.html)
    # fields to fill are something to say too: unknown files then do not drop them
    file_ids = await resolve_attachments(
        tx,
        principal.extension_id,
        new.attachments,
        bool(body.text or mapped.values),
        mapped.problems,
    )
    if not (body.text or file_ids or mapped.values or new.mappings):
        raise required("comment_text")  # e.g. HTML that sanitised to nothing
    # the task's row before its values, in the order a customer's message locks them (the
    # comment's trigger touches the task): the other order deadlocked with a message
    await task_store.lock(tx, task.id)
    await task_store.set_values(tx, task.id, mapped.values)
    if body.text or file_ids:
        comment_id = await add_comment(
            tx,
            NewComment(
                task.id,
                body,
                file_ids=file_ids,
                direction=OUTBOUND if new.send_to_external_channel else INBOUND,
                send_to_external_channel=new.send_to_external_channel,
            ),
        )
        if new.send_to_external_channel:
            await send_to_customer(tx, Answer(task.id, comment_id, body.text, file_ids))
    return mapped.problems


#: the longest message type a channel keeps (a longer one is no type a form can have)
MESSAGE_TYPE_LENGTH = 100


def _message_type(form: Form, wanted: str | None, problems: list[Problem]) -> str | None:
    """The message type to record: the one sent if the form knows it, else the form's first
    (the document: an unknown type is reported, and the message processed all the same)."""
    known = form.message_types
    if wanted is not None and len(wanted) > MESSAGE_TYPE_LENGTH:
        fallback = known[0] if known else None
        problems.append(
            Problem(
                "unrecognized_message_type",
                f"Unknown message type {wanted[:50]!r}… ({len(wanted)} characters); "
                f"processed as {fallback!r}",
            )
        )
        return fallback
    if not known or wanted in known:
        return wanted or (known[0] if known else None)
    match = next((t for t in known if wanted and t.casefold() == wanted.casefold()), None)
    if match is None and wanted:
        problems.append(
            Problem(
                "unrecognized_message_type",
                f"Unknown message type {wanted!r}; processed as {known[0]!r}",
            )
        )
    return match or known[0]


async def receive_message(tx: Tx, principal: ExtensionPrincipal, message: ChatMessage) -> Outcome:
    """POST /getmessage: a customer's message, routed to its conversation's task."""
    check_text_length(message.text, message.html)
    if not (message.text or message.html or message.attachments):
        raise required("message_text")
    conversation = await find_conversation(
        tx, principal, message.account_id, "chat", message.channel_id
    )
    account = conversation.account
    form = await load_form(tx, account.form_id)
    mapped = map_values(form, message.mappings)
    message_type = _message_type(form, message.message_type, mapped.problems)
    body = formatted(message.text, message.html)
    file_ids = await resolve_attachments(
        tx, principal.extension_id, message.attachments, bool(body.text), mapped.problems
    )
    if not (body.text or file_ids):
        raise required("message_text")  # e.g. HTML that sanitised to nothing
    routed = await route(
        tx,
        account,
        "chat",
        message.channel_id,
        latest=conversation.latest,
        subject=task_store.subject_from(body.text) or message.sender_name,
        message_type=message_type,
        sender_name=message.sender_name,
    )
    type_field = form.fields.get(MESSAGE_TYPE_CODE)
    if routed.is_new_task and type_field and message_type:
        mapped.values.setdefault(type_field.id, message_type)
    # every write deferred: on PostgreSQL the message is one statement, without BEGIN/COMMIT
    task_store.set_values_later(tx, routed.task_id, mapped.values)
    add_comment_later(
        tx,
        NewComment(
            routed.task_id,
            body,
            channel_id=routed.channel_id,
            sender_name=message.sender_name,
            message_type=message_type,
            file_ids=file_ids,
        ),
    )
    await tx.flush(last=True)
    return Outcome(id_of(routed.task_id), routed.is_new_task, routed.responsible, mapped.problems)
