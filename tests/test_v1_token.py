"""POST /v1/token and the bearer checks every other method makes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from frontdesk.core import auth, extensions

from factories import make_connector


async def test_token_for_valid_credentials_works_on_other_methods(client):
    connector = await make_connector(client)
    response = await client.post(
        "/v1/token", json={"client_id": connector.client_id, "secret": connector.secret}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    token = response.json()["access_token"]
    assert token and token != connector.token
    answer = await client.post(
        "/v1/getmessage",
        headers={"Authorization": f"Bearer {token}"},
        json={"account_id": "acc-1", "channel_id": "c1", "message_text": "hi"},
    )
    assert answer.status_code == 200, answer.text


async def test_wrong_secret_is_authorization_error(client):
    connector = await make_connector(client)
    for body in (
        {"client_id": connector.client_id, "secret": connector.secret + "x"},
        {"client_id": "nobody@example.com", "secret": connector.secret},
    ):
        response = await client.post("/v1/token", json=body)
        assert response.status_code == 401
        assert response.json()["error_code"] == "authorization_error"


async def test_token_request_needs_both_fields(client):
    response = await client.post("/v1/token", json={"client_id": "x"})
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "required_parameters_not_specified",
        "error": "Required parameters not specified: secret",
    }


async def test_token_by_query_string_for_old_clients(client):
    connector = await make_connector(client)
    response = await client.get(
        "/v1/token", params={"client_id": connector.client_id, "secret": connector.secret}
    )
    assert response.status_code == 200
    assert response.json()["access_token"]


async def test_missing_and_unknown_tokens(client):
    await make_connector(client)
    body = {"account_id": "acc-1", "channel_id": "c1", "message_text": "hi"}
    missing = await client.post("/v1/getmessage", json=body)
    assert missing.status_code == 401
    assert missing.json()["error_code"] == "token_not_specified"
    for empty in ("Bearer ", "Bearer", "bearer   "):
        nothing = await client.post("/v1/getmessage", json=body, headers={"Authorization": empty})
        assert nothing.status_code == 401
        assert nothing.json()["error_code"] == "token_not_specified", empty
    unknown = await client.post(
        "/v1/getmessage", json=body, headers={"Authorization": "Bearer not-a-token"}
    )
    assert unknown.status_code == 401
    assert unknown.json()["error_code"] == "invalid_token"
    # every answer carries the quota (spec.md §1.1): a 401's is the caller's address's
    assert int(unknown.headers["x-ratelimit-remaining"]) < int(unknown.headers["x-ratelimit-limit"])


async def test_rotating_the_secret_revokes_earlier_tokens(client):
    connector = await make_connector(client)
    await connector.db.write(extensions.rotate_secret, connector.extension_id)
    body = {"account_id": "acc-1", "channel_id": "c1", "message_text": "hi"}
    response = await client.post("/v1/getmessage", json=body, headers=connector.headers)
    assert response.status_code == 401
    assert response.json()["error_code"] == "revoked_token"
    # told before anything wrong with the body: the connector first needs a new token
    for bad in ({**body, "message_text": "x" * 10_001}, {"account_id": "acc-1"}, {"x": [1]}):
        refused = await client.post("/v1/getmessage", json=bad, headers=connector.headers)
        assert refused.json()["error_code"] == "revoked_token", bad
    old_secret = await client.post(
        "/v1/token", json={"client_id": connector.client_id, "secret": connector.secret}
    )
    assert old_secret.json()["error_code"] == "authorization_error"


async def test_expired_token(client):
    connector = await make_connector(client)
    issued = await connector.db.write(
        auth.issue_extension_token, connector.client_id, connector.secret, timedelta(seconds=1)
    )
    await asyncio.sleep(1.1)
    response = await client.post(
        "/v1/getmessage",
        headers={"Authorization": f"Bearer {issued.token}"},
        json={"account_id": "acc-1", "channel_id": "c1", "message_text": "hi"},
    )
    assert response.status_code == 401
    assert response.json()["error_code"] == "expired_token"


async def test_token_lifetime_is_configurable(client, settings):
    connector = await make_connector(client)
    credentials = {"client_id": connector.client_id, "secret": connector.secret}
    default = await client.post("/v1/token", json=credentials)
    assert default.json()["expires_in"] == 24 * 3600
    client.app.state.ctx.settings = settings.model_copy(update={"token_ttl_seconds": 1})
    short = await client.post("/v1/token", json=credentials)
    assert short.json()["expires_in"] == 1
    await asyncio.sleep(1.1)
    response = await client.post(
        "/v1/getmessage",
        headers={"Authorization": f"Bearer {short.json()['access_token']}"},
        json={"account_id": "acc-1", "channel_id": "c1", "message_text": "hi"},
    )
    assert response.json()["error_code"] == "expired_token"
