"""Receiving one file from a multipart/form-data stream, written to disk as it arrives.

The first part that carries a filename is the file, whatever its field name (Pyrus' own
clients name it `file` or after the file). Other parts are read past and dropped. The size cap
is checked on every chunk, so an oversized upload is refused without ever being held whole.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.header import decode_header, make_header
from urllib.parse import unquote

import multipart

from frontdesk.core import files, intake
from frontdesk.errors import FrontdeskError, TooLarge
from frontdesk.storage.blobs import BlobStore, BlobWriter, StoredBlob
from frontdesk.web.endpoints import Call, Reply
from frontdesk.web.responses import ok

MAX_NAME_LENGTH = 255
# Control characters; the bidirectional overrides and isolates, which make "photo\u202egpj.exe"
# show as "photoexe.jpg"; and lone surrogates, which a name decoded in a charset of the
# client's choosing (filename*=utf-7'', unicode_escape'') can hold and no database stores
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


@dataclass(frozen=True)
class Upload:
    name: str
    content_type: str
    blob: StoredBlob


def clean_filename(raw: str | None) -> str:
    """The last path segment of a client's filename, without control characters (_CONTROL)."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = _CONTROL.sub("", name).strip().strip(".") or "file"
    if len(name) > MAX_NAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        keep = MAX_NAME_LENGTH - len(ext) - 1
        name = (stem[:keep] + dot + ext) if dot and keep > 0 else name[:MAX_NAME_LENGTH]
    return name


#: RFC 5987 / 7578 `filename*=charset'language'percent-encoded` (what .NET and many HTTP
#: libraries add for a name that is not ASCII)
_EXTENDED_FILENAME = re.compile(
    r"""(?:^|;)\s*filename\*\s*=\s*"?([^';"]*)'[^']*'([^;"\s]*)""", re.IGNORECASE
)
#: an RFC 2047 encoded word, which .NET's MultipartFormDataContent puts in plain `filename`
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def part_filename(segment: multipart.MultipartSegment) -> str | None:
    """The part's file name as its client meant it, or None for a part that is no file.

    `filename*` wins over `filename` (RFC 7578 §4.2); an encoded word in `filename`
    (=?utf-8?B?...?=) is decoded. Both as a client library sends them, never as a failure:
    a name that does not decode is taken as it came.
    """
    for header, value in segment.headerlist:
        if header == "Content-Disposition" and (found := _EXTENDED_FILENAME.search(value)):
            charset, encoded = str(found.group(1) or "utf-8"), str(found.group(2))
            try:
                return unquote(encoded, encoding=charset, errors="replace")
            except (LookupError, UnicodeError, ValueError):  # (no such charset, or idna…)
                return unquote(encoded, errors="replace")
    name: str | None = segment.filename
    if name is not None and _ENCODED_WORD.search(name):
        try:
            return str(make_header(decode_header(name)))
        except (ValueError, LookupError, UnicodeError):
            return name
    return name


def _content_type(declared: str | None, name: str) -> str:
    """The part's declared type if it is a plausible `type/subtype`, else one guessed."""
    if declared and declared != "application/octet-stream" and MEDIA_TYPE.fullmatch(declared):
        return declared
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _boundary(content_type: str) -> str:
    kind, options = multipart.parse_options_header(content_type or "")
    if kind != "multipart/form-data" or not options.get("boundary"):
        raise FrontdeskError(
            "no_file_in_request", "Send the file as multipart/form-data (curl -F name=@file)"
        )
    return str(options["boundary"])


class _FileCatcher:
    """Feeds parser events to a BlobWriter for the first file part only."""

    def __init__(self, store: BlobStore, max_bytes: int) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.writer: BlobWriter | None = None
        self.name = ""
        self.content_type = ""
        self.writing = False
        self.done = False

    async def on_event(self, event: object) -> None:
        if isinstance(event, multipart.MultipartSegment):
            filename = part_filename(event)
            if not self.done and self.writer is None and filename is not None:
                self.name = clean_filename(filename)
                self.content_type = _content_type(event.content_type, self.name)
                self.writer = self.store.writer(self.max_bytes)
                self.writing = True
        elif event is None:
            if self.writing:
                self.writing, self.done = False, True
        elif self.writing:
            assert self.writer is not None
            await self.writer.write(event)  # type: ignore[arg-type]

    async def discard(self) -> None:
        if self.writer is not None and not self.done:
            await self.writer.discard()


async def receive_file(
    stream: AsyncIterator[bytes], content_type: str, store: BlobStore, max_bytes: int
) -> Upload:
    """Store the request's first file; raise the Pyrus error codes for what is wrong."""
    catcher = _FileCatcher(store, max_bytes)
    parser = multipart.PushMultipartParser(
        _boundary(content_type), max_header_size=16_384, max_header_count=16
    )
    try:
        async for chunk in stream:
            for event in parser.parse(chunk):
                await catcher.on_event(event)
        for event in parser.parse(b""):
            await catcher.on_event(event)
    except multipart.MultipartError as exc:
        await catcher.discard()
        if catcher.done:  # a broken tail after a complete file: keep the file
            return await _finish(catcher)
        raise FrontdeskError("bad_multipart_content", f"Malformed multipart body: {exc}") from None
    except BaseException:
        await catcher.discard()
        raise
    return await _finish(catcher)


async def _finish(catcher: _FileCatcher) -> Upload:
    if catcher.writer is None or not catcher.done:
        raise FrontdeskError("no_file_in_request", "The request contains no file")
    if catcher.writer.size == 0:
        await catcher.writer.discard()
        raise FrontdeskError("empty_file", "The uploaded file is empty")
    return Upload(catcher.name, catcher.content_type, await catcher.writer.finish())


#: slack over the file cap for the multipart envelope, before the stream is even read
MULTIPART_OVERHEAD = 1024 * 1024


def refuse_declared_oversize(content_length: str, cap: int) -> None:
    """A Content-Length far over the cap is refused before a byte of the body is read."""
    if content_length.isdigit() and int(content_length) > cap + MULTIPART_OVERHEAD:
        raise TooLarge(f"The file is larger than the {cap} byte limit")


async def store_upload(call: Call, uploader: intake.Principal) -> Reply:
    """The whole upload method of both Pyrus APIs, once the caller is known and current:
    refuse a declared oversize, stream the first file part to the store with its MD5, record
    it as the uploader's file (if their token is current still), answer {guid, md5_hash}."""
    ctx = call.ctx
    cap = ctx.settings.max_upload_bytes
    refuse_declared_oversize(call.header(b"content-length"), cap)
    received = await receive_file(call.stream(), call.header(b"content-type"), ctx.blobs, cap)
    blob = received.blob
    await files.keep_upload(
        ctx.db,
        ctx.blobs,
        blob,
        received.name,
        received.content_type,
        extension_id=intake.extension_scope(uploader),
        user_id=intake.uploader_id(uploader),
        token=uploader,
    )
    return ok({"guid": blob.key, "md5_hash": blob.md5})
