"""POST /v1/getmessage: a customer's message, routed to its conversation's task.

Its account's errors (unknown, disabled) are tested with every method that names an account,
in test_v1_call.py."""

from __future__ import annotations

import asyncio

import pytest

from frontdesk.core import tasks

from factories import (
    FIELDS,
    add_account,
    attachments_of,
    channels_of,
    close_task,
    comments_of,
    db_of,
    make_agent,
    make_connector,
    nulls_in,
    task_of,
    tasks_of,
    upload,
    values_of,
)

MISSING_GUID = "50b15ea9-41aa-4820-8350-8c6a3a16ed84"

#: the request of the document's curl example, byte for byte in meaning
SEED_EXAMPLE = {
    "account_id": "uniqueID12345",
    "channel_id": 87654321,
    "sender_name": "Paul Jones",
    "message_type": "Telegram",
    "message_text": "Hello! Could you please move the delivery to Thursday?",
    "mappings": [
        {"code": "SenderName", "value": "Paul Jones"},
        {"code": "Subject", "value": "Hello! Could you please move the delivery to Thursday?"},
    ],
    "attachments": ["50b15ea9-41aa-4820-8350-8c6a3a16ed84", "00464c7d-9bd1-42ac-901b-3beb8e9ecee5"],
}


async def send(client, connector, channel_id="chat-1", text="hello", **body):
    payload = {"account_id": connector.account_id, "channel_id": channel_id}
    if text is not None:
        payload["message_text"] = text
    payload.update(body)
    return await client.post("/v1/getmessage", headers=connector.headers, json=payload)


async def landed(response):
    """(task_id, is_new_task) of a successful answer."""
    assert response.status_code == 200, response.text
    [task] = response.json()["tasks"]
    return task["task_id"], task["is_new_task"]


async def test_first_message_makes_a_task_with_its_comment_and_channel(client):
    connector = await make_connector(client)
    response = await send(client, connector, text="Where is my order?", sender_name="Paul Jones")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    task_id = response.json()["tasks"][0]["task_id"]
    assert response.json() == {"tasks": [{"task_id": task_id, "is_new_task": True}]}
    task = await task_of(client, task_id)
    assert task["form_id"] == connector.form_id
    assert task["account_ref"] == connector.account_ref
    assert task["subject"] == "Where is my order?"
    [channel] = await channels_of(client)
    assert (channel["task_id"], channel["kind"], channel["key"]) == (task_id, "chat", "chat-1")
    assert channel["account_ref"] == connector.account_ref
    assert channel["sender_name"] == "Paul Jones"
    [comment] = await comments_of(client, task_id)
    assert comment["text"] == "Where is my order?"
    assert comment["sender_name"] == "Paul Jones"
    assert comment["direction"] == "in"
    assert comment["channel_id"] == channel["id"]


async def test_the_documents_example_request_works(client):
    connector = await make_connector(client, account_id="uniqueID12345")
    response = await client.post("/v1/getmessage", headers=connector.headers, json=SEED_EXAMPLE)
    assert response.status_code == 200, response.text
    body = response.json()
    task_id = body["tasks"][0]["task_id"]
    assert body["tasks"] == [{"task_id": task_id, "is_new_task": True}]
    # the example's file guids were never uploaded here: a warning, the message still lands
    assert body["error_code"] == "unrecognized_attachment_id"
    assert all(guid in body["error"] for guid in SEED_EXAMPLE["attachments"])
    assert await values_of(client, task_id) == {
        "SenderName": "Paul Jones",
        "Subject": "Hello! Could you please move the delivery to Thursday?",
        "MessageType": "Telegram",
    }
    [channel] = await channels_of(client)
    assert channel["key"] == "87654321"
    assert channel["message_type"] == "Telegram"


async def test_reuse_open_same_channel_same_task_while_open(client):
    connector = await make_connector(client)
    first_id, first_new = await landed(await send(client, connector, text="one"))
    second_id, second_new = await landed(await send(client, connector, text="two"))
    other_id, other_new = await landed(await send(client, connector, "chat-2", "elsewhere"))
    assert (first_new, second_new, other_new) == (True, False, True)
    assert second_id == first_id
    assert other_id != first_id
    assert [c["text"] for c in await comments_of(client, first_id)] == ["one", "two"]
    assert len(await tasks_of(client)) == 2


async def test_reuse_open_closed_task_gets_a_new_task(client):
    connector = await make_connector(client)
    first_id, _ = await landed(await send(client, connector, text="one"))
    await close_task(client, first_id)
    second_id, second_new = await landed(await send(client, connector, text="two"))
    assert second_new is True
    assert second_id != first_id
    assert (await task_of(client, first_id))["closed_at"] is not None
    third_id, third_new = await landed(await send(client, connector, text="three"))
    assert (third_id, third_new) == (second_id, False)
    assert [c["text"] for c in await comments_of(client, first_id)] == ["one"]
    assert [c["text"] for c in await comments_of(client, second_id)] == ["two", "three"]


async def test_concurrent_first_messages_of_a_channel_make_one_task(client):
    connector = await make_connector(client)
    responses = await asyncio.gather(*(send(client, connector, text=f"m{n}") for n in range(8)))
    outcomes = [await landed(response) for response in responses]
    assert len({task_id for task_id, _ in outcomes}) == 1
    assert sorted(is_new for _, is_new in outcomes) == [False] * 7 + [True]
    assert len(await tasks_of(client)) == 1
    assert len(await channels_of(client)) == 1
    assert len(await comments_of(client, outcomes[0][0])) == 8


async def test_always_new_makes_a_task_for_every_message(client):
    connector = await make_connector(client, routing="always_new")
    outcomes = [await landed(await send(client, connector, text=f"m{n}")) for n in range(3)]
    assert [is_new for _, is_new in outcomes] == [True, True, True]
    assert len({task_id for task_id, _ in outcomes}) == 3
    assert len(await tasks_of(client)) == 3


async def test_reopen_closed_reopens_the_channels_task(client):
    connector = await make_connector(client, routing="reopen_closed")
    first_id, _ = await landed(await send(client, connector, text="one"))
    await close_task(client, first_id)
    assert (await task_of(client, first_id))["closed_at"] is not None
    second_id, second_new = await landed(await send(client, connector, text="two"))
    assert (second_id, second_new) == (first_id, False)
    assert (await task_of(client, first_id))["closed_at"] is None
    assert [c["text"] for c in await comments_of(client, first_id)] == ["one", "two"]
    assert len(await tasks_of(client)) == 1


async def test_same_channel_id_in_two_accounts_are_two_conversations(client):
    connector = await make_connector(client)
    await add_account(connector, "acc-2")
    theirs = await make_connector(client, account_id=connector.account_id, name="Other")
    ours_id, _ = await landed(await send(client, connector, "shared"))
    second_account = await client.post(
        "/v1/getmessage",
        headers=connector.headers,
        json={"account_id": "acc-2", "channel_id": "shared", "message_text": "hi"},
    )
    second_id, second_new = await landed(second_account)
    their_id, their_new = await landed(await send(client, theirs, "shared"))
    assert second_new is True and their_new is True
    assert len({ours_id, second_id, their_id}) == 3
    again_id, again_new = await landed(await send(client, connector, "shared"))
    assert (again_id, again_new) == (ours_id, False)


@pytest.mark.parametrize("as_number", [87654321, 87654321.0])
async def test_channel_id_as_a_json_number_equals_the_same_string(client, as_number):
    connector = await make_connector(client)
    first_id, _ = await landed(await send(client, connector, as_number))
    second_id, second_new = await landed(await send(client, connector, "87654321"))
    assert (second_id, second_new) == (first_id, False)
    assert [c["key"] for c in await channels_of(client)] == ["87654321"]


async def test_negative_numeric_channel_id(client):
    connector = await make_connector(client)
    first_id, _ = await landed(await send(client, connector, -1001234567890))
    second_id, _ = await landed(await send(client, connector, "-1001234567890"))
    assert second_id == first_id


async def test_responsible_person_is_answered_with_a_numeric_user_id(client):
    connector = await make_connector(client)
    agent = await make_agent(client, work_phone="+79338762030")
    task_id, _ = await landed(await send(client, connector))
    await db_of(client).write(tasks.set_responsible, task_id, agent.user_id)
    response = await send(client, connector, text="again")
    assert response.json() == {
        "tasks": [
            {
                "task_id": task_id,
                "is_new_task": False,
                "responsible_person": {
                    "user_id": agent.user_id,
                    "first_name": "Ilya",
                    "last_name": "Laserson",
                    "work_phone": "+79338762030",
                },
            }
        ]
    }
    assert isinstance(response.json()["tasks"][0]["responsible_person"]["user_id"], int)


async def test_responsible_without_work_phone_omits_it(client):
    connector = await make_connector(client)
    agent = await make_agent(client, work_phone=None)
    task_id, _ = await landed(await send(client, connector))
    await db_of(client).write(tasks.set_responsible, task_id, agent.user_id)
    response = await send(client, connector, text="again")
    assert response.json()["tasks"][0]["responsible_person"] == {
        "user_id": agent.user_id,
        "first_name": "Ilya",
        "last_name": "Laserson",
    }
    assert nulls_in(response.json()) == []


async def test_known_message_type_is_recorded(client):
    connector = await make_connector(client)
    response = await send(client, connector, message_type="vk")
    task_id, _ = await landed(response)
    assert "error_code" not in response.json()
    [comment] = await comments_of(client, task_id)
    assert comment["message_type"] == "VK"
    assert await values_of(client, task_id) == {"MessageType": "VK"}


async def test_unknown_message_type_is_processed_with_the_forms_first_type(client):
    connector = await make_connector(client)
    response = await send(client, connector, message_type="Skype")
    task_id, is_new = await landed(response)
    body = response.json()
    assert is_new is True
    assert body["error_code"] == "unrecognized_message_type"
    assert "Skype" in body["error"]
    assert body["warnings"] == [{"error_code": "unrecognized_message_type", "error": body["error"]}]
    assert body["error_message"] == body["error"]  # where the document names what was ignored
    [comment] = await comments_of(client, task_id)
    assert comment["message_type"] == "Telegram"
    assert comment["text"] == "hello"
    assert await values_of(client, task_id) == {"MessageType": "Telegram"}


async def test_message_type_is_kept_as_sent_when_the_form_lists_none(client):
    fields = tuple(spec for spec in FIELDS if spec.code != "MessageType")
    connector = await make_connector(client, fields=fields)
    response = await send(client, connector, message_type="Skype")
    task_id, _ = await landed(response)
    assert "error_code" not in response.json()
    [comment] = await comments_of(client, task_id)
    assert comment["message_type"] == "Skype"


async def test_mappings_fill_values_and_unknown_codes_warn(client):
    connector = await make_connector(client)
    response = await send(
        client,
        connector,
        mappings=[
            {"code": "SenderName", "value": "Paul"},
            {"code": "Rating", "value": 5},
            {"code": "PostLink", "value": "x"},
        ],
    )
    task_id, _ = await landed(response)
    body = response.json()
    assert body["error_code"] == "invalid_field_mapping_code"
    assert "PostLink" in body["error"]
    assert await values_of(client, task_id) == {
        "SenderName": "Paul",
        "Rating": "5",
        "MessageType": "Telegram",
    }
    second = await send(client, connector, mappings=[{"code": "SenderName", "value": "Paul J."}])
    assert (await landed(second))[0] == task_id
    assert (await values_of(client, task_id))["SenderName"] == "Paul J."


async def test_empty_mapping_values_fill_nothing_and_keep_what_is_there(client):
    """An empty, blank or null value is a template's empty place, for every field type: no
    warning, and the value an earlier message gave stays (it was stored as "" and shown)."""
    connector = await make_connector(client)
    first = await send(client, connector, mappings=[{"code": "SenderName", "value": "Paul"}])
    task_id, _ = await landed(first)
    empties = [
        {"code": "SenderName", "value": ""},
        {"code": "Subject", "value": "   "},
        {"code": "CallDuration", "value": None},
        {"code": "Rating", "value": ""},
    ]
    second = await send(client, connector, mappings=empties)
    assert (await landed(second))[0] == task_id
    assert "error_code" not in second.json()
    assert await values_of(client, task_id) == {"SenderName": "Paul", "MessageType": "Telegram"}


async def test_message_text_html_is_sanitised_with_plain_text_beside(client):
    connector = await make_connector(client)
    response = await send(
        client,
        connector,
        text=None,
        message_text_html=(
            '<q onclick="x()">Hi</q><script>evil()</script><mark data-color="purple">!</mark>'
        ),
    )
    task_id, _ = await landed(response)
    [comment] = await comments_of(client, task_id)
    assert comment["html"] == "<q>Hi</q><mark>!</mark>"
    assert comment["text"] == "Hi\n!"


async def test_attachments_are_linked_to_the_comment(client):
    connector = await make_connector(client)
    first = await upload(client, connector, "a.jpg")
    second = await upload(client, connector, "b.png", b"\x89PNG")
    response = await send(client, connector, text=None, attachments=[first, second])
    task_id, _ = await landed(response)
    assert "error_code" not in response.json()
    [comment] = await comments_of(client, task_id)
    assert await attachments_of(client, comment["id"]) == [first, second]


async def test_unknown_attachment_with_text_is_a_warning(client):
    connector = await make_connector(client)
    guid = await upload(client, connector)
    response = await send(client, connector, attachments=[MISSING_GUID, guid])
    task_id, _ = await landed(response)
    body = response.json()
    assert body["error_code"] == "unrecognized_attachment_id"
    assert MISSING_GUID in body["error"]
    [comment] = await comments_of(client, task_id)
    assert comment["text"] == "hello"
    assert await attachments_of(client, comment["id"]) == [guid]


async def test_unknown_attachment_without_text_is_an_error(client):
    connector = await make_connector(client)
    response = await send(client, connector, text=None, attachments=[MISSING_GUID])
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_attachment_id"
    assert MISSING_GUID in response.json()["error"]
    assert await tasks_of(client) == []


async def test_over_100_attachments_keeps_the_first_100_with_a_warning(client):
    connector = await make_connector(client)
    guids = [await upload(client, connector, f"f{n}.txt", b"x%d" % n) for n in range(101)]
    response = await send(client, connector, attachments=guids)
    task_id, _ = await landed(response)
    body = response.json()
    assert body["error_code"] == "too_many_attachments"
    assert guids[100] in body["error"]
    assert guids[0] not in body["error"]
    [comment] = await comments_of(client, task_id)
    assert await attachments_of(client, comment["id"]) == guids[:100]


async def test_message_text_limit_is_10000_characters(client):
    connector = await make_connector(client)
    task_id, _ = await landed(await send(client, connector, text="a" * 10_000))
    too_long = await send(client, connector, text="a" * 10_001)
    assert too_long.status_code == 400
    assert too_long.json()["error_code"] == "too_large_message_text"
    html = await send(client, connector, text=None, message_text_html="a" * 10_001)
    assert html.json()["error_code"] == "too_large_message_text"
    assert [len(c["text"]) for c in await comments_of(client, task_id)] == [10_000]


async def test_channel_id_limit_is_300_characters(client):
    connector = await make_connector(client)
    await landed(await send(client, connector, "c" * 300))
    response = await send(client, connector, "c" * 301)
    assert response.status_code == 400
    assert response.json()["error_code"] == "validation_error"
    assert "channel_id" in response.json()["error"]
    assert len(await tasks_of(client)) == 1


async def test_sender_name_limit_is_100_characters(client):
    connector = await make_connector(client)
    task_id, _ = await landed(await send(client, connector, sender_name="n" * 100))
    response = await send(client, connector, "chat-2", sender_name="n" * 101)
    assert response.status_code == 400
    assert response.json()["error_code"] == "validation_error"
    assert "sender_name" in response.json()["error"]
    assert [t["id"] for t in await tasks_of(client)] == [task_id]


async def test_mapping_value_limit_is_300_characters(client):
    connector = await make_connector(client)
    await landed(await send(client, connector, mappings=[{"code": "Subject", "value": "v" * 300}]))
    response = await send(client, connector, mappings=[{"code": "Subject", "value": "v" * 301}])
    assert response.status_code == 400
    assert response.json()["error_code"] == "validation_error"


async def test_missing_account_and_channel_are_both_named(client):
    connector = await make_connector(client)
    response = await client.post(
        "/v1/getmessage", headers=connector.headers, json={"message_text": "hi"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "required_parameters_not_specified",
        "error": "Required parameters not specified: account_id, channel_id",
    }


async def test_message_without_text_or_files_names_message_text(client):
    connector = await make_connector(client)
    for extra in ({}, {"message_text": ""}, {"attachments": []}):
        response = await send(client, connector, text=None, **extra)
        assert response.status_code == 400
        assert response.json() == {
            "error_code": "required_parameters_not_specified",
            "error": "Required parameters not specified: message_text",
        }
    assert await tasks_of(client) == []


@pytest.mark.parametrize(
    "extra",
    [
        {"channel_id": {"id": 1}},
        {"channel_id": True},
        {"sender_name": 5},
        {"message_text": ["hi"]},
        {"message_type": 1},
        {"attachments": MISSING_GUID},
        {"mappings": "Subject"},
    ],
)
async def test_wrong_types_are_validation_error(client, extra):
    connector = await make_connector(client)
    response = await send(client, connector, **extra)
    assert response.status_code == 400
    assert response.json()["error_code"] == "validation_error"
    assert await tasks_of(client) == []


async def test_no_nulls_in_answers(client):
    connector = await make_connector(client)
    for extra in ({}, {"message_type": "Skype", "mappings": [{"code": "X", "value": "y"}]}):
        response = await send(client, connector, sender_name=None, **extra)
        assert response.status_code == 200, response.text
        assert nulls_in(response.json()) == []


async def test_an_over_long_message_type_is_an_unknown_one_and_the_message_is_kept(client):
    """The document: an unknown message type is reported and the message processed; one of
    101 characters is no type a form can have, not a reason to lose the message."""
    connector = await make_connector(client)
    response = await send(client, connector, message_type="T" * 101)
    task_id, _ = await landed(response)
    assert response.json()["error_code"] == "unrecognized_message_type"
    [comment] = await comments_of(client, task_id)
    assert comment["message_type"] == "Telegram" and comment["text"] == "hello"


async def test_every_ignored_guid_is_named_in_error_message(client):
    """`error` is clipped to 300 characters; `error_message` names every ignored guid, as
    the document says."""
    connector = await make_connector(client)
    unknown = [f"{n:08d}-0000-0000-0000-000000000000" for n in range(20)]
    response = await send(client, connector, attachments=unknown)
    await landed(response)
    body = response.json()
    assert body["error_code"] == "unrecognized_attachment_id"
    assert len(body["error"]) <= 300
    assert all(guid in body["error_message"] for guid in unknown)


async def test_too_long_html_is_named_as_the_html_field(client):
    connector = await make_connector(client)
    response = await send(client, connector, message_text="hi", message_text_html="x" * 10_001)
    assert response.status_code == 400
    assert response.json()["error_code"] == "too_large_message_text"
    assert response.json()["error"].startswith("message_text_html has 10001 characters")


async def test_null_lists_are_empty_ones(client):
    """Clients that serialise an empty collection as null (Json.NET's default) are taken."""
    connector = await make_connector(client)
    task_id, _ = await landed(await send(client, connector, mappings=None, attachments=None))
    [comment] = await comments_of(client, task_id)
    assert comment["text"] == "hello"


async def test_what_was_ignored_is_told_in_a_bounded_answer(client):
    """2,000 mappings to a choice field with a value it lacks: each is a warning naming the
    field's choices, but the answer stays small (its lists are capped)."""
    connector = await make_connector(client)
    response = await send(
        client, connector, mappings=[{"code": "MessageType", "value": "Fax"}] * 2_000
    )
    await landed(response)
    body = response.json()
    assert len(response.content) < 100_000
    assert 9_000 < len(body["error_message"]) <= 10_000
    assert body["error_message"].endswith("…")
    assert [len(w["error"]) <= 300 for w in body["warnings"]] == [True]
