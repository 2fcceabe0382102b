"""POST /v4/integrations/attachcallrecord: a user attaches a call's recording.

The call is found by task_id, external_id or the number pair, in whichever extension's account
it was made; the record is a file the user uploaded (or the account's extension did).
"""

from __future__ import annotations

import pytest

from frontdesk.core import forms

from factories import (
    TELEPHONY_FIELDS,
    add_account,
    attachments_of,
    calls_of,
    comments_of,
    file_id_of,
    make_connector,
    make_v4_agent,
    set_enabled,
    upload,
    user_file,
    values_of,
)

FROM, TO = "+79774221338", "+74953009080"
MISSING_GUID = "08923d83-255b-4f18-b0eb-5c4d3b9bf1d2"
FIND_CALL = "Required parameters not specified: external_id, task_id or from_number and to_number"


async def register(client, agent, connector, **body):
    """A call registered through v4; its task id."""
    payload = {"account_id": connector.account_id, "from": FROM, "to": TO, **body}
    response = await client.post("/v4/integrations/call", headers=agent.headers, json=payload)
    assert response.status_code == 200, response.text
    task_id: int = response.json()["task_id"]
    return task_id


async def attach(client, agent, **body):
    return await client.post("/v4/integrations/attachcallrecord", headers=agent.headers, json=body)


async def recording_comments(client, task_id):
    return [c for c in await comments_of(client, task_id) if c["text"] == "Call recording"]


async def assert_attached(client, task_id, guid):
    """The call's record is the file, and one comment in its task carries it."""
    [stored] = [c for c in await calls_of(client) if c["task_id"] == task_id]
    assert stored["record_file_id"] == await file_id_of(client, guid)
    [comment] = await recording_comments(client, task_id)
    assert await attachments_of(client, comment["id"]) == [guid]
    # in the call's own conversation: shown as the telephone channel, as the call is
    call_comment = (await comments_of(client, task_id))[0]
    assert comment["channel_id"] == call_comment["channel_id"] is not None


async def assert_not_attached(client, task_id):
    assert all(c["record_file_id"] is None for c in await calls_of(client))
    assert await recording_comments(client, task_id) == []


@pytest.fixture
async def line(client):
    """An account on the telephony form, a PBX user, and one call with an external id."""
    connector = await make_connector(client, fields=TELEPHONY_FIELDS)
    agent = await make_v4_agent(client)
    task_id = await register(client, agent, connector, external_id="pbx-1")
    return connector, agent, task_id


async def test_by_task_id_with_the_users_upload(client, line):
    connector, agent, task_id = line
    guid = await user_file(client, agent.user_id, "rec.wav")
    response = await attach(
        client, agent, account_id=connector.account_id, task_id=task_id, record_file=guid
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {}
    assert "x-ratelimit-remaining" in response.headers
    await assert_attached(client, task_id, guid)
    task = (await client.get(f"/v4/tasks/{task_id}", headers=agent.headers)).json()["task"]
    assert task["comments"][-1]["channel"] == {"type": "api_telephony"}


async def test_by_external_id_without_account_id(client, line):
    connector, agent, task_id = line
    other_task = await register(client, agent, connector, external_id="pbx-2", from_number="+7111")
    guid = await user_file(client, agent.user_id, "rec.mp3")
    response = await attach(client, agent, external_id="pbx-1", record_file=guid)
    assert response.json() == {}
    await assert_attached(client, task_id, guid)
    assert await recording_comments(client, other_task) == []


@pytest.mark.parametrize("names", [("from_number", "to_number"), ("from", "to")])
async def test_by_the_number_pair(client, line, names):
    connector, agent, task_id = line
    await register(client, agent, connector, from_number="+7111")
    guid = await user_file(client, agent.user_id, "rec.ogg")
    pair = dict(zip(names, (FROM, TO), strict=True))
    response = await attach(
        client, agent, account_id=connector.account_id, record_file=guid, **pair
    )
    assert response.json() == {}
    await assert_attached(client, task_id, guid)


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


@pytest.mark.parametrize("name", ["a.ac3", "b.mp3", "c.ogg", "d.wav", "e.wma", "F.WAV"])
async def test_every_audio_format_is_accepted(client, line, name):
    _, agent, task_id = line
    guid = await user_file(client, agent.user_id, name)
    response = await attach(client, agent, task_id=task_id, record_file=guid)
    assert response.json() == {}
    await assert_attached(client, task_id, guid)


@pytest.mark.parametrize("name", ["notes.txt", "photo.jpg", "recording", "rec.wav.exe", "mp3"])
async def test_other_formats_are_unsupported_record_file_format(client, line, name):
    _, agent, task_id = line
    guid = await user_file(client, agent.user_id, name)
    response = await attach(client, agent, task_id=task_id, record_file=guid)
    assert response.status_code == 400
    assert response.json()["error_code"] == "unsupported_record_file_format"
    await assert_not_attached(client, task_id)


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


async def test_no_way_to_find_the_call_is_required_parameters_not_specified(client, line):
    connector, agent, task_id = line
    guid = await user_file(client, agent.user_id)
    for extra in ({}, {"from_number": FROM}, {"to": TO}, {"external_id": ""}):
        response = await attach(
            client, agent, account_id=connector.account_id, record_file=guid, **extra
        )
        assert response.status_code == 400
        assert response.json() == {
            "error_code": "required_parameters_not_specified",
            "error": FIND_CALL,
        }
    for extra in ({}, {"record_file": ""}):
        response = await attach(client, agent, task_id=task_id, **extra)
        assert response.json() == {
            "error_code": "required_parameters_not_specified",
            "error": "Required parameters not specified: record_file",
        }
    await assert_not_attached(client, task_id)


async def test_unknown_account_is_unrecognized_account_id(client, line):
    _, agent, task_id = line
    guid = await user_file(client, agent.user_id)
    response = await attach(client, agent, account_id="nobody", task_id=task_id, record_file=guid)
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_account_id"
    await assert_not_attached(client, task_id)


@pytest.mark.parametrize("with_account_id", [True, False])
async def test_disabled_account_is_webhook_is_disabled(client, line, with_account_id):
    connector, agent, task_id = line
    guid = await user_file(client, agent.user_id)
    await set_enabled(connector, False)
    body = {"task_id": task_id, "record_file": guid}
    if with_account_id:
        body["account_id"] = connector.account_id
    response = await attach(client, agent, **body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "webhook_is_disabled"
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


async def test_a_bad_mapping_value_is_a_warning_and_the_record_still_attached(client, line):
    _, agent, task_id = line
    guid = await user_file(client, agent.user_id)
    response = await attach(
        client,
        agent,
        task_id=task_id,
        record_file=guid,
        mappings=[{"code": "Rating", "value": 7}, {"code": "RatingDate", "value": "2021-12-23"}],
    )
    assert response.status_code == 200
    body = response.json()
    assert body["error_code"] == "invalid_field_mapping_code"
    assert "Rating (one of 1|2|3|4|5, got '7')" in body["error"]
    assert await values_of(client, task_id) == {"RatingDate": "2021-12-23"}
    await assert_attached(client, task_id, guid)


@pytest.mark.parametrize(
    "extra",
    [
        {"task_id": "abc"},
        {"task_id": 1.5},
        {"task_id": 2**63},
        {"record_file": 5},
        {"record_file": ["guid"]},
        {"external_id": {"id": 1}},
        {"mappings": [{"code": "RatingComment", "value": "v" * 301}]},
        {"external_id": "e" * 301},
        {"from_number": "7" * 101, "to_number": TO},
    ],
)
async def test_wrong_types_and_lengths_are_validation_error(client, line, extra):
    _, agent, task_id = line
    guid = await user_file(client, agent.user_id)
    response = await attach(client, agent, **{"task_id": task_id, "record_file": guid, **extra})
    assert response.status_code == 400
    assert response.json()["error_code"] == "validation_error"
    await assert_not_attached(client, task_id)


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
