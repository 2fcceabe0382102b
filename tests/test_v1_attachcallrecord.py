"""POST /v1/attachcallrecord: a call's recording, found by task, external id or numbers.

What POST /v4/integrations/attachcallrecord does alike is tested here once, over both APIs
(the `line` fixture); test_v4_telephony_records.py holds what only v4 does."""

from __future__ import annotations

import pytest

from factories import (
    APIS,
    TELEPHONY_FIELDS,
    add_account,
    assert_attached,
    assert_not_attached,
    attachments_of,
    calls_of,
    file_id_of,
    make_caller,
    recording_comments,
    set_enabled,
    upload,
    user_file,
    values_of,
)

FROM, TO = "+79774221338", "+74953009080"
MISSING_GUID = "08923d83-255b-4f18-b0eb-5c4d3b9bf1d2"
FIND_CALL = "Required parameters not specified: external_id, task_id or from_number and to_number"


async def register(client, caller, **body):
    """A call registered through the caller's API; its task id."""
    payload = {"account_id": caller.connector.account_id, "from_number": FROM, "to_number": TO}
    response = await client.post(caller.path("call"), headers=caller.headers, json=payload | body)
    task_id, _ = caller.landed(response)
    return task_id


async def attach(client, caller, **body):
    return await client.post(caller.path("attachcallrecord"), headers=caller.headers, json=body)


async def record(client, caller, name: str = "rec.wav", data: bytes = b"RIFF") -> str:
    """A file the caller may attach: its extension's upload on v1, the user's own on v4."""
    if caller.api == "v1":
        return await upload(client, caller.connector, name, data)
    return await user_file(client, caller.user_id, name)


@pytest.fixture(params=APIS)
async def line(client, request):
    """An account on the telephony form, who calls either API on it, and one call with an
    external id (pbx-1)."""
    caller = await make_caller(client, request.param, fields=TELEPHONY_FIELDS)
    return caller, await register(client, caller, external_id="pbx-1")


# --- what both APIs do alike --------------------------------------------------------------


async def test_attach_by_task_id(client, line):
    caller, task_id = line
    guid = await record(client, caller, "rec.wav", b"RIFF....WAVE")
    response = await attach(
        client, caller, account_id=caller.connector.account_id, task_id=task_id, record_file=guid
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {}
    await assert_attached(client, task_id, guid)
    if caller.api == "v4":  # a user's quota is counted; the task shows the telephony channel
        assert "x-ratelimit-remaining" in response.headers
        task = (await client.get(f"/v4/tasks/{task_id}", headers=caller.headers)).json()["task"]
        assert task["comments"][-1]["channel"] == {"type": "api_telephony"}


@pytest.mark.parametrize("with_account_id", [True, False])
async def test_attach_by_external_id(client, line, with_account_id):
    caller, task_id = line
    other_task = await register(client, caller, external_id="pbx-2", from_number="+7111")
    guid = await record(client, caller, "rec.mp3", b"ID3")
    named = {"account_id": caller.connector.account_id} if with_account_id else {}
    response = await attach(client, caller, external_id="pbx-1", record_file=guid, **named)
    assert response.json() == {}
    await assert_attached(client, task_id, guid)
    assert await recording_comments(client, other_task) == []


@pytest.mark.parametrize("names", [("from_number", "to_number"), ("from", "to")])
async def test_attach_by_the_from_and_to_pair(client, line, names):
    caller, task_id = line
    other_task = await register(client, caller, from_number="+7111")
    guid = await record(client, caller, "rec.ogg", b"OggS")
    response = await attach(
        client,
        caller,
        account_id=caller.connector.account_id,
        record_file=guid,
        **dict(zip(names, (FROM, TO), strict=True)),
    )
    assert response.json() == {}
    await assert_attached(client, task_id, guid)
    assert await recording_comments(client, other_task) == []


async def test_no_way_to_find_the_call_is_required_parameters_not_specified(client, line):
    caller, task_id = line
    guid = await record(client, caller)
    for extra in ({}, {"from_number": FROM}, {"to": TO}, {"external_id": ""}):
        response = await attach(
            client, caller, account_id=caller.connector.account_id, record_file=guid, **extra
        )
        assert response.status_code == 400
        assert response.json() == {
            "error_code": "required_parameters_not_specified",
            "error": FIND_CALL,
        }
    await assert_not_attached(client, task_id)


async def test_missing_record_file_is_named(client, line):
    caller, task_id = line
    for extra in ({}, {"record_file": ""}):
        response = await attach(client, caller, task_id=task_id, **extra)
        assert response.status_code == 400
        assert response.json() == {
            "error_code": "required_parameters_not_specified",
            "error": "Required parameters not specified: record_file",
        }
    await assert_not_attached(client, task_id)


@pytest.mark.parametrize("name", ["a.ac3", "b.mp3", "c.ogg", "d.wav", "e.wma", "F.MP3", "F.WAV"])
async def test_audio_formats_are_accepted(client, line, name):
    caller, task_id = line
    guid = await record(client, caller, name, b"audio")
    response = await attach(client, caller, task_id=task_id, record_file=guid)
    assert response.status_code == 200, response.text
    assert response.json() == {}
    await assert_attached(client, task_id, guid)


@pytest.mark.parametrize("name", ["notes.txt", "photo.jpg", "recording", "rec.wav.exe", "mp3"])
async def test_other_formats_are_unsupported_record_file_format(client, line, name):
    caller, task_id = line
    guid = await record(client, caller, name, b"not audio")
    response = await attach(client, caller, task_id=task_id, record_file=guid)
    assert response.status_code == 400
    assert response.json()["error_code"] == "unsupported_record_file_format"
    await assert_not_attached(client, task_id)


async def test_unknown_account_is_unrecognized_account_id(client, line):
    caller, task_id = line
    guid = await record(client, caller)
    response = await attach(client, caller, account_id="nobody", task_id=task_id, record_file=guid)
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_account_id"
    await assert_not_attached(client, task_id)


@pytest.mark.parametrize("with_account_id", [True, False])
async def test_disabled_account_is_webhook_is_disabled(client, line, with_account_id):
    caller, task_id = line
    guid = await record(client, caller)
    await set_enabled(caller.connector, False)
    body = {"task_id": task_id, "record_file": guid}
    if with_account_id:
        body["account_id"] = caller.connector.account_id
    response = await attach(client, caller, **body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "webhook_is_disabled"
    await assert_not_attached(client, task_id)


async def test_bad_mapping_value_is_a_warning_and_the_record_still_attached(client, line):
    caller, task_id = line
    guid = await record(client, caller)
    response = await attach(
        client,
        caller,
        task_id=task_id,
        record_file=guid,
        mappings=[
            {"code": "Rating", "value": 7},
            {"code": "CallDuration", "value": "42"},
            {"code": "RatingDate", "value": "2021-12-23"},
        ],
    )
    assert response.status_code == 200
    body = response.json()
    assert body["error_code"] == "invalid_field_mapping_code"
    assert "Rating (one of 1|2|3|4|5, got '7')" in body["error"]
    assert await values_of(client, task_id) == {"CallDuration": "42", "RatingDate": "2021-12-23"}
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
        {"mappings": [{"code": "Rating", "value": "v" * 301}]},
        {"mappings": [{"code": "RatingComment", "value": "v" * 301}]},
        {"external_id": "e" * 301},
        {"from_number": "7" * 101, "to_number": TO},
    ],
)
async def test_wrong_types_and_lengths_are_validation_error(client, line, extra):
    caller, task_id = line
    guid = await record(client, caller)
    response = await attach(client, caller, **{"task_id": task_id, "record_file": guid, **extra})
    assert response.status_code == 400
    assert response.json()["error_code"] == "validation_error"
    await assert_not_attached(client, task_id)


# --- what only v1 is tested for here -------------------------------------------------------


async def test_attach_by_external_id_sent_as_a_number(client):
    caller = await make_caller(client, "v1")
    task_id = await register(client, caller, external_id="777")
    guid = await record(client, caller, "rec.mp3", b"ID3")
    response = await attach(client, caller, external_id=777, record_file=guid)
    assert response.json() == {}
    await assert_attached(client, task_id, guid)


async def test_the_pair_finds_the_latest_call_between_the_numbers(client):
    caller = await make_caller(client, "v1", routing="always_new")
    await register(client, caller)
    latest = await register(client, caller)
    guid = await record(client, caller)
    response = await attach(client, caller, from_number=FROM, to_number=TO, record_file=guid)
    assert response.json() == {}
    await assert_attached(client, latest, guid)


async def test_account_id_is_optional(client):
    caller = await make_caller(client, "v1")
    task_id = await register(client, caller)
    guid = await record(client, caller)
    response = await attach(client, caller, task_id=task_id, record_file=guid)
    assert response.json() == {}
    await assert_attached(client, task_id, guid)


async def test_unknown_record_file_is_unrecognized_attachment_id(client):
    caller = await make_caller(client, "v1")
    task_id = await register(client, caller)
    response = await attach(client, caller, task_id=task_id, record_file=MISSING_GUID)
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_attachment_id"
    assert MISSING_GUID in response.json()["error"]
    assert await recording_comments(client, task_id) == []


async def test_record_file_of_another_extension_is_unrecognized(client):
    ours = await make_caller(client, "v1")
    theirs = await make_caller(client, "v1", account_id="theirs", name="Other")
    task_id = await register(client, ours)
    foreign = await record(client, theirs)
    response = await attach(client, ours, task_id=task_id, record_file=foreign)
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_attachment_id"


@pytest.mark.parametrize(
    "finder",
    [
        {"task_id": 987654},
        {"external_id": "never-registered"},
        {"from_number": "+70000000000", "to_number": TO},
    ],
)
async def test_unknown_call_is_unrecognized_call_id(client, finder):
    caller = await make_caller(client, "v1")
    task_id = await register(client, caller, external_id="ext-1")
    guid = await record(client, caller)
    response = await attach(
        client, caller, account_id=caller.connector.account_id, record_file=guid, **finder
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_call_id"
    assert await recording_comments(client, task_id) == []


async def test_task_without_a_call_is_unrecognized_call_id(client):
    caller = await make_caller(client, "v1")
    made = await client.post(
        "/v1/task", headers=caller.headers, json={"account_id": caller.connector.account_id}
    )
    guid = await record(client, caller)
    response = await attach(client, caller, task_id=made.json()["task_ids"][0], record_file=guid)
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_call_id"


async def test_call_of_another_extension_is_unrecognized_call_id(client):
    ours = await make_caller(client, "v1")
    theirs = await make_caller(client, "v1", account_id="theirs", name="Other")
    their_task = await register(client, theirs, external_id="ext-1")
    guid = await record(client, ours)
    for finder in ({"task_id": their_task}, {"external_id": "ext-1"}, {"from": FROM, "to": TO}):
        response = await attach(client, ours, record_file=guid, **finder)
        assert response.status_code == 400
        assert response.json()["error_code"] == "unrecognized_call_id"
    assert await recording_comments(client, their_task) == []


async def test_a_task_the_extension_may_not_reach_answers_as_a_missing_one(client):
    """Another extension's task, or a chat system's, is not told from a task that does not
    exist: the same code and the same words, so that task ids cannot be probed."""
    from factories import make_planfix, planfix_call

    ours = await make_caller(client, "v1")
    theirs = await make_caller(client, "v1", account_id="theirs", name="Other")
    their_task = (
        await client.post("/v1/task", headers=theirs.headers, json={"account_id": "theirs"})
    ).json()["task_ids"][0]
    provider = await make_planfix(client)
    await add_account(ours.connector, "on-chats", form_id=provider.form_id)
    chat = {"cmd": "newMessage", "providerId": provider.provider_id, "chatId": "c1"}
    chat |= {"planfix_token": provider.planfix_token, "message": "Hello"}
    chat_task = (await planfix_call(client, chat)).json()["number"]
    guid = await record(client, ours)
    answers = []
    for task_id, account_id in (
        (their_task, None),
        (their_task, ours.connector.account_id),
        (chat_task, "on-chats"),
        (chat_task + 1000, None),
    ):
        named = {"account_id": account_id} if account_id else {}
        response = await attach(client, ours, task_id=task_id, record_file=guid, **named)
        assert response.status_code == 400
        answers.append(response.json()["error"].replace(str(task_id), "N"))
    assert set(answers) == {"No task N. Request not processed"}


async def test_call_of_another_account_is_unrecognized_for_this_account(client):
    caller = await make_caller(client, "v1")
    await add_account(caller.connector, "acc-2")
    task_id = await register(client, caller, account_id="acc-2", external_id="ext-1")
    guid = await record(client, caller)
    response = await attach(
        client,
        caller,
        account_id=caller.connector.account_id,
        external_id="ext-1",
        record_file=guid,
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_call_id"
    right = await attach(client, caller, account_id="acc-2", external_id="ext-1", record_file=guid)
    assert right.json() == {}
    await assert_attached(client, task_id, guid)


async def test_the_documents_example_mappings(client):
    """The example's StartTime/EndTime are not codes of this form; Rating comes as a number."""
    caller = await make_caller(client, "v1")
    task_id = await register(client, caller)
    guid = await record(client, caller)
    response = await attach(
        client,
        caller,
        account_id=caller.connector.account_id,
        task_id=task_id,
        record_file=guid,
        mappings=[
            {"code": "StartTime", "value": "2021-12-23T00:11:32Z"},
            {"code": "EndTime", "value": "2021-12-23T00:24:02Z"},
            {"code": "Rating", "value": 5},
            {"code": "CallStartTime", "value": "2021-12-23T03:11:32+03:00"},
        ],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error_code"] == "invalid_field_mapping_code"
    assert "StartTime" in body["error"] and "EndTime" in body["error"]
    assert body["warnings"] == [
        {"error_code": "invalid_field_mapping_code", "error": body["error"]}
    ]
    assert await values_of(client, task_id) == {
        "Rating": "5",
        "CallStartTime": "2021-12-23T00:11:32Z",
    }
    await assert_attached(client, task_id, guid)


async def test_a_second_recording_replaces_the_calls_record(client):
    caller = await make_caller(client, "v1")
    task_id = await register(client, caller)
    first = await record(client, caller, "one.wav", b"RIFF1")
    second = await record(client, caller, "two.mp3", b"ID3")
    for guid in (first, second):
        response = await attach(client, caller, task_id=task_id, record_file=guid)
        assert response.json() == {}
    assert (await calls_of(client))[0]["record_file_id"] == await file_id_of(client, second)
    comments = await recording_comments(client, task_id)
    assert [await attachments_of(client, c["id"]) for c in comments] == [[first], [second]]
