"""Access tokens: issued for a credential pair, checked on every call.

A token is random and stored only as its SHA-256. It records the credential generation it was
issued under (the extension's secret generation); a newer generation revokes it.

A token's row never changes once written, so each process remembers the rows it has looked
up (in the database's memo) and a known token costs no query. Whether the token was revoked
since is read fresh on every call, from the extension's current generation, inside the unit of
work that does the call's work (`ensure_current`, `extensions.active_account`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core.clock import utcnow
from frontdesk.core.credentials import new_secret, same, token_hash
from frontdesk.errors import Unauthorized
from frontdesk.storage.database import Database
from frontdesk.storage.sql import Query, Tx
from frontdesk.storage.tables import access_tokens, extensions


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class ExtensionPrincipal:
    """The extension a request was authenticated as, and the token's own facts."""

    extension_id: int
    generation: int
    expires_at: datetime


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
        access_tokens.c.extension_id, access_tokens.c.generation, access_tokens.c.expires_at
    ).where(
        access_tokens.c.token_hash == p("token_hash"), access_tokens.c.extension_id.is_not(None)
    )
)
EXTENSION_GENERATION = Query(
    sa.select(extensions.c.secret_generation).where(extensions.c.id == p("id"))
)
#: remembered token rows per process; past this many the memo starts afresh
TOKEN_MEMO_LIMIT = 50_000
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


def check_generation(principal: ExtensionPrincipal, current_generation: int) -> None:
    """Refuse a token issued before the extension's secret was last rotated."""
    if principal.generation < current_generation:
        raise Unauthorized("revoked_token", "The token was revoked; request a new one")


async def ensure_current(tx: Tx, principal: ExtensionPrincipal) -> None:
    """The token was not revoked (for calls that look up no account)."""
    row = await tx.one(EXTENSION_GENERATION, id=principal.extension_id)
    if row is None:
        raise Unauthorized("invalid_token", "The access token is not valid")
    check_generation(principal, row["secret_generation"])


async def _token_row(tx: Tx, digest: str) -> ExtensionPrincipal | None:
    row = await tx.one(EXTENSION_TOKEN, token_hash=digest)
    return None if row is None else ExtensionPrincipal(**row)


async def authenticate_extension(db: Database, token: str) -> ExtensionPrincipal:
    """The extension a bearer token belongs to, if the token exists and is in date."""
    # keyed by the token itself: a known token then costs no hashing either
    known: dict[str, ExtensionPrincipal] = db.memo.setdefault("extension_tokens", {})
    principal = known.get(token)
    if principal is None:
        principal = await db.read(_token_row, token_hash(token))
        if principal is None:
            raise Unauthorized("invalid_token", "The access token is not valid")
        if len(known) >= TOKEN_MEMO_LIMIT:
            known.clear()
        known[token] = principal
    if principal.expires_at <= utcnow():
        raise Unauthorized("expired_token", "The token has expired; request a new one")
    return principal


async def delete_expired_tokens(tx: Tx, older_than: timedelta) -> int:
    """Forget tokens that expired long ago (recently expired ones still answer expired_token)."""
    return await tx.run(DELETE_EXPIRED, cutoff=utcnow() - older_than)
