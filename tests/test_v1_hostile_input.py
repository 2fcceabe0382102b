"""Input meant to break things gets an error in the protocol's format, never a 500."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from frontdesk.core import extensions, files
from frontdesk.web.ratelimit import RateLimiter

from factories import comments_of, db_of, make_connector, upload, values_of

MESSAGE = {"account_id": "acc-1", "channel_id": "c1", "message_text": "hi"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"account_id": "\xff", "channel_id": "c1", "message_text": "hi"}', "invalid_request"),
        (b'{"extra": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "invalid_request"),
        (b'{"account_id": "acc-1", "channel_id": "c1", "message_text": "\\ud800"}', None),
    ],
)
async def test_undecodable_bodies(client, body, code):
    connector = await make_connector(client)
    response = await client.post("/v1/getmessage", headers=connector.headers, content=body)
    assert response.status_code in {200, 400}
    if code:
        assert response.json()["error_code"] == code


async def test_a_lone_surrogate_is_named_and_a_bom_is_read_past(client):
    connector = await make_connector(client)
    lone = b'{"account_id": "acc-1", "channel_id": "c1", "message_text": "\\ud800 hi"}'
    refused = await client.post("/v1/getmessage", headers=connector.headers, content=lone)
    assert refused.status_code == 400
    assert refused.json()["error_code"] == "invalid_request"
    assert "UTF-16 pair" in refused.json()["error"]  # (msgspec itself says "truncated")
    cut = b'{"account_id": "acc-1", "channel_id": "c1", "message_text": "\\ud83d\\ude00'
    truncated = await client.post("/v1/getmessage", headers=connector.headers, content=cut)
    assert "UTF-16" not in truncated.json()["error"]  # (a whole pair, in a body cut short)
    with_bom = b"\xef\xbb\xbf" + httpx.Request("POST", "/", json=MESSAGE).content
    taken = await client.post("/v1/getmessage", headers=connector.headers, content=with_bom)
    assert taken.status_code == 200, taken.text
    assert taken.json()["tasks"][0]["is_new_task"] is True


@pytest.mark.parametrize("file_id", ["%C2%B2", "%D9%A1%D9%A2%D9%A3", "%EF%BC%91%EF%BC%92%EF%BC%93"])
async def test_unicode_digits_are_no_file_id(client, file_id):
    connector = await make_connector(client)
    response = await client.get(f"/v1/files/download/{file_id}", headers=connector.headers)
    assert response.status_code == 404
    assert response.json()["error_code"] == "file_is_missing"


@pytest.mark.parametrize("part_type", ["text/" + "x" * 400, "text/pl\x00ain", "nonsense"])
async def test_implausible_part_types_are_replaced_by_a_guess(client, part_type):
    connector = await make_connector(client)
    boundary = "b"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        f"Content-Type: {part_type}\r\n\r\nhello\r\n--{boundary}--\r\n"
    ).encode("latin-1")
    response = await client.post(
        "/v1/files/upload",
        content=body,
        headers={**connector.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 200, response.text
    stored = await db_of(client).read(
        files.extension_file, connector.extension_id, response.json()["guid"]
    )
    assert stored is not None and stored.content_type == "text/plain"


async def test_nul_in_the_token_query_is_refused(client):
    response = await client.get("/v1/token", params={"client_id": "a\x00b", "secret": "x"})
    assert response.status_code == 400
    assert response.json()["error_code"] == "validation_error"


async def test_token_query_names_only_what_is_missing(client):
    response = await client.get("/v1/token", params={"client_id": "x"})
    assert response.json()["error"] == "Required parameters not specified: secret"


async def test_another_authorization_scheme_is_an_invalid_token(client):
    response = await client.post(
        "/v1/getmessage", json=MESSAGE, headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    assert response.status_code == 401
    assert response.json()["error_code"] == "invalid_token"


@pytest.mark.parametrize(
    ("html", "stored"),
    [
        ("<b title=x lang=en>x</b>", "<b>x</b>"),
        ("<p>Hello</p><p>World</p>", "Hello<br>World"),
        ('<a href="//evil.example/x">e</a>', "<a>e</a>"),
        ('<a href="/relative">r</a>', "<a>r</a>"),
        ('<a href="javascript:alert(1)">j</a>', "<a>j</a>"),
    ],
)
async def test_sanitiser_keeps_exactly_the_documented_attributes(client, html, stored):
    connector = await make_connector(client)
    response = await client.post(
        "/v1/getmessage",
        headers=connector.headers,
        json={**MESSAGE, "message_text": None, "message_text_html": html},
    )
    assert response.status_code == 200, response.text
    [comment] = await comments_of(client, response.json()["tasks"][0]["task_id"])
    assert comment["html"] == stored


async def test_html_that_sanitises_to_nothing_is_not_a_message(client):
    connector = await make_connector(client)
    response = await client.post(
        "/v1/getmessage",
        headers=connector.headers,
        json={
            **MESSAGE,
            "message_text": None,
            "message_text_html": "<img src=x><script>x()</script>",
        },
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "required_parameters_not_specified"


async def test_comment_with_fields_keeps_them_despite_unknown_files(client):
    connector = await make_connector(client)
    task = await client.post(
        "/v1/task", headers=connector.headers, json={"account_id": "acc-1", "text": "t"}
    )
    task_id = task.json()["task_ids"][0]
    response = await client.post(
        "/v1/comment",
        headers=connector.headers,
        json={
            "account_id": "acc-1",
            "task_id": task_id,
            "mappings": [{"code": "Subject", "value": "kept"}],
            "attachments": ["00000000-0000-0000-0000-000000000000"],
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["error_code"] == "unrecognized_attachment_id"
    assert "kept" in (await values_of(client, task_id)).values()


async def test_wrong_secrets_do_not_lock_the_connector_out(client):
    """The token quota is per address: a stranger guessing secrets does not exhaust it."""
    client.app.state.ctx.limiter.limit = 3
    connector = await make_connector(client)
    wrong = {"client_id": connector.client_id, "secret": "guess"}
    transport = httpx.ASGITransport(app=client.app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as stranger:
        for _ in range(3):
            assert (await stranger.post("/v1/token", json=wrong)).status_code == 401
        assert (await stranger.post("/v1/token", json=wrong)).status_code == 429
    right = {"client_id": connector.client_id, "secret": connector.secret}
    assert (await client.post("/v1/token", json=right)).status_code == 200


async def test_garbage_tokens_count_against_the_address(client):
    client.app.state.ctx.limiter.limit = 2
    bad = {"Authorization": "Bearer nope"}
    for _ in range(2):
        assert (await client.post("/v1/getmessage", json=MESSAGE, headers=bad)).status_code == 401
    assert (await client.post("/v1/getmessage", json=MESSAGE, headers=bad)).status_code == 429


def test_the_limiter_stays_bounded_under_many_keys():
    limiter = RateLimiter(limit=5, window_seconds=600)
    limiter.MAX_KEYS = 100
    for key in range(1_000):
        limiter.hit(key)
    assert len(limiter._windows) <= 101


@pytest.mark.parametrize("method", ["upload", "download", "attachcallrecord"])
async def test_revoked_tokens_are_refused_beyond_getmessage(client, method):
    connector = await make_connector(client)
    guid = await upload(client, connector, "rec.mp3", b"ID3 audio")
    await connector.db.write(extensions.rotate_secret, connector.extension_id)
    if method == "upload":
        response = await client.post(
            "/v1/files/upload", headers=connector.headers, files={"file": ("a.txt", b"x")}
        )
    elif method == "download":
        file_id = (await db_of(client).read(files.extension_file, connector.extension_id, guid)).id
        response = await client.get(f"/v1/files/download/{file_id}", headers=connector.headers)
    else:
        response = await client.post(
            "/v1/attachcallrecord",
            headers=connector.headers,
            json={"record_file": guid, "external_id": "x"},
        )
    assert response.status_code == 401
    assert response.json()["error_code"] == "revoked_token"


async def test_a_file_attached_after_listing_is_not_swept(client):
    connector = await make_connector(client)
    guid = await upload(client, connector, "late.jpg")
    db = db_of(client)
    from datetime import timedelta

    from frontdesk.core.clock import utcnow

    [file_id] = await db.read(files.unreferenced_files, utcnow() + timedelta(seconds=1))
    response = await client.post(
        "/v1/getmessage", headers=connector.headers, json={**MESSAGE, "attachments": [guid]}
    )
    assert response.status_code == 200
    assert await db.write(files.delete_if_unreferenced, file_id) is None
    assert client.app.state.ctx.blobs.path(guid).exists()


async def test_another_process_holding_the_write_lock_answers_429(client, settings, monkeypatch):
    if not settings.effective_database_url.startswith("sqlite"):
        pytest.skip("the write lock of another process is a SQLite matter")
    connector = await make_connector(client)
    monkeypatch.setattr("frontdesk.storage.sqlite.LOCK_WAIT_SECONDS", 0.2)
    path = settings.effective_database_url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        response = await client.post("/v1/getmessage", headers=connector.headers, json=MESSAGE)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert response.json()["error_code"] == "too_many_requests"
    after = await client.post("/v1/getmessage", headers=connector.headers, json=MESSAGE)
    assert after.status_code == 200
