"""Answers to the customer: an agent's comment sent out through the task's external channels.

Each chat channel of the task whose extension has a URL and whose account is enabled gets a
`sendmessage` webhook in the outbox, written in the transaction that writes the comment
(ARCHITECTURE.md §2 names the body: account_id, channel_id, message_text, attachment_ids,
plus task_id, comment_id and sender). Deliveries of one channel keep their order. A Planfix
chat of the task gets a `cmd=newMessage` the same way (core.planfix_answers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec
import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import outbox, tasks, users
from frontdesk.core.comments import OUTBOUND, Formatted, NewComment, add_comment
from frontdesk.core.intake import check_text_length
from frontdesk.core.planfix_answers import send_to_planfix
from frontdesk.core.users import Person
from frontdesk.errors import FrontdeskError, NotFound, required
from frontdesk.storage.sql import Query, Tx
from frontdesk.storage.tables import channels, extension_accounts, extensions

SENDMESSAGE = "sendmessage"

#: the task's chat conversations that lead to an extension we can call
CHAT_TARGETS = Query(
    sa.select(
        channels.c.key,
        extension_accounts.c.id.label("account_ref"),
        extension_accounts.c.account_id,
        extensions.c.id.label("extension_id"),
        extensions.c.base_url,
    )
    .distinct()
    .select_from(
        channels.join(extension_accounts, extension_accounts.c.id == channels.c.account_ref).join(
            extensions, extensions.c.id == extension_accounts.c.extension_id
        )
    )
    .where(
        channels.c.task_id == p("task_id"),
        channels.c.kind == "chat",
        extension_accounts.c.enabled.is_(True),
        extensions.c.base_url.is_not(None),
    )
    .order_by(extension_accounts.c.id, channels.c.key)
)


#: the task's chats, newest first; `enabled` is None for a Planfix chat (it has no account)
TASK_CHATS = Query(
    sa.select(channels.c.id, channels.c.message_type, extension_accounts.c.enabled)
    .select_from(
        channels.outerjoin(extension_accounts, extension_accounts.c.id == channels.c.account_ref)
    )
    .where(channels.c.task_id == p("task_id"), channels.c.kind == "chat")
    .order_by(channels.c.id.desc())
)


@dataclass(frozen=True)
class AnswerChannel:
    """The chat an answer to the customer is recorded in (it goes to each chat of the task)."""

    channel_id: int
    message_type: str | None


@dataclass(frozen=True)
class ChannelWanted:
    """The kind of chat an answer names (API v4's `channel.type`), as the protocol tells it."""

    name: str
    #: whether a chat of this message type is of that kind
    accepts: Callable[[str | None], bool]


async def answer_channel(
    tx: Tx, task_id: int, wanted: ChannelWanted | None = None
) -> AnswerChannel:
    """The task's newest chat whose account is enabled (and of the kind wanted, if named).

    Refused (validation_error) when the task has no chat, or only chats whose accounts are
    disabled, or none of the kind named: an answer nothing will carry to the customer would
    look sent and be lost, and one carried by another messenger would surprise everyone.
    """
    chats = await tx.all(TASK_CHATS, task_id=task_id)
    if not chats:
        raise FrontdeskError(
            "validation_error", f"Task {task_id} has no external channel to answer in"
        )
    enabled = [chat for chat in chats if chat["enabled"] is not False]
    if not enabled:
        raise FrontdeskError(
            "validation_error",
            f"The account of task {task_id}'s chat is disabled: nothing would reach the "
            "customer (frontdesk account enable)",
        )
    for chat in enabled:
        if wanted is None or wanted.accepts(chat["message_type"]):
            return AnswerChannel(int(chat["id"]), chat["message_type"])
    assert wanted is not None
    raise FrontdeskError(
        "validation_error", f"Task {task_id} has no {wanted.name} chat to answer in"
    )


@dataclass(frozen=True)
class Answer:
    """An agent's comment to send to the customer."""

    task_id: int
    comment_id: int
    text: str
    file_ids: Sequence[int] = ()
    sender: Person | None = None


def endpoint_url(base_url: str, method: str) -> str:
    return f"{base_url.rstrip('/')}/{method}"


def _sender(person: Person | None) -> dict[str, object] | None:
    if person is None:
        return None
    return {
        "user_id": person.user_id,
        "first_name": person.first_name,
        "last_name": person.last_name,
    }


def sendmessage_body(answer: Answer, account_id: str, channel_id: str) -> bytes:
    body: dict[str, object] = {
        "account_id": account_id,
        "channel_id": channel_id,
        "message_text": answer.text,
        "attachment_ids": list(answer.file_ids),
        "task_id": answer.task_id,
        "comment_id": answer.comment_id,
    }
    sender = _sender(answer.sender)
    if sender is not None:
        body["sender"] = sender
    return msgspec.json.encode(body)


async def send_to_customer(tx: Tx, answer: Answer) -> int:
    """Queue the answer for every chat channel of its task, a Pyrus extension's (sendmessage)
    or a Planfix chat system's (newMessage); returns how many were queued."""
    return await _send_to_extensions(tx, answer) + await send_to_planfix(tx, answer)


async def _send_to_extensions(tx: Tx, answer: Answer) -> int:
    targets = await tx.all(CHAT_TARGETS, task_id=answer.task_id)
    for target in targets:
        await outbox.enqueue(
            tx,
            kind=SENDMESSAGE,
            url=endpoint_url(target["base_url"], SENDMESSAGE),
            body=sendmessage_body(answer, target["account_id"], target["key"]),
            ordering_key=f"chat:{target['account_ref']}:{target['key']}",
            extension_id=target["extension_id"],
        )
    return len(targets)


@dataclass(frozen=True)
class Reply:
    comment_id: int
    #: webhooks queued (one per chat channel of the task: sendmessage, Planfix newMessage)
    queued: int


async def author_by_email(tx: Tx, email: str) -> Person:
    row = await tx.one(users.USER_BY_EMAIL, email=email.strip().lower())
    if row is None:
        raise NotFound(f"No user with e-mail {email}")
    return await users.get_person(tx, row["id"])


async def reply_to_customer(
    tx: Tx,
    task_id: int,
    text: str,
    file_ids: Sequence[int] = (),
    author: Person | None = None,
) -> Reply:
    """An agent's answer in the task (`frontdesk reply`, the agent UI): an outbound comment,
    sent to every chat channel of the task."""
    check_text_length(text, name="text")
    if not text.strip() and not file_ids:
        raise required("text")
    if await tasks.get_task(tx, task_id) is None:
        raise NotFound(f"No task {task_id}")
    chat = await answer_channel(tx, task_id)
    body = Formatted(text)
    comment_id = await add_comment(
        tx,
        NewComment(
            task_id,
            body,
            direction=OUTBOUND,
            channel_id=chat.channel_id,
            author_id=None if author is None else author.user_id,
            message_type=chat.message_type,
            send_to_external_channel=True,
            file_ids=file_ids,
        ),
    )
    queued = await send_to_customer(
        tx, Answer(task_id, comment_id, body.text, file_ids, sender=author)
    )
    return Reply(comment_id, queued)
