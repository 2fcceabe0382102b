"""The admin JSON API for deliveries: the admin token, list, show, redeliver."""

from __future__ import annotations

from datetime import timedelta

import pytest

from frontdesk.core import outbox, outbox_settle
from frontdesk.core.clock import utcnow

from factories import db_of

ADMIN = {"Authorization": "Bearer admin-token-for-tests"}


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"admin_token": "admin-token-for-tests"})


async def _delivery(client, status: str | None = None) -> int:
    db = db_of(client)
    row = await db.write(
        outbox.enqueue,
        kind="sendmessage",
        url="http://127.0.0.1:9/sendmessage",
        body=b'{"message_text":"hi"}',
        ordering_key=f"chat:1:{status}",
    )
    if status == "dead":
        [claimed] = await db.write(outbox.claim, [row], timedelta(seconds=60), 1)
        attempt = outbox_settle.Attempt(utcnow(), 3, error="ConnectionRefusedError")
        await db.write(outbox_settle.record_attempt, claimed, attempt, retry_at=None, done=False)
    return row


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
async def test_admin_token_is_required(client, headers):
    response = await client.get("/admin/api/deliveries", headers=headers)
    assert response.status_code == 401
    assert response.json()["error_code"] in ("token_not_specified", "invalid_token")


async def test_guessing_the_admin_token_runs_into_the_quota_of_the_address(client):
    """The operator chooses the token (it may be a weak one): wrong ones count against the
    address, which is then refused before the token is checked."""
    client.app.state.ctx.limiter.limit = 3
    for _ in range(3):
        wrong = await client.get("/admin/api/deliveries", headers={"Authorization": "Bearer x"})
        assert wrong.status_code == 401
    right = {"Authorization": "Bearer admin-token-for-tests"}
    assert (await client.get("/admin/api/deliveries", headers=right)).status_code == 429


async def test_an_address_that_fetched_tokens_still_reaches_the_admin_api(client):
    """Only wrong keys lock an address out: not its token requests (a connector's)."""
    from factories import make_connector

    connector = await make_connector(client)
    client.app.state.ctx.limiter.limit = 3
    login = {"client_id": connector.client_id, "secret": connector.secret}
    for _ in range(3):
        assert (await client.post("/v1/token", json=login)).status_code == 200
    right = {"Authorization": "Bearer admin-token-for-tests"}
    assert (await client.get("/admin/api/deliveries", headers=right)).status_code == 200
    assert (
        await client.post("/v1/getmessage", headers=connector.headers, json={})
    ).status_code == 400  # (a bad body, answered: not refused for the address's token requests)


async def test_list_show_and_redeliver(client):
    pending = await _delivery(client)
    dead = await _delivery(client, "dead")
    listed = (await client.get("/admin/api/deliveries", headers=ADMIN)).json()["deliveries"]
    assert [d["id"] for d in listed] == [dead, pending]
    only_dead = await client.get("/admin/api/deliveries?status=dead", headers=ADMIN)
    assert [d["id"] for d in only_dead.json()["deliveries"]] == [dead]

    shown = (await client.get(f"/admin/api/deliveries/{dead}", headers=ADMIN)).json()
    assert shown["status"] == "dead" and shown["body"] == '{"message_text":"hi"}'
    [attempt] = shown["attempt_log"]
    assert attempt["error"] == "ConnectionRefusedError" and attempt["status_code"] is None

    again = await client.post(
        "/admin/api/deliveries/redeliver", headers=ADMIN, json={"ids": [dead]}
    )
    assert again.json() == {"redelivered": [dead]}
    shown = (await client.get(f"/admin/api/deliveries/{dead}", headers=ADMIN)).json()
    assert (shown["status"], shown["attempts"]) == ("pending", 0)


@pytest.mark.parametrize(
    "method, path, body, status, code",
    [
        ("GET", "/admin/api/deliveries?status=lost", None, 400, "validation_error"),
        ("GET", "/admin/api/deliveries?limit=0", None, 400, "validation_error"),
        ("GET", "/admin/api/deliveries?limit=" + "9" * 5000, None, 400, "validation_error"),
        ("GET", "/admin/api/deliveries/abc", None, 404, "not_found"),
        ("GET", "/admin/api/deliveries/\u0661", None, 404, "not_found"),
        ("GET", "/admin/api/deliveries/99999", None, 404, "not_found"),
        ("POST", "/admin/api/deliveries/redeliver", {"ids": [99999]}, 404, "not_found"),
        ("POST", "/admin/api/deliveries/redeliver", {}, 400, "required_parameters_not_specified"),
        ("POST", "/admin/api/deliveries/redeliver", {"ids": ["x"]}, 400, "validation_error"),
    ],
)
async def test_bad_admin_requests(client, method, path, body, status, code):
    response = await client.request(method, path, headers=ADMIN, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code


async def test_redeliver_ids_out_of_range_or_repeated(client):
    dead = await _delivery(client, "dead")
    huge = await client.post(
        "/admin/api/deliveries/redeliver", headers=ADMIN, json={"ids": [2**64]}
    )
    assert huge.status_code == 400 and huge.json()["error_code"] == "validation_error"
    twice = await client.post(
        "/admin/api/deliveries/redeliver", headers=ADMIN, json={"ids": [dead, dead]}
    )
    assert twice.json() == {"redelivered": [dead]}
