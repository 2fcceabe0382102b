"""GET /v4/profile, /v4/members and /v4/members/{id}: Pyrus' Person shapes, every error."""

from __future__ import annotations

import pytest

from frontdesk.core import users

from factories import db_of, expired_v4_headers, make_v4_agent, nulls_in


async def two_agents(client):
    ann = await make_v4_agent(client, email="ann@example.com", work_phone="+7 (933) 876-20-30")
    bob = await make_v4_agent(client, email="bob@example.com", work_phone=None)
    return ann, bob


def person(agent, phone: str | None = None) -> dict:
    found = {
        "id": agent.user_id,
        "first_name": "Ilya",
        "last_name": "Laserson",
        "email": agent.email,
        "type": "user",
        "banned": False,
    }
    return {**found, "phone": phone} if phone else found


async def test_profile_is_the_signed_in_user_in_the_one_organisation(client):
    ann, bob = await two_agents(client)
    response = await client.get("/v4/profile", headers=bob.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "person_id": bob.user_id,
        "first_name": "Ilya",
        "last_name": "Laserson",
        "email": "bob@example.com",
        "locale": "en-US",
        "organization_id": 1,
        "organization": {
            "organization_id": 1,
            "name": "Frontdesk",
            "persons": [person(ann, "+7 (933) 876-20-30"), person(bob)],
        },
    }


async def test_profile_takes_the_official_clients_query(client):
    agent = await make_v4_agent(client)
    for query in ("?withinactive=False", "?withinactive=True"):
        response = await client.get(f"/v4/profile{query}", headers=agent.headers)
        assert response.status_code == 200
        assert response.json()["person_id"] == agent.user_id


@pytest.mark.parametrize("path", ["/v4/members", "/v4/members/"])
async def test_members_lists_everyone_with_work_phone_as_phone_and_no_nulls(client, path):
    ann, bob = await two_agents(client)
    response = await client.get(path, headers=ann.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"members": [person(ann, "+7 (933) 876-20-30"), person(bob)]}
    assert nulls_in(body) == []


async def test_one_member_by_id(client):
    ann, bob = await two_agents(client)
    response = await client.get(f"/v4/members/{ann.user_id}", headers=bob.headers)
    assert response.status_code == 200, response.text
    assert response.json() == person(ann, "+7 (933) 876-20-30")


@pytest.mark.parametrize("member_id", ["999", "0", "99999999999999999999999"])
async def test_unknown_member_is_not_found(client, member_id):
    agent = await make_v4_agent(client)
    response = await client.get(f"/v4/members/{member_id}", headers=agent.headers)
    assert response.status_code == 404
    assert response.json()["error_code"] == "not_found"


@pytest.mark.parametrize(
    "member_id", ["abc", "-1", "1.5", "1e3", "%D9%A1", "%EF%BC%91", "%2e%2e", "%20%31"]
)
async def test_member_id_that_is_no_number_is_a_validation_error(client, member_id):
    agent = await make_v4_agent(client)
    response = await client.get(f"/v4/members/{member_id}", headers=agent.headers)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "validation_error"


ROUTES = ["/v4/profile", "/v4/members", "/v4/members/1"]


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize(
    "token, code",
    [
        (None, "token_not_specified"),
        ("not-a-token", "invalid_token"),
        ("expired", "expired_token"),
        ("revoked", "revoked_token"),
    ],
)
async def test_every_route_refuses_bad_tokens(client, path, token, code):
    agent = await make_v4_agent(client)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if token == "expired":
        headers = await expired_v4_headers(client, agent)
    elif token == "revoked":
        headers = agent.headers
        await db_of(client).write(users.rotate_security_key, agent.user_id)
    response = await client.get(path, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error_code"] == code


@pytest.mark.parametrize("path", ROUTES)
async def test_answers_carry_the_users_quota(client, path):
    agent = await make_v4_agent(client)
    response = await client.get(path, headers=agent.headers)
    assert response.status_code == 200
    assert int(response.headers["x-ratelimit-remaining"]) < int(
        response.headers["x-ratelimit-limit"]
    )
