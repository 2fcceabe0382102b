"""Files: uploaded once (guid), attached to comments, downloaded by numeric id.

An upload belongs to whoever sent it: an extension (Extensions API v1) or a user (API v4).
Only its uploader may attach it by guid; who may download it is wider (see `file_for_*`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import access
from frontdesk.core.auth import ExtensionPrincipal, UserPrincipal, ensure_token_current
from frontdesk.core.clock import utcnow
from frontdesk.errors import NotFound
from frontdesk.storage.blobs import BlobStore, StoredBlob
from frontdesk.storage.database import Database
from frontdesk.storage.sql import Deferred, Query, Row, Tx
from frontdesk.storage.tables import (
    attachments,
    calls,
    comments,
    extension_accounts,
    files,
    tasks,
)

AUDIO_EXTENSIONS = ("ac3", "mp3", "ogg", "wav", "wma")


@dataclass(frozen=True)
class StoredFile:
    id: int
    guid: str
    name: str
    size: int
    md5: str
    content_type: str

    @property
    def extension(self) -> str:
        return self.name.rsplit(".", 1)[-1].lower() if "." in self.name else ""


@dataclass
class ResolvedFiles:
    ids: list[int] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


_FILE_COLUMNS = (
    files.c.id,
    files.c.guid,
    files.c.name,
    files.c.size,
    files.c.md5,
    files.c.content_type,
)
INSERT_FILE = Query(
    sa.insert(files)
    .values(
        guid=p("guid"),
        name=p("name"),
        size=p("size"),
        md5=p("md5"),
        content_type=p("content_type"),
        extension_id=p("extension_id"),
        user_id=p("user_id"),
        created_at=p("now"),
    )
    .returning(files.c.id)
)
EXTENSION_FILE_BY_GUID = Query(
    sa.select(*_FILE_COLUMNS).where(
        files.c.guid == p("guid"), files.c.extension_id == p("extension_id")
    )
)
USER_FILE_BY_GUID = Query(
    sa.select(*_FILE_COLUMNS).where(files.c.guid == p("guid"), files.c.user_id == p("user_id"))
)
FILE_BY_ID = Query(
    sa.select(*_FILE_COLUMNS, files.c.extension_id, files.c.user_id).where(files.c.id == p("id"))
)
# A file is the extension's when it uploaded it, or when it is attached to a comment in a task
# of one of its accounts that the extension saw: one that came in through an extension, or an
# answer sent out to the customer. Agents' internal comments stay inside.
FILE_IN_EXTENSION_TASK = Query(
    sa.select(attachments.c.file_id)
    .join(comments, comments.c.id == attachments.c.comment_id)
    .join(tasks, tasks.c.id == comments.c.task_id)
    .join(extension_accounts, extension_accounts.c.id == tasks.c.account_ref)
    .where(
        attachments.c.file_id == p("id"),
        extension_accounts.c.extension_id == p("extension_id"),
        sa.or_(comments.c.direction == "in", comments.c.send_to_external_channel.is_(True)),
    )
    .limit(1)
)
# The tasks that show a file: as a comment's attachment, or as a call's recording.
TASKS_SHOWING_FILE = Query(
    sa.select(tasks.c.id, tasks.c.form_id, tasks.c.author_id, tasks.c.responsible_id)
    .where(
        tasks.c.id.in_(
            sa.union(
                sa.select(comments.c.task_id)
                .join(attachments, attachments.c.comment_id == comments.c.id)
                .where(attachments.c.file_id == p("id")),
                sa.select(calls.c.task_id).where(calls.c.record_file_id == p("id")),
            )
        )
    )
    .order_by(tasks.c.id)
)
INSERT_ATTACHMENT = Query(
    sa.insert(attachments).values(
        comment_id=p("comment_id"), file_id=p("file_id"), position=p("position")
    )
)
_UNREFERENCED = (
    ~sa.exists().where(attachments.c.file_id == files.c.id),
    ~sa.exists().where(calls.c.record_file_id == files.c.id),
)
UNREFERENCED_BEFORE = Query(
    sa.select(files.c.id)
    .where(files.c.created_at < p("cutoff"), *_UNREFERENCED)
    .order_by(files.c.id)
    .limit(p("limit"))
)
# The check is repeated in the DELETE itself: a message may have attached the file since it
# was listed (and the foreign keys refuse the delete if that attachment commits meanwhile).
DELETE_IF_UNREFERENCED = Query(
    sa.delete(files).where(files.c.id == p("id"), *_UNREFERENCED).returning(files.c.guid)
)


async def register_file(
    tx: Tx,
    *,
    guid: str,
    name: str,
    size: int,
    md5: str,
    content_type: str,
    extension_id: int | None = None,
    user_id: int | None = None,
    token: ExtensionPrincipal | UserPrincipal | None = None,
) -> int:
    """A received file's row; `token`, the uploader's, must still be current: a rotation
    committed while the body was coming in refuses the file (its bytes are deleted)."""
    if token is not None:
        await ensure_token_current(tx, token)
    row = await tx.one(
        INSERT_FILE,
        guid=guid,
        name=name,
        size=size,
        md5=md5,
        content_type=content_type,
        extension_id=extension_id,
        user_id=user_id,
        now=utcnow(),
    )
    assert row is not None
    return int(row["id"])


async def keep_upload(
    db: Database,
    blobs: BlobStore,
    blob: StoredBlob,
    name: str,
    content_type: str,
    *,
    extension_id: int | None = None,
    user_id: int | None = None,
    token: ExtensionPrincipal | UserPrincipal | None = None,
) -> int:
    """Record a received blob as its uploader's file; bytes that no row records are deleted."""
    try:
        return await db.write(
            register_file,
            guid=blob.key,
            name=name,
            size=blob.size,
            md5=blob.md5,
            content_type=content_type,
            extension_id=extension_id,
            user_id=user_id,
            token=token,
        )
    except Exception:  # not on cancellation: the unit may still commit (storage.sqlite)
        blobs.delete(blob.key)
        raise


def _stored(row: Row) -> StoredFile:
    return StoredFile(
        row["id"], row["guid"], row["name"], row["size"], row["md5"], row["content_type"]
    )


def _normal_guid(guid: str) -> str:
    return guid.strip().lower()


async def extension_file(tx: Tx, extension_id: int, guid: str) -> StoredFile | None:
    row = await tx.one(EXTENSION_FILE_BY_GUID, guid=_normal_guid(guid), extension_id=extension_id)
    return None if row is None else _stored(row)


async def user_file(tx: Tx, user_id: int, guid: str) -> StoredFile | None:
    row = await tx.one(USER_FILE_BY_GUID, guid=_normal_guid(guid), user_id=user_id)
    return None if row is None else _stored(row)


async def _resolve(
    guids: Sequence[str], find: Callable[[str], Awaitable[StoredFile | None]]
) -> ResolvedFiles:
    resolved = ResolvedFiles()
    for guid in guids:
        found = await find(guid)
        if found is None:
            resolved.unknown.append(guid)
        elif found.id not in resolved.ids:
            resolved.ids.append(found.id)
    return resolved


async def resolve_guids(tx: Tx, extension_id: int, guids: Sequence[str]) -> ResolvedFiles:
    """The ids of files this extension uploaded, and the guids that match none."""
    return await _resolve(guids, lambda guid: extension_file(tx, extension_id, guid))


async def resolve_user_guids(tx: Tx, user_id: int, guids: Sequence[str]) -> ResolvedFiles:
    """The ids of files this user uploaded (API v4), and the guids that match none."""
    return await _resolve(guids, lambda guid: user_file(tx, user_id, guid))


def attach_later(tx: Tx, comment_id: int | Deferred, file_ids: Sequence[int]) -> None:
    for position, file_id in enumerate(file_ids):
        tx.defer(INSERT_ATTACHMENT, comment_id=comment_id, file_id=file_id, position=position)


def _missing() -> NotFound:
    # the same answer for a file that exists but is not the caller's: ids cannot be probed
    return NotFound("File not found", "file_is_missing")


async def _file_row(tx: Tx, file_id: int) -> Row:
    row = await tx.one(FILE_BY_ID, id=file_id)
    if row is None:
        raise _missing()
    return row


async def file_for_extension(tx: Tx, extension_id: int, file_id: int) -> StoredFile:
    """A file the extension may download: its own upload, or one in a task of its accounts."""
    row = await _file_row(tx, file_id)
    if (
        row["extension_id"] != extension_id
        and await tx.one(FILE_IN_EXTENSION_TASK, id=file_id, extension_id=extension_id) is None
    ):
        raise _missing()
    return _stored(row)


async def _shown_in_visible_task(tx: Tx, user_id: int, file_id: int) -> bool:
    for task in await tx.all(TASKS_SHOWING_FILE, id=file_id):
        if await access.may_see_task(
            tx,
            user_id,
            task["id"],
            form_id=task["form_id"],
            author_id=task["author_id"],
            responsible_id=task["responsible_id"],
        ):
            return True
    return False


async def file_for_user(tx: Tx, user_id: int, file_id: int) -> StoredFile:
    """A file the user may download: their own upload, or one that a task they may see shows
    (a comment's attachment, a call's recording)."""
    row = await _file_row(tx, file_id)
    if row["user_id"] != user_id and not await _shown_in_visible_task(tx, user_id, file_id):
        raise _missing()
    return _stored(row)


async def unreferenced_files(tx: Tx, cutoff: datetime, limit: int = 500) -> list[int]:
    """Files uploaded before `cutoff` that no comment or call uses."""
    return [row["id"] for row in await tx.all(UNREFERENCED_BEFORE, cutoff=cutoff, limit=limit)]


async def delete_if_unreferenced(tx: Tx, file_id: int) -> str | None:
    """Forget the file unless something uses it now; returns its guid if it was deleted."""
    row = await tx.one(DELETE_IF_UNREFERENCED, id=file_id)
    return None if row is None else str(row["guid"])
