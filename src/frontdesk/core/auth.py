"""Access tokens: issued for a credential pair, checked on every call.

A token is random and stored only as its SHA-256. It belongs to an extension (Extensions API
v1: client_id + secret) or to a user (API v4: login + security key), and records the credential
generation it was issued under (the extension's secret generation, the user's key
generation); a newer generation revokes it.

A token's row never changes once written, so each process remembers the rows it has looked
up (in the database's memo) and a known token costs no query. Whether the token was revoked
since is read fresh on every call, from the extension's current generation, inside the unit of
work that does the call's work (`ensure_current`, `extensions.active_account`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core.clock import utcnow
from frontdesk.core.credentials import new_secret, same, token_hash
from frontdesk.errors import Unauthorized
from frontdesk.storage.database import Database
from frontdesk.storage.sql import Query, Tx
from frontdesk.storage.tables import access_tokens, extensions, users


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


@dataclass(frozen=True)
class UserPrincipal:
    """The user a v4 request was authenticated as, and the token's own facts."""

    user_id: int
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
USER_BY_LOGIN = Query(
    sa.select(users.c.id, users.c.security_key_hash, users.c.key_generation).where(
        users.c.email == p("email")
    )
)
USER_TOKEN = Query(
    sa.select(
        access_tokens.c.user_id, access_tokens.c.generation, access_tokens.c.expires_at
    ).where(access_tokens.c.token_hash == p("token_hash"), access_tokens.c.user_id.is_not(None))
)
USER_GENERATION = Query(sa.select(users.c.key_generation).where(users.c.id == p("id")))
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


async def _extension_token(tx: Tx, digest: str) -> ExtensionPrincipal | None:
    row = await tx.one(EXTENSION_TOKEN, token_hash=digest)
    return None if row is None else ExtensionPrincipal(**row)


async def _user_token(tx: Tx, digest: str) -> UserPrincipal | None:
    row = await tx.one(USER_TOKEN, token_hash=digest)
    return None if row is None else UserPrincipal(**row)


P = TypeVar("P", ExtensionPrincipal, UserPrincipal)


async def _authenticate(
    db: Database, token: str, kind: str, read: Callable[[Tx, str], Awaitable[P | None]]
) -> P:
    # keyed by the token itself: a known token then costs no hashing either
    known: dict[str, P] = db.memo.setdefault(f"{kind}_tokens", {})
    principal = known.get(token)
    if principal is None:
        principal = await db.read(read, token_hash(token))
        if principal is None:
            raise Unauthorized("invalid_token", "The access token is not valid")
        if len(known) >= TOKEN_MEMO_LIMIT:
            known.clear()
        known[token] = principal
    if principal.expires_at <= utcnow():
        raise Unauthorized("expired_token", "The token has expired; request a new one")
    return principal


async def authenticate_extension(db: Database, token: str) -> ExtensionPrincipal:
    """The extension a bearer token belongs to, if the token exists and is in date."""
    return await _authenticate(db, token, "extension", _extension_token)


# --- users (API v4) ---------------------------------------------------------------------


async def issue_user_token(
    tx: Tx, login: str, security_key: str, ttl: timedelta, person_id: int | None = None
) -> IssuedToken:
    """A token for the user whose e-mail is `login`; `person_id`, when sent, must be theirs."""
    row = await tx.one(USER_BY_LOGIN, email=login.strip().lower())
    # hash and compare even for an unknown login: the answer takes as long either way
    presented = token_hash(security_key)
    if (
        row is None
        or not same(row["security_key_hash"], presented)
        or (person_id is not None and person_id != row["id"])
    ):
        raise Unauthorized("invalid_credentials", "Invalid login/security key")
    return await _insert_token(tx, ttl, row["key_generation"], user_id=row["id"])


async def authenticate_user(db: Database, token: str) -> UserPrincipal:
    """The user a bearer token belongs to, if the token exists and is in date."""
    return await _authenticate(db, token, "user", _user_token)


async def ensure_current_user(tx: Tx, principal: UserPrincipal) -> None:
    """The token was not revoked by a new security key (read fresh, in the caller's unit)."""
    row = await tx.one(USER_GENERATION, id=principal.user_id)
    check_user_generation(principal, None if row is None else row["key_generation"])


async def ensure_token_current(tx: Tx, principal: ExtensionPrincipal | UserPrincipal) -> None:
    """Either kind of token was not revoked (for work that names no account)."""
    if isinstance(principal, ExtensionPrincipal):
        await ensure_current(tx, principal)
    else:
        await ensure_current_user(tx, principal)


def check_user_generation(principal: UserPrincipal, current_generation: int | None) -> None:
    """Refuse a token of a deleted user (None) or issued before the key was last changed."""
    if current_generation is None:
        raise Unauthorized("invalid_token", "The access token is not valid")
    if principal.generation < current_generation:
        raise Unauthorized("revoked_token", "The token was revoked; request a new one")


async def delete_expired_tokens(tx: Tx, older_than: timedelta) -> int:
    """Forget tokens that expired long ago (recently expired ones still answer expired_token)."""
    return await tx.run(DELETE_EXPIRED, cutoff=utcnow() - older_than)
