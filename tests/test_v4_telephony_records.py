"""POST /v4/integrations/attachcallrecord: a user attaches a call's recording.

The call is found by task_id, external_id or the number pair, in whichever extension's account
it was made; the record is a file the user uploaded (or the account's extension did).

What it does alike on v1 (finding the call, the record's formats, the account's errors, bad
mappings and types) is tested once over both APIs in test_v1_attachcallrecord.py.
"""

from __future__ import annotations

import pytest

from frontdesk.core import forms

from factories import (
    TELEPHONY_FIELDS,
    add_account,
    assert_attached,
    assert_not_attached,
    calls_of,
    file_id_of,
    make_connector,
    make_v4_agent,
    recording_comments,
    upload,
    user_file,
    values_of,
)

FROM, TO = "+79774221338", "+74953009080"
MISSING_GUID = "08923d83-255b-4f18-b0eb-5c4d3b9bf1d2"


async def register(client, agent, connector, **body):
    """A call registered through v4; its task id."""
    payload = {"account_id": connector.account_id, "from": FROM, "to": TO, **body}
    response = await client.post("/v4/integrations/call", headers=agent.headers, json=payload)
    assert response.status_code == 200, response.text
    task_id: int = response.json()["task_id"]
    return task_id


async def attach(client, agent, **body):
    return await client.post("/v4/integrations/attachcallrecord", headers=agent.headers, json=body)


@pytest.fixture
async def line(client):
    """An account on the telephony form, a PBX user, and one call with an external id."""
    connector = await make_connector(client, fields=TELEPHONY_FIELDS)
    agent = await make_v4_agent(client)
    task_id = await register(client, agent, connector, external_id="pbx-1")
    return connector, agent, task_id


async def test_a_file_the_accounts_extension_uploaded_is_accepted(client, line):
    connector, agent, task_id = line
    guid = await upload(client, connector, "rec.wma", b"audio")
    response = await attach(client, agent, task_id=task_id, record_file=guid)
    assert response.json() == {}
    await assert_attached(client, task_id, guid)


async def test_a_v4_call_is_the_one_v1_attaches_to(client, line):
    connector, _, task_id = line
    guid = await upload(client, connector, "rec.wav", b"RIFF")
    response = await client.post(
        "/v1/attachcallrecord",
        headers=connector.headers,
        json={"account_id": connector.account_id, "external_id": "pbx-1", "record_file": guid},
    )
    assert response.json() == {}
    await assert_attached(client, task_id, guid)


async def test_a_v1_call_is_the_one_v4_attaches_to(client):
    connector = await make_connector(client)
    agent = await make_v4_agent(client)
    made = await client.post(
        "/v1/call",
        headers=connector.headers,
        json={"account_id": connector.account_id, "from": FROM, "to": TO, "external_id": "e"},
    )
    task_id = made.json()["tasks"][0]["task_id"]
    guid = await user_file(client, agent.user_id)
    response = await attach(client, agent, external_id="e", record_file=guid)
    assert response.json() == {}
    await assert_attached(client, task_id, guid)


@pytest.mark.parametrize("owner", ["another user", "another extension", "nobody"])
async def test_a_file_the_caller_may_not_use_is_unrecognized_attachment_id(client, line, owner):
    _, agent, task_id = line
    if owner == "another user":
        someone = await make_v4_agent(client, email="someone@example.com")
        guid = await user_file(client, someone.user_id)
    elif owner == "another extension":
        guid = await upload(client, await make_connector(client, name="Other"), "rec.wav")
    else:
        guid = MISSING_GUID
    response = await attach(client, agent, task_id=task_id, record_file=guid)
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_attachment_id"
    await assert_not_attached(client, task_id)


async def test_a_blank_guid_is_no_record_file(client, line):
    _, agent, task_id = line
    response = await attach(client, agent, task_id=task_id, record_file="  ")
    assert response.status_code == 400
    assert response.json()["error_code"] == "required_parameters_not_specified"


async def test_a_task_id_naming_no_task_is_unrecognized_task_id(client, line):
    _, agent, task_id = line
    guid = await user_file(client, agent.user_id)
    response = await attach(client, agent, task_id=task_id + 1000, record_file=guid)
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_task_id"
    await assert_not_attached(client, task_id)


@pytest.mark.parametrize(
    "finder",
    [
        {"task_id": "task without a call"},
        {"external_id": "never-registered"},
        {"from_number": "+70000000000", "to_number": TO},
        {"task_id": "call of another account", "account_id": "acc-2"},
    ],
)
async def test_no_such_call_is_unrecognized_call_id(client, line, finder):
    connector, agent, task_id = line
    if finder.get("task_id") == "task without a call":
        made = await client.post(
            "/v1/task", headers=connector.headers, json={"account_id": connector.account_id}
        )
        finder = {"task_id": made.json()["task_ids"][0]}
    elif "account_id" in finder:
        await add_account(connector, "acc-2")
        finder = {**finder, "task_id": task_id}
    guid = await user_file(client, agent.user_id)
    response = await attach(client, agent, record_file=guid, **finder)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "unrecognized_call_id"
    await assert_not_attached(client, task_id)


async def test_the_documents_mappings_fill_typed_fields(client, line):
    _, agent, task_id = line
    guid = await user_file(client, agent.user_id)
    response = await attach(
        client,
        agent,
        task_id=task_id,
        record_file=guid,
        mappings=[
            {"code": "CallStartTime", "value": "2021-12-23T00:11:32Z"},
            {"code": "CallEndTime", "value": "2021-12-23T00:24:02Z"},
            {"code": "Rating", "value": 5},
            {"code": "CallDuration", "value": 750.0},
        ],
    )
    assert response.json() == {}
    assert await values_of(client, task_id) == {
        "CallStartTime": "2021-12-23T00:11:32Z",
        "CallEndTime": "2021-12-23T00:24:02Z",
        "Rating": "5",
        "CallDuration": "750",
    }
    await assert_attached(client, task_id, guid)


async def test_a_call_or_task_in_a_hidden_form_answers_as_one_that_does_not_exist(client, line):
    """A user who may not see the call's form learns neither that it exists nor its form."""
    from frontdesk.core import access

    from factories import db_of

    connector, _, task_id = line
    ann = await make_v4_agent(client, email="ann@example.com")
    await db_of(client).write(access.add_form_members, connector.form_id, [ann.user_id])
    bob = await make_v4_agent(client, email="bob@example.com", work_phone=None)
    guid = await user_file(client, bob.user_id)
    for finder, code in (
        ({"task_id": task_id}, "unrecognized_task_id"),
        ({"task_id": task_id + 1000}, "unrecognized_task_id"),
        ({"external_id": "pbx-1"}, "unrecognized_call_id"),
        ({"external_id": "never-registered"}, "unrecognized_call_id"),
        ({"from_number": FROM, "to_number": TO}, "unrecognized_call_id"),
    ):
        response = await attach(client, bob, record_file=guid, **finder)
        assert response.status_code == 400, (finder, response.text)
        assert response.json()["error_code"] == code, finder
        assert "form" not in response.json()["error"]
    await assert_not_attached(client, task_id)


@pytest.mark.parametrize(
    "finder", [{"external_id": "pbx-1"}, {"from_number": FROM, "to_number": TO}]
)
async def test_a_newer_call_in_a_hidden_form_does_not_hide_an_older_visible_one(
    client, line, finder
):
    """The same call id (or number pair) in two forms: the user's recording goes to the newest
    call of a form they may see, not refused because a newer one is in a form they may not."""
    from frontdesk.core import access

    from factories import db_of

    connector, agent, visible_task = line
    hidden_form = await connector.db.write(forms.add_form, "Hidden", TELEPHONY_FIELDS)
    await add_account(connector, "acc-hidden", form_id=hidden_form)
    ann = await make_v4_agent(client, email="ann@example.com", work_phone=None)
    await db_of(client).write(access.add_form_members, hidden_form, [ann.user_id])
    hidden_task = await register(
        client, ann, connector, account_id="acc-hidden", external_id="pbx-1"
    )
    assert hidden_task != visible_task
    guid = await user_file(client, agent.user_id)
    response = await attach(client, agent, record_file=guid, **finder)
    assert response.status_code == 200, response.text
    [stored] = [c for c in await calls_of(client) if c["task_id"] == visible_task]
    assert stored["record_file_id"] == await file_id_of(client, guid)
    assert await recording_comments(client, hidden_task) == []
