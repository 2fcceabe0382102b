"""What every v1 method shares: JSON errors, quotas and their headers, no tracebacks."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from frontdesk.storage import tables
from frontdesk.storage.sql import Query

from factories import make_agent, make_connector, rows

MESSAGE = {"account_id": "acc-1", "channel_id": "c1", "message_text": "hi"}


async def test_quota_headers_count_down(client):
    connector = await make_connector(client)
    first = await client.post("/v1/getmessage", headers=connector.headers, json=MESSAGE)
    second = await client.post("/v1/getmessage", headers=connector.headers, json=MESSAGE)
    assert first.headers["x-ratelimit-limit"] == "5000"
    assert int(first.headers["x-ratelimit-remaining"]) == 4999
    assert int(second.headers["x-ratelimit-remaining"]) == 4998
    assert 0 < int(second.headers["x-ratelimit-reset"]) <= 600


async def test_over_quota_is_429_with_retry_after(client, settings):
    ctx = client.app.state.ctx
    ctx.limiter.limit = 3
    connector = await make_connector(client)
    other = await make_connector(client, name="other")
    for _ in range(3):
        ok = await client.post("/v1/getmessage", headers=connector.headers, json=MESSAGE)
        assert ok.status_code == 200
    refused = await client.post("/v1/getmessage", headers=connector.headers, json=MESSAGE)
    assert refused.status_code == 429
    assert refused.json()["error_code"] == "too_many_requests"
    assert int(refused.headers["retry-after"]) > 0
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-ratelimit-limit"] == "3"
    # the quota is per extension
    elsewhere = await client.post(
        "/v1/getmessage", headers=other.headers, json={**MESSAGE, "account_id": "acc-1"}
    )
    assert elsewhere.status_code == 200, elsewhere.text


async def test_errors_carry_quota_headers_too(client):
    connector = await make_connector(client)
    response = await client.post("/v1/getmessage", headers=connector.headers, json={})
    assert response.status_code == 400
    assert "x-ratelimit-remaining" in response.headers


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/token", {}, 400),  # (a body without credentials)
        ("POST", "/v4/auth", b"{not json", 400),
        ("GET", "/v1/getmessage", None, 405),
        ("PUT", "/v4/auth", None, 405),
    ],
)
async def test_answers_that_reach_no_caller_count_on_the_address_and_say_so(
    client, method, path, body, status
):
    """Every answer carries X-RateLimit-*; a refused body or method counts too (a flood of
    them is no free ride)."""
    remaining = []
    for _ in range(2):
        if isinstance(body, bytes):
            response = await client.request(method, path, content=body)
        else:
            response = await client.request(method, path, json=body)
        assert response.status_code == status, response.text
        assert response.headers["x-ratelimit-limit"] == "5000"
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
    assert remaining[1] == remaining[0] - 1


async def test_over_quota_a_wrong_method_is_429_not_a_crash(client):
    client.app.state.ctx.limiter.limit = 1
    assert (await client.get("/v1/getmessage")).status_code == 405
    refused = await client.get("/v1/getmessage")
    assert refused.status_code == 429
    assert refused.json()["error_code"] == "too_many_requests"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "empty_body"),
        (b"   ", "empty_body"),
        (b"{not json", "invalid_request"),
        (b'{"account_id": "acc-1", "channel_id": "c1"', "invalid_request"),
        (b"[1, 2]", "validation_error"),
        (b'{"account_id": ["x"], "channel_id": "c1", "message_text": "hi"}', "validation_error"),
        (b'{"account_id": "acc-1", "channel_id": "c1", "mappings": "x"}', "validation_error"),
    ],
)
async def test_bad_bodies_get_their_code_as_json(client, body, code):
    connector = await make_connector(client)
    response = await client.post("/v1/getmessage", headers=connector.headers, content=body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error_code"] == code
    assert len(response.json()["error"]) <= 300


async def test_unknown_fields_are_ignored(client):
    connector = await make_connector(client)
    response = await client.post(
        "/v1/getmessage",
        headers=connector.headers,
        json={**MESSAGE, "telegramUserName": "@paul", "extra": [1]},
    )
    assert response.status_code == 200


async def test_unknown_path_and_wrong_method_answer_json(client):
    connector = await make_connector(client)
    missing = await client.post("/v1/nothing", headers=connector.headers, json=MESSAGE)
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "not_found"
    wrong = await client.get("/v1/getmessage", headers=connector.headers)
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert wrong.json()["error"] == "GET is not served here; use POST"
    download = await client.post("/v1/files/download/1", headers=connector.headers)
    assert download.status_code == 405 and "{" not in download.json()["error"]  # no template
    assert download.headers["allow"] == "GET, HEAD"  # (HEAD is served where GET is)
    head = await client.head("/v1/getmessage", headers=connector.headers)
    assert head.status_code == 405 and head.headers["allow"] == "POST"


def _rename(old: str, new: str):
    async def rename(tx):
        await tx.run(Query(sa.text(f"ALTER TABLE {old} RENAME TO {new}")))

    return rename


async def test_a_crash_is_server_error_without_traceback(client):
    """A real failure underneath (a table gone) must not leak a traceback."""
    connector = await make_connector(client)
    db = client.app.state.ctx.db
    await db.write(_rename("channels", "channels_away"))
    try:
        response = await client.post("/v1/getmessage", headers=connector.headers, json=MESSAGE)
    finally:
        await db.write(_rename("channels_away", "channels"))
    assert response.status_code == 500
    assert response.json() == {
        "error_code": "server_error",
        "error": "Internal server error; please retry later",
    }
    assert "Traceback" not in response.text


async def test_body_over_the_json_limit_is_refused(client):
    connector = await make_connector(client)
    huge = (
        b'{"account_id": "acc-1", "channel_id": "c1", "message_text": "'
        + b"x" * (5 * 1024 * 1024)
        + b'"}'
    )
    response = await client.post("/v1/getmessage", headers=connector.headers, content=huge)
    assert response.status_code == 400
    assert response.json()["error_code"] == "too_large_request_length"


async def test_nul_characters_are_refused_not_a_500(client):
    connector = await make_connector(client)
    response = await client.post(
        "/v1/getmessage",
        headers=connector.headers,
        content=b'{"account_id": "acc-1", "channel_id": "c1", "message_text": "a\\u0000b"}',
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "validation_error"
    literal = await client.post(
        "/v1/getmessage",
        headers=connector.headers,
        content=b'{"account_id": "acc-1", "channel_id": "c1", "message_text": "a\\\\u0000b"}',
    )
    assert literal.status_code == 200


@pytest.mark.parametrize(
    "method", ["token", "task", "comment", "getmessage", "call", "attachcallrecord"]
)
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"account_id": acc}', "invalid_request"),
        (b"{'task_id': 1}", "invalid_request"),
        (b"{,}", "invalid_request"),
        (b'{"account_id": "acc-1", "text": ', "invalid_request"),
        (b"", "empty_body"),
        (b" ", "empty_body"),
        (b"  \n", "empty_body"),
    ],
)
async def test_every_json_method_refuses_malformed_and_empty_bodies(client, method, body, code):
    connector = await make_connector(client)
    headers = {**connector.headers, "Content-Type": "application/json"}
    response = await client.post(f"/v1/{method}", headers=headers, content=body)
    assert response.status_code == 400
    assert response.json()["error_code"] == code


async def test_head_is_refused_where_a_get_makes_a_token(client):
    """GET /v1/token and /v4/auth exchange credentials for a token: a HEAD would make one
    and throw it away, so it is 405 there (Allow names what is served)."""
    connector = await make_connector(client)
    agent = await make_agent(client)
    asked = [
        f"/v1/token?client_id={connector.client_id}&secret={connector.secret}",
        f"/v4/auth?login={agent.email}&security_key={agent.security_key}",
        f"/api/v4/auth?login={agent.email}&security_key={agent.security_key}",
    ]
    before = await rows(client, sa.select(tables.access_tokens))
    for path in asked:
        response = await client.head(path)
        assert response.status_code == 405, path
        assert response.headers["allow"] == "POST, GET", path
    assert await rows(client, sa.select(tables.access_tokens)) == before
    assert (await client.get(asked[0])).status_code == 200  # (the GET itself is served)
