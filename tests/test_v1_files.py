"""POST /v1/files/upload and GET /v1/files/download/{id}; what an upload does alike on
POST /v4/files/upload is tested here once, over both APIs (test_v4_files.py: the rest of v4)."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from frontdesk.core import files
from frontdesk.errors import TooLarge
from frontdesk.storage import tables
from frontdesk.storage.blobs import BlobStore, BlobWriter
from frontdesk.web import endpoints
from frontdesk.web.uploads import receive_file

from factories import (
    APIS,
    db_of,
    file_id_of,
    make_caller,
    make_connector,
    make_v4_agent,
    rows,
    upload,
)


async def _file_id(client, guid: str, extension_id: int) -> int:
    stored = await db_of(client).read(files.extension_file, extension_id, guid)
    assert stored is not None
    return stored.id


async def test_non_ascii_name_gets_both_filename_forms(client):
    connector = await make_connector(client)
    name = 'отчёт "final".txt'
    guid = await upload(client, connector, name, b"x")
    file_id = await _file_id(client, guid, connector.extension_id)
    response = await client.get(f"/v1/files/download/{file_id}", headers=connector.headers)
    disposition = response.headers["content-disposition"]
    assert "filename*=UTF-8''" + quote(name, safe="") in disposition
    assert 'filename="_____ _final_.txt"' in disposition


async def _name_stored(client, connector, disposition: str) -> str:
    """Upload a file part with this Content-Disposition; the name Frontdesk keeps."""
    body = f"--b\r\nContent-Disposition: {disposition}\r\n\r\nID3\r\n--b--\r\n".encode()
    response = await client.post(
        "/v1/files/upload",
        content=body,
        headers={**connector.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 200, response.text
    guid = response.json()["guid"]
    stored = await db_of(client).read(files.extension_file, connector.extension_id, guid)
    assert stored is not None
    return str(stored.name)


async def test_a_dotnet_style_non_ascii_name_is_decoded(client):
    """.NET's MultipartFormDataContent sends a name that is not ASCII as an RFC 2047 encoded
    word in `filename` and percent-encoded in `filename*`: the name is the decoded one, so a
    recording named so is still an .mp3 for attachcallrecord."""
    connector = await make_connector(client)
    for disposition in (
        'form-data; name=file; filename="=?utf-8?B?0LfQstC+0L3QvtC6Lm1wMw==?="; '
        "filename*=utf-8''%D0%B7%D0%B2%D0%BE%D0%BD%D0%BE%D0%BA.mp3",
        'form-data; name=file; filename="=?utf-8?B?0LfQstC+0L3QvtC6Lm1wMw==?="',
        "form-data; name=file; filename*=UTF-8''%D0%B7%D0%B2%D0%BE%D0%BD%D0%BE%D0%BA.mp3",
    ):
        assert await _name_stored(client, connector, disposition) == "звонок.mp3", disposition


@pytest.mark.parametrize("charset", ["idna", "punycode", "no-such-charset"])
async def test_a_filename_star_in_a_charset_that_does_not_decode_is_taken_as_utf8(client, charset):
    connector = await make_connector(client)
    disposition = f"form-data; name=file; filename*={charset}''r%C3%A9c.mp3"
    assert await _name_stored(client, connector, disposition) == "réc.mp3"


@pytest.mark.parametrize(
    ("disposition", "stored"),
    [
        # a lone surrogate, which neither database stores (the upload answered 500)
        ("form-data; name=file; filename*=unicode_escape''%5Cud800rec.mp3", "rec.mp3"),
        ("form-data; name=file; filename*=utf-7''%2B2AA-rec.mp3", "rec.mp3"),
        ('form-data; name=file; filename="=?unicode_escape?Q?=5Cud800rec.mp3?="', "rec.mp3"),
        # a right-to-left override: "rec\u202e3pm.exe" shows as "recexe.mp3"
        ("form-data; name=file; filename*=utf-8''rec%E2%80%AE3pm.exe", "rec3pm.exe"),
    ],
)
async def test_a_name_is_stored_without_surrogates_or_direction_overrides(
    client, disposition, stored
):
    connector = await make_connector(client)
    assert await _name_stored(client, connector, disposition) == stored


async def test_client_path_in_filename_is_dropped(client):
    connector = await make_connector(client)
    guid = await upload(client, connector, "C:\\Path\\To\\File\\..\\filename.jpg", b"x")
    stored = await db_of(client).read(files.extension_file, connector.extension_id, guid)
    assert stored is not None and stored.name == "filename.jpg"


async def test_upload_needs_a_token(client):
    response = await client.post("/v1/files/upload", files={"file": ("a.txt", b"x")})
    assert response.status_code == 401
    assert response.json()["error_code"] == "token_not_specified"


async def test_download_of_another_extensions_file_is_not_found(client):
    owner = await make_connector(client, name="owner")
    other = await make_connector(client, name="other", account_id="acc-2")
    guid = await upload(client, owner, "secret.txt", b"private")
    file_id = await _file_id(client, guid, owner.extension_id)
    response = await client.get(f"/v1/files/download/{file_id}", headers=other.headers)
    assert response.status_code == 404
    assert response.json()["error_code"] == "file_is_missing"


async def test_attached_file_downloads_for_the_task_extension(client):
    """An agent's file attached in a task of the extension's account (sendmessage case)."""
    from frontdesk.core.comments import Formatted, NewComment, add_comment
    from frontdesk.core.tasks import create_task

    connector = await make_connector(client)
    other = await make_connector(client, name="agent side", account_id="acc-2")
    guid = await upload(client, other, "answer.txt", b"from the agent")
    file_id = await _file_id(client, guid, other.extension_id)

    async def attach_in_connector_task(tx):
        task_id = await create_task(
            tx, form_id=connector.form_id, account_ref=connector.account_ref
        )
        await add_comment(tx, NewComment(task_id, Formatted("answer"), file_ids=[file_id]))

    await db_of(client).write(attach_in_connector_task)
    response = await client.get(f"/v1/files/download/{file_id}", headers=connector.headers)
    assert response.status_code == 200
    assert response.content == b"from the agent"


@pytest.mark.parametrize(
    "file_id",
    [
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "abc",
        "-1",
        "1e3",
        "99999999999999999999",
        "123",
    ],
)
async def test_download_ids_that_are_no_file_are_not_found(client, file_id):
    connector = await make_connector(client)
    response = await client.get(f"/v1/files/download/{file_id}", headers=connector.headers)
    assert response.status_code == 404
    assert response.json()["error_code"] in {"file_is_missing", "not_found"}
    assert "root:" not in response.text


# --- what an upload does alike on API v1 and API v4 ---------------------------------------

#: each API's download path, with the other two ways Pyrus' v4 clients ask for a file
DOWNLOADS = [
    ("v1", "/v1/files/download/{}"),
    ("v4", "/v4/files/download/{}"),
    ("v4", "/files/download/{}"),
    ("v4", "/services/attachment?Id={}"),
]


async def _stored(client, caller, guid: str):
    """The file, found as the caller's own: the extension's on v1, the user's on v4."""
    if caller.api == "v1":
        return await db_of(client).read(files.extension_file, caller.connector.extension_id, guid)
    return await db_of(client).read(files.user_file, caller.user_id, guid)


@pytest.mark.parametrize("api", APIS)
async def test_upload_answers_the_guid_and_the_lowercase_hex_md5_of_the_bytes(client, api):
    caller = await make_caller(client, api)
    data = b"hello world!"
    response = await client.post(
        caller.path("upload"), headers=caller.headers, files={"file": ("a.txt", data)}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"guid": body["guid"], "md5_hash": hashlib.md5(data).hexdigest()}
    assert len(body["guid"]) == 36 and body["guid"] == body["guid"].lower()


@pytest.mark.parametrize(("api", "path"), DOWNLOADS)
async def test_an_upload_downloads_as_the_same_bytes_and_name(client, api, path):
    caller = await make_caller(client, api)
    data = b"binary \x00\xff" * 1000
    response = await client.post(
        caller.path("upload"), headers=caller.headers, files={"file": ("report.pdf", data)}
    )
    assert response.status_code == 200, response.text
    assert response.json()["md5_hash"] == hashlib.md5(data).hexdigest()
    file_id = await file_id_of(client, response.json()["guid"])
    download = await client.get(path.format(file_id), headers=caller.headers)
    assert download.status_code == 200, download.text
    assert download.content == data
    assert download.headers["content-length"] == str(len(data))
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    )


@pytest.mark.parametrize(("api", "path"), DOWNLOADS)
async def test_head_of_a_download_gives_its_headers_without_reading_it(
    client, api, path, monkeypatch
):
    """Download managers ask with HEAD for the size and name before they fetch; the file
    (up to 2 GB) is not read for it."""
    caller = await make_caller(client, api)
    response = await client.post(
        caller.path("upload"),
        headers=caller.headers,
        files={"file": ("report.pdf", b"%PDF" * 1000)},
    )
    url = path.format(await file_id_of(client, response.json()["guid"]))
    real_send_file = endpoints._send_file

    async def unread(*_args: object) -> None:
        raise AssertionError("the file was read for a HEAD")

    monkeypatch.setattr(endpoints, "_send_file", unread)
    head = await client.head(url, headers=caller.headers)
    assert head.status_code == 200, head.text
    monkeypatch.setattr(endpoints, "_send_file", real_send_file)
    got = await client.get(url, headers=caller.headers)
    assert head.content == b"" and got.content == b"%PDF" * 1000
    for name in ("content-length", "content-type", "content-disposition", "x-ratelimit-limit"):
        assert head.headers[name] == got.headers[name], name
    if api == "v1":
        stranger = (await make_connector(client)).headers
    else:
        stranger = (await make_v4_agent(client, email="other@example.com")).headers
    hidden = await client.head(url, headers=stranger)
    assert hidden.status_code == 404  # (as a GET: only the files the caller may see)


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("name", ["filename.jpg", "отчёт.txt"])
async def test_file_part_may_have_any_field_name_and_other_parts_are_ignored(client, api, name):
    """Clients name the part as they please: the TypeScript client after the file itself."""
    caller = await make_caller(client, api)
    response = await client.post(
        caller.path("upload"),
        headers=caller.headers,
        data={"comment": "not a file"},
        files={name: (name, b"text"), "second": ("b.txt", b"ignored")},
    )
    assert response.status_code == 200, response.text
    stored = await _stored(client, caller, response.json()["guid"])
    assert stored is not None and (stored.name, stored.size) == (name, 4)
    download = await client.get(caller.path("download").format(stored.id), headers=caller.headers)
    assert "filename*=UTF-8''" + quote(name, safe="") in download.headers["content-disposition"]


@pytest.mark.parametrize("api", APIS)
async def test_empty_file(client, api):
    caller = await make_caller(client, api)
    response = await client.post(
        caller.path("upload"), headers=caller.headers, files={"file": ("empty.txt", b"")}
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "empty_file"


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    "content, content_type",
    [
        (
            b'--xyz\r\nContent-Disposition: form-data; name="just"\r\n\r\nfields\r\n--xyz--\r\n',
            "multipart/form-data; boundary=xyz",
        ),
        (b"raw bytes", "application/octet-stream"),
        (b"", ""),
    ],
)
async def test_no_file_in_request(client, api, content, content_type):
    caller = await make_caller(client, api)
    headers = {**caller.headers, "Content-Type": content_type}
    response = await client.post(caller.path("upload"), headers=headers, content=content)
    assert response.status_code == 400
    assert response.json()["error_code"] == "no_file_in_request"


@pytest.mark.parametrize("api", APIS)
async def test_malformed_multipart(client, api):
    caller = await make_caller(client, api)
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nabc'
    response = await client.post(
        caller.path("upload"),
        content=body,
        headers={**caller.headers, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "bad_multipart_content"


@pytest.mark.parametrize("api", APIS)
async def test_too_large_file_is_refused_while_streaming_and_leaves_nothing(client, settings, api):
    client.app.state.ctx.settings = settings.model_copy(update={"max_upload_bytes": 1000})
    caller = await make_caller(client, api)
    response = await client.post(
        caller.path("upload"), headers=caller.headers, files={"file": ("big.bin", b"x" * 1001)}
    )
    assert response.status_code == 413
    assert response.json()["error_code"] == "too_large_file"
    assert not [p for p in settings.effective_files_dir.rglob("*") if p.is_file()]
    assert await rows(client, sa.select(tables.files.c.id)) == []
    at_limit = await client.post(
        caller.path("upload"), headers=caller.headers, files={"file": ("ok.bin", b"x" * 1000)}
    )
    assert at_limit.status_code == 200, at_limit.text


@pytest.mark.parametrize("api", APIS)
async def test_declared_length_over_the_cap_is_refused_before_reading(client, settings, api):
    client.app.state.ctx.settings = settings.model_copy(update={"max_upload_bytes": 10})

    async def never_read():
        raise AssertionError("the body must not be read")
        yield b""  # pragma: no cover

    caller = await make_caller(client, api)
    response = await client.post(
        caller.path("upload"),
        content=never_read(),
        headers={
            **caller.headers,
            "Content-Length": str(5 * 1024 * 1024),
            "Content-Type": "multipart/form-data; boundary=b",
        },
    )
    assert response.status_code == 413
    assert response.json()["error_code"] == "too_large_file"


@pytest.mark.parametrize("api", APIS)
async def test_missing_bytes_on_disk_is_not_found_not_500(client, api):
    caller = await make_caller(client, api)
    response = await client.post(
        caller.path("upload"), headers=caller.headers, files={"file": ("gone.txt", b"x")}
    )
    guid = response.json()["guid"]
    client.app.state.ctx.blobs.delete(guid)
    file_id = await file_id_of(client, guid)
    download = await client.get(caller.path("download").format(file_id), headers=caller.headers)
    assert download.status_code == 404


# --- the streaming pipeline: blocks hashed and written on threads while more arrive ---------

BOUNDARY = "frontdesk-test-boundary"
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
#: chunk sizes that straddle the parser's boundary look-behind and the writer's blocks
ODD_SIZES = (1, 7, 4093, 65_537, 300_001, BlobWriter.BLOCK_BYTES + 3, 2)


def _multipart(data: bytes) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


async def _in_odd_chunks(body: bytes, fail_after: int | None = None) -> AsyncIterator[bytes]:
    sent = 0
    for size in itertools.cycle(ODD_SIZES):
        if sent >= len(body):
            return
        if fail_after is not None and sent >= fail_after:
            raise ConnectionAbortedError("the client went away mid-request")
        yield body[sent : sent + size]
        sent += size


def _left_behind(root: Path) -> list[str]:
    """Files under the store, and descriptors this process still holds on anything in it."""
    stored = [str(p) for p in root.rglob("*") if p.is_file()]
    fd_dir = Path("/proc/self/fd")
    held = []
    for fd in fd_dir.iterdir() if fd_dir.is_dir() else []:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(root)):
            held.append(target)
    return stored + held


async def _settled(root: Path) -> list[str]:
    """What is left once the writer thread has run the close queued behind its writes."""
    for _ in range(200):
        left = _left_behind(root)
        if not left:
            return []
        await asyncio.sleep(0.01)
    return left


async def test_multi_megabyte_upload_in_odd_chunks_has_the_right_md5_and_bytes(tmp_path):
    data = random.Random(7).randbytes(5 * BlobWriter.BLOCK_BYTES + 12_345)
    store = BlobStore(tmp_path / "files")
    received = await receive_file(
        _in_odd_chunks(_multipart(data)), MULTIPART_TYPE, store, max_bytes=len(data)
    )
    assert received.blob.md5 == hashlib.md5(data).hexdigest()
    assert received.blob.size == len(data)
    assert store.path(received.blob.key).read_bytes() == data
    assert not list((tmp_path / "files" / "incoming").iterdir())


async def test_multi_megabyte_upload_through_the_endpoint(client):
    connector = await make_connector(client)
    data = random.Random(8).randbytes(3 * BlobWriter.BLOCK_BYTES + 1)
    response = await client.post(
        "/v1/files/upload",
        content=_in_odd_chunks(_multipart(data)),
        headers={**connector.headers, "Content-Type": MULTIPART_TYPE},
    )
    assert response.status_code == 200, response.text
    assert response.json()["md5_hash"] == hashlib.md5(data).hexdigest()
    file_id = await _file_id(client, response.json()["guid"], connector.extension_id)
    download = await client.get(f"/v1/files/download/{file_id}", headers=connector.headers)
    assert download.content == data


async def test_client_gone_mid_upload_leaves_no_temp_file_and_no_open_file(tmp_path):
    data = random.Random(9).randbytes(6 * BlobWriter.BLOCK_BYTES)
    store = BlobStore(tmp_path / "files")
    with pytest.raises(ConnectionAbortedError):
        await receive_file(
            _in_odd_chunks(_multipart(data), fail_after=len(data) // 2),
            MULTIPART_TYPE,
            store,
            max_bytes=len(data),
        )
    assert await _settled(tmp_path / "files") == []


async def test_cap_reached_with_blocks_in_flight_leaves_nothing(tmp_path):
    data = random.Random(10).randbytes(4 * BlobWriter.BLOCK_BYTES)
    store = BlobStore(tmp_path / "files")
    with pytest.raises(TooLarge):
        await receive_file(
            _in_odd_chunks(_multipart(data)),
            MULTIPART_TYPE,
            store,
            max_bytes=3 * BlobWriter.BLOCK_BYTES + 5,
        )
    assert await _settled(tmp_path / "files") == []


# --- written around the page cache (O_DIRECT) where the file system allows ---------------


def _direct_file(path: Path):
    from frontdesk.storage.blobs import _TempFile

    temp = _TempFile(path)
    if not temp.direct:
        temp.close()
        pytest.skip("this file system takes no direct writes")
    return temp


def test_whole_blocks_go_around_the_page_cache_and_the_tail_through_it(tmp_path):
    import fcntl
    import mmap

    from frontdesk.storage.blobs import SECTOR

    data = random.Random(11).randbytes(3 * SECTOR + 5)
    block = mmap.mmap(-1, 4 * SECTOR)
    block[: len(data)] = data
    temp = _direct_file(tmp_path / "f")
    assert fcntl.fcntl(temp.fd, fcntl.F_GETFL) & os.O_DIRECT
    temp.write(memoryview(block)[: 2 * SECTOR])  # whole sectors: still direct
    assert temp.direct
    temp.write(memoryview(block)[2 * SECTOR : len(data)])  # the tail: through the cache
    assert not temp.direct
    temp.close()
    assert (tmp_path / "f").read_bytes() == data


def test_a_buffer_direct_writes_refuse_is_written_through_the_page_cache(tmp_path):
    data = random.Random(12).randbytes(5 * 4096)
    temp = _direct_file(tmp_path / "f")
    temp.write(memoryview(b"x" + data)[1:])  # at an odd address: EINVAL, then the cache
    assert not temp.direct
    temp.close()
    assert (tmp_path / "f").read_bytes() == data
