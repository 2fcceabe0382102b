"""Streaming a stored file back, with the headers Pyrus' clients read."""

from __future__ import annotations

from urllib.parse import quote

from frontdesk.core.files import StoredFile
from frontdesk.core.numbers import small_number
from frontdesk.errors import NotFound
from frontdesk.storage.blobs import BlobStore
from frontdesk.web.endpoints import Reply


def parse_file_id(raw: str) -> int:
    """A numeric file id from the path (ASCII digits only); anything else is not found."""
    if raw != raw.strip() or (file_id := small_number(raw)) is None:
        raise NotFound("File not found", "file_is_missing")
    return file_id


def content_disposition(name: str) -> str:
    """Both forms: `filename` (ASCII fallback) and RFC 5987 `filename*` (C# reads it first)."""
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
    ascii_name = ascii_name.replace("\\", "_").replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def file_reply(blobs: BlobStore, stored: StoredFile) -> Reply:
    path = blobs.path(stored.guid)
    if not path.is_file():
        raise NotFound("File not found", "file_is_missing")
    return Reply(file=path, headers={"Content-Disposition": content_disposition(stored.name)})
