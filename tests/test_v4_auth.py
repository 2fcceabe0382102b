"""POST /v4/auth: login + security key -> a token, with URLs that lead back here."""

from __future__ import annotations

import pytest

from frontdesk.core import users

from factories import db_of, make_agent, make_v4_agent


@pytest.mark.parametrize("path", ["/v4/auth", "/api/v4/auth"])
async def test_auth_answers_token_and_urls_of_this_server(client, path):
    agent = await make_agent(client)
    response = await client.post(
        path, json={"login": agent.email, "security_key": agent.security_key}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["access_token"]) >= 32
    assert body["api_url"] == "http://frontdesk.test/v4/"
    assert body["files_url"] == "http://frontdesk.test/"
    assert response.headers["content-type"].startswith("application/json")


async def test_public_url_setting_wins_over_host(client):
    ctx = client.app.state.ctx
    ctx.settings = ctx.settings.model_copy(update={"public_url": "https://desk.example.com/"})
    agent = await make_agent(client)
    body = (
        await client.post(
            "/v4/auth", json={"login": agent.email, "security_key": agent.security_key}
        )
    ).json()
    assert body["api_url"] == "https://desk.example.com/v4/"
    assert body["files_url"] == "https://desk.example.com/"


async def test_legacy_get_auth_with_query_parameters(client):
    agent = await make_agent(client)
    response = await client.get(
        "/v4/auth", params={"login": agent.email, "security_key": agent.security_key}
    )
    assert response.status_code == 200, response.text
    assert response.json()["access_token"]


async def test_login_is_case_insensitive_and_person_id_must_match(client):
    agent = await make_agent(client, email="ann@example.com")
    ok = await client.post(
        "/v4/auth",
        json={
            "login": "Ann@Example.com",
            "security_key": agent.security_key,
            "person_id": agent.user_id,
        },
    )
    assert ok.status_code == 200, ok.text
    wrong = await client.post(
        "/v4/auth",
        json={
            "login": agent.email,
            "security_key": agent.security_key,
            "person_id": agent.user_id + 1,
        },
    )
    assert wrong.status_code == 401
    assert wrong.json()["error_code"] == "invalid_credentials"


@pytest.mark.parametrize(
    "login, key",
    [("agent@example.com", "wrong-key"), ("nobody@example.com", None)],
)
async def test_bad_pair_is_invalid_credentials(client, login, key):
    agent = await make_agent(client)
    response = await client.post(
        "/v4/auth", json={"login": login, "security_key": key or agent.security_key}
    )
    assert response.status_code == 401
    assert response.json() == {
        "error_code": "invalid_credentials",
        "error": "Invalid login/security key",
    }


@pytest.mark.parametrize(
    "body, code",
    [
        (b"", "empty_body"),
        (b"{not json", "invalid_json"),
        (b'{"login": "a@b.c"}', "required_parameter_missing"),
        (b'{"login": "a@b.c", "security_key": "k", "person_id": "x1"}', "validation_error"),
    ],
)
async def test_malformed_auth_requests(client, body, code):
    response = await client.post(
        "/v4/auth", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == code


async def test_rotating_the_security_key_revokes_old_tokens(client):
    agent = await make_v4_agent(client)
    assert (await client.get("/v4/profile", headers=agent.headers)).status_code != 401
    new_key = await db_of(client).write(users.rotate_security_key, agent.user_id)
    response = await client.get("/v4/profile", headers=agent.headers)
    assert response.status_code == 401
    assert response.json()["error_code"] == "revoked_token"
    nobody = await client.get("/v4/profile", headers={"Authorization": "Bearer nothing"})
    assert (nobody.status_code, "x-ratelimit-remaining" in nobody.headers) == (401, True)
    bad_comment = await client.post(
        "/v4/tasks/1/comments", headers=agent.headers, json={"text": ["not text"]}
    )
    assert bad_comment.json()["error_code"] == "revoked_token"  # before the body's faults
    old = await client.post(
        "/v4/auth", json={"login": agent.email, "security_key": agent.security_key}
    )
    assert old.status_code == 401
    fresh = await client.post("/v4/auth", json={"login": agent.email, "security_key": new_key})
    assert fresh.status_code == 200


async def test_v1_tokens_are_not_v4_tokens(client):
    from factories import make_connector

    connector = await make_connector(client)
    response = await client.get("/v4/profile", headers=connector.headers)
    assert response.status_code == 401
    assert response.json()["error_code"] == "invalid_token"
