"""Signed, expiring download links: how a chat provider fetches the files of an answer.

A Planfix provider gets attachments as URLs (spec.md §6.1) and has no credentials of ours, so
each URL carries its own permission: `/files/signed/{id}?expires=<unix time>&sig=<hex>`, the
signature an HMAC-SHA256 of the id and the expiry under a key only the server knows.

The key lives in the database (table server_keys), so every process on it (`serve` workers,
`frontdesk worker`, `frontdesk reply`) signs and checks alike, and it survives restarts. It is
generated on first use, or set from FRONTDESK_SECRET_KEY when the server starts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import files
from frontdesk.core.clock import utcnow
from frontdesk.core.credentials import same
from frontdesk.core.files import StoredFile
from frontdesk.errors import Forbidden, NotFound
from frontdesk.storage.sql import Query, Tx
from frontdesk.storage.tables import Timestamp, server_keys

KEY_NAME = "file_links"
#: long enough for an answer that waits out retries or is redelivered days later
LINK_LIFETIME = timedelta(days=7)
PATH = "/files/signed/"

KEY = Query(sa.select(server_keys.c.value).where(server_keys.c.name == p("name")))
_KEY_PARAMS = (
    sa.bindparam("name", type_=sa.String),
    sa.bindparam("value", type_=sa.String),
    sa.bindparam("now", type_=Timestamp),
)
# Two processes making the first key at once: one insert wins, both then read that one.
ADD_KEY = Query(
    sa.text(
        "INSERT INTO server_keys (name, value, created_at) VALUES (:name, :value, :now) "
        "ON CONFLICT (name) DO NOTHING"
    ).bindparams(*_KEY_PARAMS)
)
SET_KEY = Query(
    sa.text(
        "INSERT INTO server_keys (name, value, created_at) VALUES (:name, :value, :now) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
    ).bindparams(*_KEY_PARAMS)
)


async def stored_key(tx: Tx) -> str | None:
    row = await tx.one(KEY, name=KEY_NAME)
    return None if row is None else str(row["value"])


async def signing_key(tx: Tx) -> str:
    """The key, made now if there is none yet (a write: call it in a write unit)."""
    key = await stored_key(tx)
    if key is None:
        await tx.run(ADD_KEY, name=KEY_NAME, value=secrets.token_hex(32), now=utcnow())
        key = await stored_key(tx)
        assert key is not None
    return key


async def set_key(tx: Tx, key: str) -> None:
    """Sign with this key from now on (FRONTDESK_SECRET_KEY); earlier links stop working."""
    if await stored_key(tx) != key:
        await tx.run(SET_KEY, name=KEY_NAME, value=key, now=utcnow())


def signature(key: str, file_id: int, expires: int) -> str:
    return hmac.new(key.encode(), f"file:{file_id}:{expires}".encode(), hashlib.sha256).hexdigest()


def signed_url(base_url: str, key: str, file_id: int, now: datetime | None = None) -> str:
    expires = int(((now or utcnow()) + LINK_LIFETIME).timestamp())
    sig = signature(key, file_id, expires)
    return f"{base_url.rstrip('/')}{PATH}{file_id}?expires={expires}&sig={sig}"


def _refused() -> Forbidden:
    # one answer for a bad and an expired signature: nothing to learn by probing
    return Forbidden("access_denied_file", "This link is not valid or has expired")


async def file_for_link(tx: Tx, file_id: int, expires: int, sig: str) -> StoredFile:
    """The file a link names, if the link is genuine and has not expired."""
    key = await stored_key(tx)
    if key is None or expires < int(utcnow().timestamp()):
        raise _refused()
    if not same(signature(key, file_id, expires), sig.lower()):
        raise _refused()
    row = await tx.one(files.FILE_BY_ID, id=file_id)
    if row is None:
        raise NotFound("File not found", "file_is_missing")
    return StoredFile(
        row["id"], row["guid"], row["name"], row["size"], row["md5"], row["content_type"]
    )
