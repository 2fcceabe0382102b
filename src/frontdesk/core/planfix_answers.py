"""Agents' answers to a Planfix chat: cmd=newMessage to the chat system, through the outbox.

The body is form-urlencoded with the fields Planfix sends (spec.md §6.1): the chat's address,
the provider's own key as `token`, the text, our comment id as `messageId`, who answered, and
each file as an `attachments[name]`/`attachments[url]` pair, the URL a signed link that
expires (core.file_links). Fields we have no value for (`userIco`, `taskEmail`) are sent
empty rather than left out: receivers read them unconditionally. Answers to one chat go out
one at a time, in order (the outbox's ordering key); rows are not signed (the `token` field
is the provider's authentication).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import file_links, files, outbox
from frontdesk.core.users import Person
from frontdesk.storage.sql import Query, Row, Tx
from frontdesk.storage.tables import channels, planfix_contacts, planfix_integrations

if TYPE_CHECKING:
    from frontdesk.core.replies import Answer

PLANFIX_MESSAGE = outbox.PLANFIX_KIND
#: the links' base when the provider never reached us (it cannot happen for a chat, which
#: starts with the provider's message; kept so that an answer is never lost for want of it)
FALLBACK_BASE_URL = "http://127.0.0.1:8000"

#: the task's Planfix chats whose provider has a URL to answer to
TARGETS = Query(
    sa.select(
        channels.c.key,
        channels.c.message_type,
        planfix_integrations.c.id.label("integration_id"),
        planfix_integrations.c.provider_id,
        planfix_integrations.c.provider_url,
        planfix_integrations.c.provider_token,
        planfix_integrations.c.public_base_url,
        planfix_contacts.c.phone,
    )
    .distinct()
    .select_from(
        channels.join(
            planfix_integrations, planfix_integrations.c.id == channels.c.planfix_ref
        ).outerjoin(planfix_contacts, planfix_contacts.c.id == channels.c.contact_ref)
    )
    .where(channels.c.task_id == p("task_id"), planfix_integrations.c.provider_url.is_not(None))
    .order_by(planfix_integrations.c.id, channels.c.key)
)


def ordering_key(integration_id: int, chat_id: str) -> str:
    """One chat's key (outbox.enqueue shortens one too long for its column)."""
    return f"planfix:{integration_id}:{chat_id}"


def _names(sender: Person | None) -> tuple[str, str]:
    return ("", "") if sender is None else (sender.first_name, sender.last_name)


def message_fields(
    answer: Answer, target: Row, links: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The newMessage fields, in Planfix's order; `links` are (name, url) per file."""
    first_name, last_name = _names(answer.sender)
    fields = [
        ("cmd", "newMessage"),
        ("providerId", target["provider_id"]),
        ("chatId", target["key"]),
        ("token", target["provider_token"]),
        ("message", answer.text),
        ("messageId", str(answer.comment_id)),
        ("userName", first_name),
        ("userLastName", last_name),
        ("userIco", ""),
        ("taskEmail", ""),
    ]
    if target["message_type"]:
        fields.append(("channel", target["message_type"]))
    if target["phone"]:
        fields.append(("contactPhone", target["phone"]))
    for name, url in links:
        fields += [("attachments[name]", name), ("attachments[url]", url)]
    return fields


async def _links(tx: Tx, base_url: str, file_ids: Sequence[int]) -> list[tuple[str, str]]:
    if not file_ids:
        return []
    key = await file_links.signing_key(tx)
    links = []
    for file_id in file_ids:
        row = await tx.one(files.FILE_BY_ID, id=file_id)
        if row is not None:
            links.append((row["name"], file_links.signed_url(base_url, key, file_id)))
    return links


async def send_to_planfix(tx: Tx, answer: Answer) -> int:
    """Queue the answer for every Planfix chat of its task; returns how many were queued."""
    targets = await tx.all(TARGETS, task_id=answer.task_id)
    for target in targets:
        base_url = target["public_base_url"] or FALLBACK_BASE_URL
        fields = message_fields(answer, target, await _links(tx, base_url, answer.file_ids))
        await outbox.enqueue(
            tx,
            kind=PLANFIX_MESSAGE,
            url=target["provider_url"],
            body=urlencode(fields).encode(),
            ordering_key=ordering_key(target["integration_id"], target["key"]),
            content_type=outbox.FORM_TYPE,
        )
    return len(targets)
