"""A Planfix chat system's messages (cmd=newMessage) and task lookups (cmd=getTask).

A chat is a channel of kind "chat" that belongs to an integration instead of an extension
account: (integration, chatId) is its key, so one provider's chat ids never meet another's.
Messages go to the chat's task as the integration's routing says (ARCHITECTURE.md §2; the
same rules as core.channels, which is keyed by extension account). Files named by URL are
fetched afterwards (core.attachment_fetches): a message never waits for a download.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import attachment_fetches, planfix, users
from frontdesk.core import tasks as task_store
from frontdesk.core.attachment_fetches import RemoteFile
from frontdesk.core.comments import INBOUND, OUTBOUND, Formatted, NewComment, add_comment_later
from frontdesk.core.contacts import CONTACT_COLUMNS, Contact, keep_contact
from frontdesk.core.field_values import normalize
from frontdesk.core.forms import Form, fills_nothing, load_form
from frontdesk.core.intake import MAX_ATTACHMENTS, check_text_length
from frontdesk.errors import FrontdeskError, clip, required
from frontdesk.storage.sql import Deferred, Query, Row, Tx, id_of
from frontdesk.storage.tables import (
    channels,
    planfix_contacts,
    planfix_integrations,
    tasks,
)

CHANNEL_SENDER_LENGTH = 100  # channels.sender_name


@dataclass(slots=True)  # made per request (docs/decisions.md)
class PlanfixMessage:
    provider_id: str
    planfix_token: str
    chat_id: str
    text: str = ""
    #: the chat system's own channel name (`channel`): kept as the chat's message type
    channel: str | None = None
    title: str | None = None
    contact: Contact | None = None
    attachments: Sequence[RemoteFile] = ()
    #: written by the company in the chat system (isEcho), by `user_email`'s agent
    is_echo: bool = False
    user_email: str | None = None
    #: data_<name> values: (field name, value)
    data: Sequence[tuple[str, str]] = ()
    #: where the provider reached us: the base of the file links sent back to it
    base_url: str | None = None


@dataclass
class Received:
    task_id: int
    is_new_task: bool
    #: what was ignored, and why
    warnings: list[str] = field(default_factory=list)


_newest = channels.alias("newest")
_NEWEST_CHAT_ID = (
    sa.select(sa.func.max(_newest.c.id))
    .where(_newest.c.planfix_ref == planfix_integrations.c.id, _newest.c.key == p("chat_id"))
    .correlate(planfix_integrations)
    .scalar_subquery()
)
# The integration, its newest channel for the chat and the contact, in one query: a message
# needs all three, and on PostgreSQL every query is a round trip.
CHAT = Query(
    sa.select(
        planfix_integrations.c.id.label("integration_id"),
        planfix_integrations.c.token_hash,
        planfix_integrations.c.form_id,
        planfix_integrations.c.default_agent_id,
        planfix_integrations.c.routing,
        planfix_integrations.c.public_base_url,
        channels.c.id.label("channel_id"),
        channels.c.task_id,
        channels.c.chat_generation,
        tasks.c.closed_at,
        planfix_contacts.c.id.label("contact_ref"),
        *CONTACT_COLUMNS,
    )
    .select_from(
        planfix_integrations.outerjoin(channels, channels.c.id == _NEWEST_CHAT_ID)
        .outerjoin(tasks, tasks.c.id == channels.c.task_id)
        .outerjoin(
            planfix_contacts,
            sa.and_(
                planfix_contacts.c.planfix_ref == planfix_integrations.c.id,
                planfix_contacts.c.external_id == p("contact_id"),
            ),
        )
    )
    .where(planfix_integrations.c.provider_id == p("provider_id"))
)
# A chat's next task claims the next generation number: of two writers starting the same
# chat at once, one gets it and the other finds it taken and runs again (a claim, see
# Tx.defer), finding the first one's task. Cheaper than lock and re-read, which cost two
# round trips on PostgreSQL for every new chat.
INSERT_CHANNEL = Query(
    sa.insert(channels)
    .values(
        task_id=p("task_id"),
        planfix_ref=p("planfix_ref"),
        contact_ref=p("contact_ref"),
        kind="chat",
        key=p("chat_id"),
        chat_generation=p("generation"),
        message_type=p("message_type"),
        sender_name=p("sender_name"),
        created_at=p("now"),
    )
    .returning(channels.c.id)
)
CHAT_GENERATION = Query(
    sa.select(sa.func.max(channels.c.chat_generation).label("chat_generation")).where(
        channels.c.planfix_ref == p("planfix_ref"), channels.c.key == p("chat_id")
    )
)
SET_BASE_URL = Query(
    sa.update(planfix_integrations)
    .where(planfix_integrations.c.id == p("id"))
    .values(public_base_url=p("base_url"))
)


async def _chat(tx: Tx, provider_id: str, token: str, chat_id: str, contact_id: str | None) -> Row:
    """The integration's row with the chat's newest channel, if the token is its key."""
    row = await tx.one(CHAT, provider_id=provider_id, chat_id=chat_id, contact_id=contact_id)
    if row is None or not planfix.token_matches(token, row["token_hash"]):
        raise planfix.invalid_token()
    return row


async def task_of_chat(tx: Tx, provider_id: str, token: str, chat_id: str) -> int:
    """cmd=getTask: the chat's newest task, open or closed."""
    row = await _chat(tx, provider_id, token, chat_id, None)
    if row["task_id"] is None:
        raise FrontdeskError("task_not_found", "task not found")
    return int(row["task_id"])


@dataclass(slots=True)  # made per request (docs/decisions.md)
class _Routed:
    #: Deferred for a new chat task: its task and channel are deferred writes
    task_id: int | Deferred
    channel_id: int | Deferred
    is_new_task: bool


async def _reused(tx: Tx, routing: str, latest: Row | None) -> _Routed | None:
    """The chat's task if the routing keeps using it (reopening it if need be)."""
    if latest is None or latest["channel_id"] is None:
        return None
    if latest["closed_at"] is None:
        return _Routed(task_store.still_open(tx, latest["task_id"]), latest["channel_id"], False)
    if routing != "reopen_closed":
        return None
    await task_store.reopen(tx, latest["task_id"])
    return _Routed(latest["task_id"], latest["channel_id"], False)


def _subject(message: PlanfixMessage) -> str | None:
    """A new task's name: the title, else the contact, else the first line of the text."""
    for candidate in (message.title, message.contact and message.contact.display_name):
        if candidate and (subject := task_store.subject_from(candidate)):
            return subject
    return task_store.subject_from(message.text)


def _new_chat_task(
    tx: Tx, chat: Row, message: PlanfixMessage, contact_ref: int | None, generation: int
) -> _Routed:
    """A new task with the chat's next channel, as deferred writes; the unit runs again
    (LostRace) if another writer started it first."""
    name = message.contact.display_name if message.contact else None
    channel = {
        "planfix_ref": chat["integration_id"],
        "contact_ref": contact_ref,
        "chat_id": message.chat_id,
        "generation": generation + 1,
        "message_type": message.channel,
        "sender_name": name[:CHANNEL_SENDER_LENGTH] if name else None,
        "now": tx.now,
    }
    task = task_store.insert_task_later(
        tx, form_id=chat["form_id"], subject=_subject(message), responsible_id=None
    )
    return _Routed(task, tx.defer(INSERT_CHANNEL, claim=True, task_id=task, **channel), True)


async def _route(tx: Tx, chat: Row, message: PlanfixMessage, contact_ref: int | None) -> _Routed:
    routing = chat["routing"]
    generation = chat["chat_generation"] or 0
    if routing == "always_new":
        # every message claims the next generation: writers take turns (see channels.route)
        if await tx.lock("planfix chat", chat["integration_id"], message.chat_id):
            row = await tx.one(
                CHAT_GENERATION, planfix_ref=chat["integration_id"], chat_id=message.chat_id
            )
            generation = (row or {}).get("chat_generation") or 0
    elif (found := await _reused(tx, routing, chat)) is not None:
        return found
    return _new_chat_task(tx, chat, message, contact_ref, generation)


def _field_named(form: Form, name: str) -> tuple[int, str, tuple[str, ...]] | None:
    """The field a data_<name> value fills: by its name (Planfix's rule), else its code."""
    wanted = name.casefold()
    fields = form.fields.values()
    found = next((f for f in fields if f.name.casefold() == wanted), None) or next(
        (f for f in fields if f.code.casefold() == wanted), None
    )
    return None if found is None else (found.id, found.type, found.choices)


def _data_values(
    form: Form, data: Sequence[tuple[str, str]], warnings: list[str]
) -> dict[int, str]:
    values: dict[int, str] = {}
    for name, value in data:
        # (names and values clipped: 400 rejected values of 2,000 characters made the
        # answer 0.8 MB)
        target = _field_named(form, name)
        if target is None:
            warnings.append(f"data_{clip(name, 60)}: the form has no such field; ignored")
            continue
        if fills_nothing(value):
            continue
        field_id, field_type, choices = target
        normalized = normalize(field_type, value, choices)
        if normalized is None:
            shown = clip(value, 60)
            warnings.append(
                f"data_{clip(name, 60)}: {shown!r} does not fit a {field_type} field; ignored"
            )
            continue
        values[field_id] = normalized
    return values


async def _echo_author(tx: Tx, chat: Row, email: str | None) -> int | None:
    """Who wrote an echo: the agent with that e-mail, else the integration's default agent."""
    if email:
        row = await tx.one(users.USER_BY_EMAIL, email=email.strip().lower())
        if row is not None:
            return int(row["id"])
    default: int | None = chat["default_agent_id"]
    return default


def _kept_attachments(message: PlanfixMessage, warnings: list[str]) -> Sequence[RemoteFile]:
    kept = message.attachments
    if len(kept) > MAX_ATTACHMENTS:
        ignored = ", ".join(f.name for f in kept[MAX_ATTACHMENTS:])
        warnings.append(f"More than {MAX_ATTACHMENTS} attachments; ignored: {ignored}")
        kept = kept[:MAX_ATTACHMENTS]
    return kept


@dataclass(slots=True)  # made per request (docs/decisions.md)
class _Writer:
    """Who a message's comment is from: the customer, or (an echo) an agent."""

    direction: str
    author_id: int | None = None
    sender_name: str | None = None


async def _writer(tx: Tx, chat: Row, message: PlanfixMessage) -> _Writer:
    if not message.is_echo:
        contact = message.contact
        return _Writer(INBOUND, sender_name=contact.display_name if contact else None)
    author_id = await _echo_author(tx, chat, message.user_email)
    # an echo by nobody we know still says who wrote it
    return _Writer(OUTBOUND, author_id, message.user_email if author_id is None else None)


def _comment(tx: Tx, message: PlanfixMessage, routed: _Routed, writer: _Writer) -> Deferred:
    return add_comment_later(
        tx,
        NewComment(
            routed.task_id,
            Formatted(message.text),
            direction=writer.direction,
            channel_id=routed.channel_id,
            author_id=writer.author_id,
            sender_name=writer.sender_name,
            message_type=message.channel,
        ),
    )


async def receive_message(tx: Tx, message: PlanfixMessage) -> Received:
    """cmd=newMessage: the message into its chat's task, the contact kept, files queued."""
    check_text_length(message.text, name="message")
    if not (message.text or message.attachments):
        raise required("message")
    contact = message.contact
    chat = await _chat(
        tx,
        message.provider_id,
        message.planfix_token,
        message.chat_id,
        contact.external_id if contact else None,
    )
    contact_ref = None
    if contact is not None:
        stored = chat if chat["contact_ref"] is not None else None
        contact_ref = await keep_contact(tx, chat["integration_id"], contact, stored)
    if message.base_url and message.base_url != chat["public_base_url"]:
        await tx.run(SET_BASE_URL, id=chat["integration_id"], base_url=message.base_url)
    warnings: list[str] = []
    attachments = _kept_attachments(message, warnings)
    values: dict[int, str] = {}
    if message.data:
        values = _data_values(await load_form(tx, chat["form_id"]), message.data, warnings)
    writer = await _writer(tx, chat, message)
    # read before routing: the check that a reused task is still open goes out with the
    # writes (Tx.confirm), in one statement on PostgreSQL
    routed = await _route(tx, chat, message, contact_ref)
    task_store.set_values_later(tx, routed.task_id, values)
    comment = _comment(tx, message, routed, writer)
    if attachments:
        await tx.flush()
        await attachment_fetches.enqueue(tx, comment.value, attachments)
    # without attachments every write was deferred: on PostgreSQL, one statement
    await tx.flush(last=True)
    return Received(id_of(routed.task_id), routed.is_new_task, warnings)
