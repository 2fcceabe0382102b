"""POST /v4/files/upload and the three download paths Pyrus' clients use (spec.md §4.4).

`files_url` is the server's root, so: aiopyrus downloads `{files_url}files/download/{id}`,
the official Python client `{files_url}services/attachment?Id={id}`, the TypeScript client
`{files_url}v4/files/download/{id}`. Uploads go to `{api_url}files/upload`.

A user may download what they uploaded, and any file a task they may see shows (a comment's
attachment, a call's recording); any other id is 404, as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Callable

from frontdesk.core import auth, files
from frontdesk.core.auth import UserPrincipal
from frontdesk.core.files import StoredFile
from frontdesk.protocols.pyrus_v4.common import endpoint, user_method
from frontdesk.storage.sql import Tx
from frontdesk.web.downloads import file_reply, parse_file_id
from frontdesk.web.endpoints import Call, Handler, Reply
from frontdesk.web.uploads import store_upload


async def upload(call: Call, principal: UserPrincipal) -> Reply:
    """One file, the first file part whatever its name, streamed to disk with its MD5."""
    ctx = call.ctx
    # before the body: a revoked token must not get to send two gigabytes first
    await ctx.db.read(auth.ensure_current_user, principal)
    return await store_upload(call, principal)


async def _visible_file(tx: Tx, principal: UserPrincipal, file_id: int) -> StoredFile:
    await auth.ensure_current_user(tx, principal)
    return await files.file_for_user(tx, principal.user_id, file_id)


def download_by(raw_file_id: Callable[[Call], str]) -> Handler:
    """A download method; `raw_file_id` finds the id in the request (path or query)."""

    async def download(call: Call, principal: UserPrincipal) -> Reply:
        file_id = parse_file_id(raw_file_id(call))
        stored = await call.ctx.db.read(_visible_file, principal, file_id)
        return file_reply(call.ctx.blobs, stored)

    return user_method(download)


def _path_id(call: Call) -> str:
    return call.path_param("file_id")


def _query_id(call: Call) -> str:
    # the official client sends `Id`; a hand-written URL may well say `id`
    query = call.query()
    return query.get("Id") or query.get("id") or ""


DOWNLOAD = "Download a file by its numeric id"
GET = ("GET",)
ENDPOINTS = (
    endpoint("/v4/files/upload", user_method(upload), "Upload one file (multipart/form-data)"),
    endpoint("/v4/files/download/{file_id:path}", download_by(_path_id), DOWNLOAD, methods=GET),
    endpoint("/files/download/{file_id:path}", download_by(_path_id), DOWNLOAD, methods=GET),
    endpoint("/services/attachment", download_by(_query_id), f"{DOWNLOAD} (?Id=)", methods=GET),
)
