"""Access tokens: issued for a credential pair, checked on every call.

A token is random and stored only as its SHA-256. It records the credential generation it was
issued under (the extension's secret generation); a newer generation revokes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core.clock import utcnow
from frontdesk.core.credentials import new_secret, same, token_hash
from frontdesk.errors import Unauthorized
from frontdesk.storage.sql import Query, Tx
from frontdesk.storage.tables import access_tokens, extensions


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class ExtensionPrincipal:
    """The extension a request was authenticated as."""

    extension_id: int


EXTENSION_BY_CLIENT_ID = Query(
    sa.select(extensions.c.id, extensions.c.secret, extensions.c.secret_generation).where(
        extensions.c.client_id == p("client_id")
    )
)
INSERT_TOKEN = Query(
    sa.insert(access_tokens).values(
        token_hash=p("token_hash"),
        extension_id=p("extension_id"),
        user_id=p("user_id"),
        generation=p("generation"),
        expires_at=p("expires_at"),
        created_at=p("now"),
    )
)
EXTENSION_TOKEN = Query(
    sa.select(
        access_tokens.c.extension_id,
        access_tokens.c.generation,
        access_tokens.c.expires_at,
        extensions.c.secret_generation,
    )
    .join(extensions, extensions.c.id == access_tokens.c.extension_id)
    .where(access_tokens.c.token_hash == p("token_hash"))
)
DELETE_EXPIRED = Query(sa.delete(access_tokens).where(access_tokens.c.expires_at < p("cutoff")))


async def _insert_token(
    tx: Tx,
    ttl: timedelta,
    generation: int,
    *,
    extension_id: int | None = None,
    user_id: int | None = None,
) -> IssuedToken:
    token = new_secret(32)
    now = utcnow()
    await tx.run(
        INSERT_TOKEN,
        token_hash=token_hash(token),
        extension_id=extension_id,
        user_id=user_id,
        generation=generation,
        expires_at=now + ttl,
        now=now,
    )
    return IssuedToken(token, now + ttl)


async def issue_extension_token(tx: Tx, client_id: str, secret: str, ttl: timedelta) -> IssuedToken:
    row = await tx.one(EXTENSION_BY_CLIENT_ID, client_id=client_id)
    if row is None or not same(row["secret"], secret):
        raise Unauthorized("authorization_error", "Invalid client_id or secret")
    return await _insert_token(tx, ttl, row["secret_generation"], extension_id=row["id"])


def _check_lifetime(generation: int, current_generation: int, expires_at: datetime) -> None:
    if generation < current_generation:
        raise Unauthorized("revoked_token", "The token was revoked; request a new one")
    if expires_at <= utcnow():
        raise Unauthorized("expired_token", "The token has expired; request a new one")


async def check_extension_token(tx: Tx, token: str) -> ExtensionPrincipal:
    row = await tx.one(EXTENSION_TOKEN, token_hash=token_hash(token))
    if row is None:
        raise Unauthorized("invalid_token", "The access token is not valid")
    _check_lifetime(row["generation"], row["secret_generation"], row["expires_at"])
    return ExtensionPrincipal(row["extension_id"])


async def delete_expired_tokens(tx: Tx, older_than: timedelta) -> int:
    """Forget tokens that expired long ago (recently expired ones still answer expired_token)."""
    return await tx.run(DELETE_EXPIRED, cutoff=utcnow() - older_than)
