"""Every refusal of the Planfix chat API is one of its documented answers, never a 500, and
changes nothing."""

from __future__ import annotations

import httpx
import pytest

from factories import PLANFIX_TOKEN, make_planfix, planfix_call, tasks_of

FORM = "application/x-www-form-urlencoded"
MULTIPART_X = "multipart/form-data; boundary=x"
INVALID = {"status": 400, "error": "Invalid parameters"}
BAD_TOKEN = {"status": 401, "error": "Invalid token"}


def message(**changes: str | None) -> dict[str, str]:
    fields = {
        "cmd": "newMessage",
        "providerId": "superchat",
        "chatId": "chat-1",
        "planfix_token": PLANFIX_TOKEN,
        "message": "Hello",
        "contactId": "1",
        "contactName": "Ivan",
    }
    fields.update(changes)  # type: ignore[arg-type]
    return {key: value for key, value in fields.items() if value is not None}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (message(cmd=None), INVALID),
        (message(cmd="sendMessage"), INVALID),
        (message(cmd="newmessage"), INVALID),
        (message(planfix_token="303cb962ac59075b964b07152d234b71"), BAD_TOKEN),
        (message(planfix_token=None), BAD_TOKEN),
        (message(planfix_token=""), BAD_TOKEN),
        (message(providerId="nosuchchat"), BAD_TOKEN),
        (message(providerId="super~chat"), BAD_TOKEN),
        (message(providerId=None), BAD_TOKEN),
        (message(chatId=None), INVALID),
        (message(chatId=""), INVALID),
        (message(chatId="   "), INVALID),
        (message(providerId="  "), BAD_TOKEN),
        (message(chatId="c" * 301), INVALID),
        (message(message=None), INVALID),
        (message(message=""), INVALID),
        (message(message="x" * 10_001), INVALID),
        (message(contactName="n" * 201), INVALID),
        (message(isEcho="maybe"), INVALID),
        (message(**{"attachments[name]": "a.jpg"}), INVALID),
        (message(**{"attachments[url]": "https://f.example/" + "x" * 2000}), INVALID),
        (message(**{"data_utm_source": "u" * 2001}), INVALID),
        (message(message="nul \x00 inside"), INVALID),
        (message(cmd="getTask", chatId="no-such-chat"), {"status": 400, "error": "task not found"}),
        (message(cmd="getTask", chatId=None), INVALID),
        (message(cmd="getTask", planfix_token="wrong"), BAD_TOKEN),
        # without the key, a caller learns nothing of what the server takes: 401 first
        (message(planfix_token="wrong", chatId=None), BAD_TOKEN),
        (message(planfix_token=None, message="x" * 10_001), BAD_TOKEN),
        (message(planfix_token="wrong", cmd="sendMessage"), BAD_TOKEN),
        (message(planfix_token="wrong", isEcho="maybe"), BAD_TOKEN),
        (message(planfix_token="wrong", message="nul \x00 inside"), BAD_TOKEN),
        (message(providerId="super\x00chat"), BAD_TOKEN),  # (names no integration)
        (message(providerId="super\x00chat", planfix_token="wrong"), BAD_TOKEN),
        (message(cmd="getTask", planfix_token="wrong", chatId=None), BAD_TOKEN),
        (message(cmd="getTask", providerId="a~b"), BAD_TOKEN),
    ],
)
async def test_refusals_are_the_documented_answers(client, body, expected):
    await make_planfix(client)
    response = await planfix_call(client, body)
    assert response.status_code == expected["status"], response.text
    assert response.json()["error"] == expected["error"]
    assert set(response.json()) <= {"error", "detail"}
    assert await tasks_of(client) == []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"cmd=newMessage&message=%FF%FE", "application/x-www-form-urlencoded"),
        (b"\xff\xfe=x", "application/x-www-form-urlencoded"),
        (b"--x\r\nContent-Disposition: form-data; name=cmd\r\n\r\nnewMessage", MULTIPART_X),
        (b"cmd=newMessage", "multipart/form-data"),
        (b"&".join(b"f%d=1" % n for n in range(1001)), "application/x-www-form-urlencoded"),
        (b"cmd=newMessage&message=" + b"x" * (3 * 1024 * 1024), FORM),
        (b"", "application/x-www-form-urlencoded"),
        (b'{"cmd": "newMessage"}', "application/json"),
    ],
)
async def test_malformed_bodies_are_invalid_parameters(client, content, content_type):
    await make_planfix(client)
    response = await client.post(
        "/webchat/api", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "Invalid parameters"


async def test_a_json_body_is_told_to_send_form_fields(client):
    await make_planfix(client)
    response = await client.post("/webchat/api", json=message())
    assert response.status_code == 400
    assert "form fields" in response.json()["detail"]


async def test_the_detail_says_what_was_wrong(client):
    await make_planfix(client)
    response = await planfix_call(client, message(chatId=None))
    assert response.json() == {"error": "Invalid parameters", "detail": "chatId is required"}


async def test_a_wrong_method_is_answered_in_the_same_shape(client):
    response = await client.get("/webchat/api")
    assert response.status_code == 405
    assert set(response.json()) == {"error"}


async def test_guessing_keys_runs_into_the_quota_of_the_address(client):
    """Wrong keys count against the caller's address, which is then refused before its key
    is checked (a right guess answers as a wrong one); the provider itself, calling from
    elsewhere, is not locked out."""
    await make_planfix(client)
    client.app.state.ctx.limiter.limit = 3
    for _ in range(3):
        assert (await planfix_call(client, message(planfix_token="x"))).status_code == 401
    refused = await planfix_call(client, message(planfix_token="x"))
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0 and "error" in refused.json()
    assert (await planfix_call(client, message())).status_code == 429
    elsewhere = httpx.ASGITransport(app=client.app, client=("10.0.0.2", 40000))
    async with httpx.AsyncClient(transport=elsewhere, base_url="http://test") as provider:
        assert (await planfix_call(provider, message())).status_code == 200
