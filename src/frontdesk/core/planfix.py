"""Planfix chat integrations: a chat system that posts to /webchat/api under a providerId.

An integration holds two keys (spec.md §1.3): the `planfix_token` the chat system sends us,
kept only as its SHA-256 and shown once when made, and the provider's own key, which every
answer we send it carries (`token`), so it is kept as given. Its chats become tasks in its
form, routed as an extension account's are (ARCHITECTURE.md §2).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import forms, outbox_admin, users
from frontdesk.core.clock import utcnow
from frontdesk.core.credentials import same, token_hash
from frontdesk.core.extensions import ROUTINGS, SetUrl
from frontdesk.core.planfix_answers import ordering_key
from frontdesk.errors import FrontdeskError, NotFound, Unauthorized
from frontdesk.storage.sql import Query, Row, Tx
from frontdesk.storage.tables import planfix_integrations

PROVIDER_ID_LENGTH = 200
#: Planfix reserves "~" in providerId (it joins providerId and chatId, spec.md §7.19)
RESERVED = "~"


@dataclass(frozen=True)
class NewIntegration:
    integration_id: int
    provider_id: str
    #: the key the chat system sends; only its hash is kept, so this is its one showing
    planfix_token: str
    form_id: int


INSERT_INTEGRATION = Query(
    sa.insert(planfix_integrations)
    .values(
        provider_id=p("provider_id"),
        token_hash=p("token_hash"),
        provider_url=p("provider_url"),
        provider_token=p("provider_token"),
        form_id=p("form_id"),
        default_agent_id=p("default_agent_id"),
        routing=p("routing"),
        created_at=p("now"),
    )
    .returning(planfix_integrations.c.id)
)
INTEGRATION_BY_PROVIDER = Query(
    sa.select(planfix_integrations.c.id).where(
        planfix_integrations.c.provider_id == p("provider_id")
    )
)
KEY_OF_PROVIDER = Query(
    sa.select(planfix_integrations.c.token_hash).where(
        planfix_integrations.c.provider_id == p("provider_id")
    )
)
LISTED = Query(
    sa.select(
        planfix_integrations.c.id,
        planfix_integrations.c.provider_id,
        planfix_integrations.c.provider_url,
        planfix_integrations.c.form_id,
        planfix_integrations.c.default_agent_id,
        planfix_integrations.c.routing,
        planfix_integrations.c.public_base_url,
        planfix_integrations.c.created_at,
    ).order_by(planfix_integrations.c.id)
)
SET_PROVIDER_URL = Query(
    sa.update(planfix_integrations)
    .where(planfix_integrations.c.provider_id == p("provider_id"))
    .values(provider_url=p("provider_url"))
)
ROTATE_TOKEN = Query(
    sa.update(planfix_integrations)
    .where(planfix_integrations.c.provider_id == p("provider_id"))
    .values(token_hash=p("token_hash"))
)


def new_planfix_token() -> str:
    """32 hex characters, the shape of the keys Planfix shows (303cb962ac59075b964b…)."""
    return secrets.token_hex(16)


def token_matches(presented: str, stored_hash: str) -> bool:
    """Whether the presented key is the integration's; constant-time (hashes of one length)."""
    return same(token_hash(presented), stored_hash)


def invalid_token() -> Unauthorized:
    return Unauthorized("invalid_token", "Invalid token")


async def check_key(tx: Tx, provider_id: str, token: str) -> None:
    """The key is the integration's (for a request refused before its own query checks it).
    A provider id with NUL names no integration (and PostgreSQL text cannot hold it)."""
    if "\x00" in provider_id:
        raise invalid_token()
    row = await tx.one(KEY_OF_PROVIDER, provider_id=provider_id)
    if row is None or not token_matches(token, row["token_hash"]):
        raise invalid_token()


def check_provider_id(provider_id: str) -> None:
    if not provider_id or len(provider_id) > PROVIDER_ID_LENGTH:
        raise FrontdeskError(
            "validation_error", f"providerId must be 1 to {PROVIDER_ID_LENGTH} characters"
        )
    if RESERVED in provider_id:
        raise FrontdeskError("validation_error", f"providerId must not contain {RESERVED!r}")


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise FrontdeskError("validation_error", f"Not an http(s) URL: {url!r}")


async def _agent_id(tx: Tx, email: str | None) -> int | None:
    if not email:
        return None
    row = await tx.one(users.USER_BY_EMAIL, email=email.strip().lower())
    if row is None:
        raise NotFound(f"No user with e-mail {email}")
    return int(row["id"])


async def _form_id(tx: Tx, form_id: int | None, provider_id: str) -> int:
    """The given form (it must exist), or a new empty one for this provider's chats."""
    if form_id is None:
        return await forms.add_form(tx, f"Planfix chats: {provider_id}", ())
    await forms.load_form(tx, form_id)  # NotFound when there is none
    return form_id


async def add_integration(
    tx: Tx,
    provider_id: str,
    provider_url: str | None,
    provider_token: str,
    *,
    form_id: int | None = None,
    default_agent_email: str | None = None,
    routing: str = "reuse_open",
    planfix_token: str | None = None,
) -> NewIntegration:
    """A chat system allowed to post under `provider_id`; answers go to `provider_url`."""
    check_provider_id(provider_id)
    if provider_url is not None:
        check_url(provider_url)
    if routing not in ROUTINGS:
        raise FrontdeskError("validation_error", f"routing must be one of {', '.join(ROUTINGS)}")
    if await tx.one(INTEGRATION_BY_PROVIDER, provider_id=provider_id) is not None:
        raise FrontdeskError("conflict", f"Provider {provider_id!r} already exists", 409)
    planfix_token = planfix_token or new_planfix_token()
    target_form = await _form_id(tx, form_id, provider_id)
    row = await tx.one(
        INSERT_INTEGRATION,
        provider_id=provider_id,
        token_hash=token_hash(planfix_token),
        provider_url=provider_url,
        provider_token=provider_token,
        form_id=target_form,
        default_agent_id=await _agent_id(tx, default_agent_email),
        routing=routing,
        now=utcnow(),
    )
    assert row is not None
    return NewIntegration(int(row["id"]), provider_id, planfix_token, target_form)


async def integration_exists(tx: Tx, provider_id: str) -> bool:
    return await tx.one(INTEGRATION_BY_PROVIDER, provider_id=provider_id) is not None


async def list_integrations(tx: Tx) -> list[Row]:
    """Every integration, without its keys."""
    return await tx.all(LISTED)


async def rotate_token(tx: Tx, provider_id: str) -> str:
    """A new planfix_token; the old one stops working at once (it is checked on every call)."""
    planfix_token = new_planfix_token()
    hashed = token_hash(planfix_token)
    if not await tx.run(ROTATE_TOKEN, provider_id=provider_id, token_hash=hashed):
        raise NotFound(f"No Planfix provider {provider_id!r}")
    return planfix_token


async def set_url(tx: Tx, provider_id: str, provider_url: str) -> SetUrl:
    """Where agents' answers to this chat system go from now on; its answers not sent yet
    (dead ones too, for a redeliver) go there too."""
    check_url(provider_url)
    row = await tx.one(INTEGRATION_BY_PROVIDER, provider_id=provider_id)
    if row is None:
        raise NotFound(f"No Planfix provider {provider_id!r}")
    await tx.run(SET_PROVIDER_URL, provider_id=provider_id, provider_url=provider_url)
    prefix = ordering_key(int(row["id"]), "")
    moved = await tx.run(outbox_admin.SET_URL_OF_KEYS, key_prefix=prefix, url=provider_url)
    return SetUrl(provider_url, moved)
