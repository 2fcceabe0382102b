"""Extensions (a connector's identity: client_id + secret) and their accounts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import outbox_admin
from frontdesk.core.auth import (
    ExtensionPrincipal,
    UserPrincipal,
    check_generation,
    check_user_generation,
    ensure_current,
)
from frontdesk.core.clock import utcnow
from frontdesk.core.credentials import new_secret
from frontdesk.errors import FrontdeskError, NotFound
from frontdesk.storage.sql import Query, Row, Tx
from frontdesk.storage.tables import extension_accounts, extensions, forms, users

ROUTINGS = ("reuse_open", "always_new", "reopen_closed")


@dataclass(frozen=True)
class NewExtension:
    extension_id: int
    client_id: str
    secret: str


@dataclass(slots=True)  # made per request (docs/decisions.md)
class Account:
    """An extension account: where an extension's messages and calls land."""

    id: int
    account_id: str
    name: str
    form_id: int
    enabled: bool
    routing: str
    extension_id: int


INSERT_EXTENSION = Query(
    sa.insert(extensions)
    .values(
        name=p("name"),
        client_id=p("client_id"),
        secret=p("secret"),
        secret_generation=1,
        base_url=p("base_url"),
        created_at=p("now"),
    )
    .returning(extensions.c.id)
)
SET_EXTENSION_URL = Query(
    sa.update(extensions).where(extensions.c.id == p("id")).values(base_url=p("base_url"))
)
ROTATE_SECRET = Query(
    sa.update(extensions)
    .where(extensions.c.id == p("id"))
    .values(secret=p("secret"), secret_generation=extensions.c.secret_generation + 1)
)
EXTENSION_BY_ID = Query(sa.select(extensions).where(extensions.c.id == p("id")))
FORM_EXISTS = Query(sa.select(forms.c.id).where(forms.c.id == p("id")))
INSERT_ACCOUNT = Query(
    sa.insert(extension_accounts)
    .values(
        extension_id=p("extension_id"),
        account_id=p("account_id"),
        name=p("name"),
        form_id=p("form_id"),
        enabled=True,
        routing=p("routing"),
        created_at=p("now"),
    )
    .returning(extension_accounts.c.id)
)
ACCOUNT_COLUMNS = (
    extension_accounts.c.id,
    extension_accounts.c.account_id,
    extension_accounts.c.name,
    extension_accounts.c.form_id,
    extension_accounts.c.enabled,
    extension_accounts.c.routing,
    extension_accounts.c.extension_id,
)
_ACCOUNT_FIELDS = tuple(column.name for column in ACCOUNT_COLUMNS)
ACCOUNT = Query(
    sa.select(*ACCOUNT_COLUMNS, extensions.c.secret_generation)
    .join(extensions, extensions.c.id == extension_accounts.c.extension_id)
    .where(
        extension_accounts.c.extension_id == p("extension_id"),
        extension_accounts.c.account_id == p("account_id"),
    )
)
ACCOUNT_BY_REF = Query(sa.select(*ACCOUNT_COLUMNS).where(extension_accounts.c.id == p("id")))
SET_ENABLED = Query(
    sa.update(extension_accounts)
    .where(
        extension_accounts.c.extension_id == p("extension_id"),
        extension_accounts.c.account_id == p("account_id"),
    )
    .values(enabled=p("enabled"))
)


@dataclass(frozen=True)
class SetUrl:
    url: str
    #: deliveries not sent yet that now go to the new address
    repointed: int


#: a base URL with room for the longest method name after it (deliveries.url: 2,000)
BASE_URL_LENGTH = 1900


def checked_base_url(url: str) -> str:
    """The extension service's address: webhooks are sent to <url>/sendmessage and so on."""
    url = url.strip()
    if len(url) > BASE_URL_LENGTH:
        raise FrontdeskError("validation_error", f"The URL is over {BASE_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        valid = False
    if not valid or any(c.isspace() for c in url):
        raise FrontdeskError("validation_error", f"Not an http(s) URL: {url!r}")
    return url


async def add_extension(
    tx: Tx,
    name: str,
    base_url: str | None = None,
    *,
    client_id: str | None = None,
    secret: str | None = None,
) -> NewExtension:
    if base_url is not None:
        base_url = checked_base_url(base_url)
    client_id = client_id or f"ext@{uuid.uuid4()}"
    secret = secret or new_secret()
    row = await tx.one(
        INSERT_EXTENSION,
        name=name,
        client_id=client_id,
        secret=secret,
        base_url=base_url,
        now=utcnow(),
    )
    assert row is not None
    return NewExtension(row["id"], client_id, secret)


async def get_extension(tx: Tx, extension_id: int) -> dict[str, object]:
    row = await tx.one(EXTENSION_BY_ID, id=extension_id)
    if row is None:
        raise NotFound(f"No extension {extension_id}")
    return row


async def set_base_url(tx: Tx, extension_id: int, base_url: str) -> SetUrl:
    """Where the extension's webhooks go from now on; its deliveries not sent yet (dead ones
    too, for a redeliver) go to the new address too."""
    url = checked_base_url(base_url)
    old = (await get_extension(tx, extension_id))["base_url"]
    await tx.run(SET_EXTENSION_URL, id=extension_id, base_url=url)
    moved = 0
    if old:
        unsent = await tx.all(outbox_admin.UNSENT_OF_EXTENSION, extension_id=extension_id)
        moved = await outbox_admin.repoint(tx, unsent, str(old), url)
    return SetUrl(url, moved)


async def rotate_secret(tx: Tx, extension_id: int) -> str:
    """Give the extension a new secret; every token issued before is revoked."""
    secret = new_secret()
    if not await tx.run(ROTATE_SECRET, id=extension_id, secret=secret):
        raise NotFound(f"No extension {extension_id}")
    return secret


async def add_account(
    tx: Tx,
    extension_id: int,
    account_id: str,
    form_id: int,
    *,
    name: str | None = None,
    routing: str = "reuse_open",
) -> Account:
    if routing not in ROUTINGS:
        raise FrontdeskError("validation_error", f"routing must be one of {', '.join(ROUTINGS)}")
    await get_extension(tx, extension_id)
    if await tx.one(FORM_EXISTS, id=form_id) is None:
        raise NotFound(f"No form {form_id}")
    if await tx.one(ACCOUNT, extension_id=extension_id, account_id=account_id) is not None:
        raise FrontdeskError("conflict", f"Account {account_id!r} already exists", 409)
    row = await tx.one(
        INSERT_ACCOUNT,
        extension_id=extension_id,
        account_id=account_id,
        name=name or account_id,
        form_id=form_id,
        routing=routing,
        now=utcnow(),
    )
    assert row is not None
    return Account(row["id"], account_id, name or account_id, form_id, True, routing, extension_id)


async def active_account(tx: Tx, principal: ExtensionPrincipal, account_id: str) -> Account:
    """The account messages and calls go to, or the error Pyrus answers when there is none."""
    row = await tx.one(ACCOUNT, extension_id=principal.extension_id, account_id=account_id)
    return await usable_account(tx, principal, account_id, row)


async def usable_account(
    tx: Tx, principal: ExtensionPrincipal, account_id: str, row: dict[str, Any] | None
) -> Account:
    """The account of a row read with ACCOUNT_COLUMNS and the secret generation, if usable.

    Also where a revoked token is caught: the extension's current secret generation comes
    with the account, in the same query.
    """
    if row is None:
        await ensure_current(tx, principal)
        raise FrontdeskError(
            "unrecognized_account_id",
            f"Account {account_id!r} is not registered for this extension; message not processed",
        )
    check_generation(principal, row["secret_generation"])
    account = Account(
        row["id"],
        row["account_id"],
        row["name"],
        row["form_id"],
        row["enabled"],
        row["routing"],
        row["extension_id"],
    )
    return ensure_enabled(account)


# An account named only by its account_id, in whichever extension has it (API v4: a user's
# token names no extension). Only (extension, account_id) is unique, so several extensions may
# have an account of that id: the oldest one is taken, always. That keeps the choice stable
# (adding an extension never moves where an existing account's calls land) and makes a
# disabled account answer webhook_is_disabled rather than quietly sending its calls elsewhere.
# The calling user's key generation comes in the same query (a round trip less per v4 call):
# one row, the account's columns NULL when there is no such account.
ACCOUNT_NAMED_FOR_USER = Query(
    sa.select(users.c.key_generation, *ACCOUNT_COLUMNS)
    .select_from(
        users.outerjoin(extension_accounts, extension_accounts.c.account_id == p("account_id"))
    )
    .where(users.c.id == p("user_id"))
    .order_by(extension_accounts.c.id)
    .limit(1)
)


async def account_named_for(tx: Tx, principal: UserPrincipal, account_id: str) -> Account:
    """The account of that account_id in any extension (ACCOUNT_NAMED_FOR_USER), if usable;
    the user's token is checked for revocation first, in the same query."""
    row = await tx.one(ACCOUNT_NAMED_FOR_USER, user_id=principal.user_id, account_id=account_id)
    return user_account(principal, account_id, row)


def user_account(principal: UserPrincipal, account_id: str, row: Row | None) -> Account:
    """The account in a row read as ACCOUNT_NAMED_FOR_USER reads it (the user's key
    generation, then the account's columns, NULL when there is none), if usable."""
    check_user_generation(principal, None if row is None else row["key_generation"])
    assert row is not None
    if row["id"] is None:
        raise _unregistered(account_id)
    return ensure_enabled(Account(**{k: row[k] for k in _ACCOUNT_FIELDS}))


def _unregistered(account_id: str) -> FrontdeskError:
    return FrontdeskError(
        "unrecognized_account_id",
        f"Account {account_id!r} is not registered; request not processed",
    )


async def account_by_ref(tx: Tx, account_ref: int) -> Account:
    row = await tx.one(ACCOUNT_BY_REF, id=account_ref)
    if row is None:
        raise NotFound(f"No account {account_ref}")
    return Account(**row)


def ensure_enabled(account: Account) -> Account:
    if not account.enabled:
        raise FrontdeskError(
            "webhook_is_disabled",
            f"Account {account.account_id!r} is disabled; message not processed",
        )
    return account


async def set_account_enabled(tx: Tx, extension_id: int, account_id: str, enabled: bool) -> None:
    if not await tx.run(
        SET_ENABLED, extension_id=extension_id, account_id=account_id, enabled=enabled
    ):
        raise NotFound(f"No account {account_id!r} in extension {extension_id}")
