"""POST /v4/integrations/call: a PBX signed in as a user registers calls (seeds/pyrus-v4-telephony).

The calls are the same objects `/v1/call` makes; these tests pin what v4 answers differently
and how a user (not an extension) finds the account. Errors common to both telephony methods
(401 codes, bodies, quota headers) are here too, for both paths. What v4 answers alike with
/v1/call (aliases, typed mappings, missing parameters, bad types, the account's errors) is
tested once over both APIs in test_v1_call.py.
"""

from __future__ import annotations

import pytest

from frontdesk.core import users

from factories import (
    TELEPHONY_FIELDS,
    calls_of,
    channels_of,
    comments_of,
    db_of,
    expired_v4_headers,
    make_agent,
    make_connector,
    make_v4_agent,
    nulls_in,
    set_enabled,
    task_of,
    tasks_of,
    values_of,
)

FROM, TO = "+79774221338", "+74953009080"
SEED_EXAMPLE = {
    "account_id": "uniqueID12345",
    "from_number": FROM,
    "to_number": TO,
    "internal_number": "200",
    "mappings": [{"code": "CallStartTime", "value": "2021-12-23T00:11:32Z"}],
}
PATHS = ("/v4/integrations/call", "/v4/integrations/attachcallrecord")


async def call(client, agent, connector, **body):
    payload = {"account_id": connector.account_id, "from_number": FROM, "to_number": TO, **body}
    return await client.post("/v4/integrations/call", headers=agent.headers, json=payload)


def landed(response):
    """(task_id, is_new_task) of a successful answer, which is one object (not v1's tasks[])."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert "tasks" not in body
    return body["task_id"], body["is_new_task"]


async def test_the_documents_example(client):
    connector = await make_connector(client, account_id="uniqueID12345", fields=TELEPHONY_FIELDS)
    pbx = await make_v4_agent(client, email="pbx@example.com", work_phone=None)
    operator = await make_agent(client, work_phone="200")
    response = await client.post("/v4/integrations/call", headers=pbx.headers, json=SEED_EXAMPLE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    task_id = response.json()["task_id"]
    assert response.json() == {
        "task_id": task_id,
        "is_new_task": True,
        "responsible_person": {
            "user_id": str(operator.user_id),
            "first_name": "Ilya",
            "last_name": "Laserson",
            "work_phone": "200",
        },
    }
    task = await task_of(client, task_id)
    assert (task["form_id"], task["account_ref"]) == (connector.form_id, connector.account_ref)
    assert task["responsible_id"] == operator.user_id
    assert task["subject"] == f"Call from {FROM}"
    [stored] = await calls_of(client)
    assert (stored["task_id"], stored["account_ref"]) == (task_id, connector.account_ref)
    assert (stored["from_number"], stored["to_number"]) == (FROM, TO)
    assert (stored["internal_number"], stored["external_id"]) == ("200", None)
    [channel] = await channels_of(client)
    assert (channel["kind"], channel["key"], channel["task_id"]) == ("caller", FROM, task_id)
    comments = await comments_of(client, task_id)
    assert [(c["direction"], c["text"]) for c in comments] == [
        (
            "in",
            f"Call from {FROM} to {TO}, internal number 200; "
            "Ilya Laserson took it and is responsible",
        ),
    ]
    assert await values_of(client, task_id) == {"CallStartTime": "2021-12-23T00:11:32Z"}


async def test_no_match_no_responsible_person_and_no_nulls(client):
    connector = await make_connector(client)
    agent = await make_v4_agent(client, work_phone="200")
    for internal in (None, "999"):
        response = await call(client, agent, connector, internal_number=internal)
        assert response.status_code == 200, response.text
        assert "responsible_person" not in response.json()
        assert nulls_in(response.json()) == []


async def test_repeated_external_id_updates_the_same_call_and_task(client):
    connector = await make_connector(client)
    agent = await make_v4_agent(client, work_phone="200")
    first_id, first_new = landed(await call(client, agent, connector, external_id="pbx-1"))
    response = await call(
        client,
        agent,
        connector,
        external_id="pbx-1",
        to_number="+74953009081",
        internal_number="200",
    )
    second_id, second_new = landed(response)
    assert (first_new, second_new, second_id) == (True, False, first_id)
    [stored] = await calls_of(client)
    assert (stored["external_id"], stored["to_number"]) == ("pbx-1", "+74953009081")
    # a third report without internal_number keeps it, and still answers who is responsible
    third = await call(client, agent, connector, external_id="pbx-1")
    assert landed(third) == (first_id, False)
    assert third.json()["responsible_person"]["user_id"] == str(agent.user_id)
    assert len(await tasks_of(client)) == 1
    assert [c["internal_number"] for c in await calls_of(client)] == ["200"]
    [channel] = await channels_of(client)
    assert (channel["kind"], channel["key"]) == ("call", "pbx-1")


async def test_a_repeat_with_another_operator_hands_the_task_over(client):
    connector = await make_connector(client)
    agent = await make_v4_agent(client, work_phone="200")
    other = await make_agent(client, email="other@example.com", work_phone="201")
    task_id, _ = landed(
        await call(client, agent, connector, external_id="x", internal_number="200")
    )
    same = await call(client, agent, connector, external_id="x", internal_number="200")
    assert same.json()["responsible_person"]["user_id"] == str(agent.user_id)
    moved = await call(client, agent, connector, external_id="x", internal_number="201")
    assert moved.json()["responsible_person"]["user_id"] == str(other.user_id)
    assert (await task_of(client, task_id))["responsible_id"] == other.user_id
    comments = await comments_of(client, task_id)
    # the first report's comment notes its operator; a repeat notes a change of hands only
    assert comments[0]["text"].endswith("; Ilya Laserson took it and is responsible")
    notes = [c["text"] for c in comments if c["direction"] == "internal"]
    assert notes == ["Ilya Laserson is responsible: took the call on internal number 201"]


async def test_v1_and_v4_reports_of_one_call_are_one_call(client):
    connector = await make_connector(client)
    agent = await make_v4_agent(client)
    task_id, _ = landed(await call(client, agent, connector, external_id="pbx-1"))
    v1 = await client.post(
        "/v1/call",
        headers=connector.headers,
        json={"account_id": connector.account_id, "from": FROM, "to": TO, "external_id": "pbx-1"},
    )
    assert v1.json()["tasks"][0] == {"task_id": task_id, "is_new_task": False}
    assert len(await calls_of(client)) == 1


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("CallDuration", "twelve minutes"),
        ("CallStartTime", "23.12.2021 00:11"),
        ("CallEndTime", "2021-12-23T25:00:00Z"),
        ("PhoneNumberFrom", "call me"),
        ("PhoneNumberTo", "+7 (495) ext. office"),
        ("Rating", 7),
        ("RatingDate", "2021-02-30"),
        ("Unknown", "x"),
    ],
)
async def test_a_value_of_the_wrong_type_is_a_warning_and_not_stored(client, code, value):
    connector = await make_connector(client, fields=TELEPHONY_FIELDS)
    agent = await make_v4_agent(client)
    mappings = [{"code": code, "value": value}, {"code": "Subject", "value": "kept"}]
    response = await call(client, agent, connector, mappings=mappings)
    task_id, is_new = landed(response)
    body = response.json()
    assert is_new is True
    assert body["error_code"] == "invalid_field_mapping_code"
    assert code in body["error"]
    assert body["warnings"] == [
        {"error_code": "invalid_field_mapping_code", "error": body["error"]}
    ]
    assert await values_of(client, task_id) == {"Subject": "kept"}


async def test_a_mapping_value_over_300_characters_is_validation_error(client):
    connector = await make_connector(client, fields=TELEPHONY_FIELDS)
    agent = await make_v4_agent(client)
    fits = await call(client, agent, connector, mappings=[{"code": "Subject", "value": "v" * 300}])
    assert fits.status_code == 200, fits.text
    response = await call(
        client, agent, connector, mappings=[{"code": "RatingComment", "value": "v" * 301}]
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "validation_error"
    assert "RatingComment" in response.json()["error"]
    assert len(await calls_of(client)) == 1


async def test_the_account_is_found_in_whichever_extension_has_it(client):
    await make_connector(client, account_id="first", name="Telegram bridge")
    connector = await make_connector(client, account_id="pbx-line", name="PBX")
    agent = await make_v4_agent(client)
    task_id, _ = landed(await call(client, agent, connector))
    assert (await task_of(client, task_id))["account_ref"] == connector.account_ref


async def test_of_two_extensions_with_the_account_id_the_oldest_takes_the_calls(client):
    oldest = await make_connector(client, account_id="shared", name="Old PBX")
    newer = await make_connector(client, account_id="shared", name="New PBX")
    agent = await make_v4_agent(client)
    task_id, _ = landed(await call(client, agent, newer))
    assert (await task_of(client, task_id))["account_ref"] == oldest.account_ref
    # a disabled oldest account is refused, not silently replaced by the newer one
    await set_enabled(oldest, False)
    response = await call(client, agent, newer)
    assert response.status_code == 400
    assert response.json()["error_code"] == "webhook_is_disabled"


# --- what both telephony methods share ----------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"account_id": acc}', "invalid_json"),
        (b"{'task_id': 1}", "invalid_json"),
        (b'{"account_id": "acc-1", "from": ', "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        (b"[1, 2]", "validation_error"),
        (b"", "empty_body"),
        (b"  \n", "empty_body"),
    ],
)
async def test_malformed_and_empty_bodies(client, path, body, code):
    agent = await make_v4_agent(client)
    headers = {**agent.headers, "Content-Type": "application/json"}
    response = await client.post(path, headers=headers, content=body)
    assert response.status_code == 400
    assert response.json()["error_code"] == code
    assert "x-ratelimit-remaining" in response.headers


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "token, code",
    [
        ("none", "token_not_specified"),
        ("garbage", "invalid_token"),
        ("extension", "invalid_token"),
        ("expired", "expired_token"),
        ("revoked", "revoked_token"),
    ],
)
async def test_token_problems_are_401(client, path, token, code):
    connector = await make_connector(client)
    agent = await make_v4_agent(client)
    headers = {
        "none": {},
        "garbage": {"Authorization": "Bearer not-a-token"},
        "extension": connector.headers,  # a v1 token is not a v4 one
        "expired": await expired_v4_headers(client, agent),
        "revoked": agent.headers,
    }[token]
    if token == "revoked":  # a new security key revokes every token issued with the old one
        await db_of(client).write(users.rotate_security_key, agent.user_id)
    body = {"account_id": connector.account_id, "from": FROM, "to": TO, "task_id": 1}
    response = await client.post(path, headers=headers, json={**body, "record_file": "x"})
    assert response.status_code == 401
    assert response.json()["error_code"] == code
    assert await calls_of(client) == []


async def test_quota_headers_count_down_per_user(client):
    connector = await make_connector(client)
    agent = await make_v4_agent(client)
    other = await make_v4_agent(client, email="other@example.com")
    first = await call(client, agent, connector)
    second = await call(client, agent, connector, account_id="nobody")
    elsewhere = await call(client, other, connector)
    assert first.headers["x-ratelimit-limit"] == "5000"
    assert int(first.headers["x-ratelimit-remaining"]) == 4999
    assert int(second.headers["x-ratelimit-remaining"]) == 4998
    assert int(elsewhere.headers["x-ratelimit-remaining"]) == 4999
    assert 0 < int(second.headers["x-ratelimit-reset"]) <= 600


async def test_over_quota_is_429_with_retry_after(client):
    client.app.state.ctx.limiter.limit = 2
    connector = await make_connector(client)
    agent = await make_v4_agent(client)
    for _ in range(2):
        assert (await call(client, agent, connector)).status_code == 200
    refused = await call(client, agent, connector)
    assert refused.status_code == 429
    assert refused.json()["error_code"] == "too_many_requests"
    assert int(refused.headers["retry-after"]) > 0
    assert len(await calls_of(client)) == 2


async def test_a_user_outside_the_accounts_form_is_refused(client):
    from frontdesk.core import access

    connector = await make_connector(client, fields=TELEPHONY_FIELDS)
    insider = await make_v4_agent(client, email="in@example.com", work_phone="201")
    outsider = await make_v4_agent(client, email="out@example.com", work_phone="202")
    await db_of(client).write(access.add_form_members, connector.form_id, [insider.user_id])
    first = await call(client, insider, connector, external_id="c-1")
    task_id, _ = landed(first)
    # neither a repeat of the call (taking it over) nor a new one, nor its recording
    for body in ({"external_id": "c-1", "internal_number": "202"}, {"external_id": "c-2"}):
        refused = await call(client, outsider, connector, **body)
        assert refused.status_code == 403
        assert refused.json()["error_code"] == "access_denied_form"
    record = await client.post(
        "/v4/integrations/attachcallrecord",
        headers=outsider.headers,
        json={"task_id": task_id, "record_file": "00000000-0000-0000-0000-000000000000"},
    )
    # (the task answers as one that does not exist: its form is not named, its id not probed)
    assert record.status_code == 400
    assert record.json()["error_code"] == "unrecognized_task_id"
    assert (await task_of(client, task_id))["responsible_id"] is None
    assert len(await calls_of(client)) == 1


async def test_null_mappings_are_no_mappings(client):
    connector = await make_connector(client, fields=TELEPHONY_FIELDS)
    agent = await make_v4_agent(client)
    response = await call(client, agent, connector, external_id="n-1", mappings=None)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("blank", ["", "   ", None])
async def test_a_blank_number_is_a_missing_one(client, blank):
    connector = await make_connector(client, fields=TELEPHONY_FIELDS)
    agent = await make_v4_agent(client)
    response = await call(client, agent, connector, from_number=blank)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "required_parameters_not_specified"
