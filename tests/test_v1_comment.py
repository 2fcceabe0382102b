"""POST /v1/comment: a comment (text, HTML, files, field values) on a task of the account's form."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from frontdesk.core.comments import Formatted, NewComment, add_comment_later

from factories import (
    add_account,
    add_account_on_new_form,
    attachments_of,
    comments_of,
    db_of,
    make_connector,
    set_enabled,
    task_of,
    upload,
    values_of,
)

MISSING_GUID = "50b15ea9-41aa-4820-8350-8c6a3a16ed84"


async def new_task(client, connector, account_id=None, **body):
    response = await client.post(
        "/v1/task",
        headers=connector.headers,
        json={"account_id": account_id or connector.account_id, **body},
    )
    assert response.status_code == 200, response.text
    task_id: int = response.json()["task_ids"][0]
    return task_id


async def post_comment(client, connector, task_id, **body):
    return await client.post(
        "/v1/comment",
        headers=connector.headers,
        json={"account_id": connector.account_id, "task_id": task_id, **body},
    )


async def test_comment_answers_empty_object_and_stores_the_comment(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    response = await post_comment(client, connector, task_id, comment_text="New event!")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {}
    [comment] = await comments_of(client, task_id)
    assert comment["text"] == "New event!"
    assert comment["html"] is None
    assert comment["direction"] == "in"
    assert comment["send_to_external_channel"] is False


async def test_comments_are_added_in_order(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector, text="first")
    for text in ("second", "third"):
        assert (await post_comment(client, connector, task_id, comment_text=text)).json() == {}
    assert [c["text"] for c in await comments_of(client, task_id)] == ["first", "second", "third"]


async def test_send_to_external_channel_is_recorded(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    response = await post_comment(
        client, connector, task_id, comment_text="Your order shipped", send_to_external_channel=True
    )
    assert response.status_code == 200, response.text
    assert response.json() == {}
    [comment] = await comments_of(client, task_id)
    assert comment["send_to_external_channel"] is True
    assert comment["direction"] == "out"


async def test_task_id_sent_as_a_numeric_string_is_accepted(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    response = await post_comment(client, connector, str(task_id), comment_text="hi")
    assert response.status_code == 200, response.text
    assert [c["text"] for c in await comments_of(client, task_id)] == ["hi"]


async def test_comment_text_html_is_sanitised_with_plain_text_beside(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    html = (
        '<b>Paid</b> <script>alert(1)</script><mark data-color="purple">late</mark> '
        '<a href="javascript:alert(1)">x</a> <a href="https://shop.example/1">order</a>'
        '<button onclick="steal()">OK</button>'
    )
    response = await post_comment(client, connector, task_id, comment_text_html=html)
    assert response.json() == {}
    [comment] = await comments_of(client, task_id)
    assert comment["html"] == (
        '<b>Paid</b> <mark>late</mark> <a>x</a> <a href="https://shop.example/1">order</a>'
        "<button>OK</button>"
    )
    assert comment["text"] == "Paid late x orderOK"


async def test_mappings_fill_and_update_field_values(client):
    connector = await make_connector(client)
    task_id = await new_task(
        client,
        connector,
        mappings=[{"code": "Subject", "value": "old"}, {"code": "Rating", "value": "1"}],
    )
    response = await post_comment(
        client,
        connector,
        task_id,
        comment_text="rated",
        mappings=[
            {"code": "Subject", "value": "new"},
            {"code": "Rating", "value": 5},
            {"code": "CallStartTime", "value": "2021-12-23T00:11:32+00:00"},
        ],
    )
    assert response.json() == {}
    assert await values_of(client, task_id) == {
        "Subject": "new",
        "Rating": "5",
        "CallStartTime": "2021-12-23T00:11:32Z",
    }


async def test_mappings_alone_change_values_without_a_comment(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    response = await post_comment(
        client, connector, task_id, mappings=[{"code": "Subject", "value": "only a field"}]
    )
    assert response.status_code == 200, response.text
    assert await values_of(client, task_id) == {"Subject": "only a field"}
    assert await comments_of(client, task_id) == []


async def test_unknown_mapping_code_is_a_warning(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    response = await post_comment(
        client,
        connector,
        task_id,
        comment_text="hi",
        mappings=[{"code": "PostLink", "value": "x"}, {"code": "Subject", "value": "kept"}],
    )
    assert response.status_code == 200
    body = response.json()
    assert body["error_code"] == "invalid_field_mapping_code"
    assert "PostLink" in body["error"]
    assert body["warnings"] == [
        {"error_code": "invalid_field_mapping_code", "error": body["error"]}
    ]
    assert await values_of(client, task_id) == {"Subject": "kept"}
    assert [c["text"] for c in await comments_of(client, task_id)] == ["hi"]


async def test_bad_value_is_ignored_with_a_warning(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    response = await post_comment(
        client,
        connector,
        task_id,
        comment_text="hi",
        mappings=[{"code": "CallDuration", "value": "long"}, {"code": "Subject", "value": "kept"}],
    )
    body = response.json()
    assert response.status_code == 200
    assert body["error_code"] == "invalid_field_mapping_code"
    assert "CallDuration" in body["error"]
    assert await values_of(client, task_id) == {"Subject": "kept"}


async def test_attachments_are_linked_to_the_comment_in_order(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    first = await upload(client, connector, "a.jpg")
    second = await upload(client, connector, "b.pdf", b"%PDF-1.4")
    response = await post_comment(
        client, connector, task_id, comment_text="files", attachments=[first, second]
    )
    assert response.json() == {}
    [comment] = await comments_of(client, task_id)
    assert await attachments_of(client, comment["id"]) == [first, second]


async def test_attachments_alone_make_a_comment(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    guid = await upload(client, connector)
    response = await post_comment(client, connector, task_id, attachments=[guid])
    assert response.json() == {}
    [comment] = await comments_of(client, task_id)
    assert comment["text"] == ""
    assert await attachments_of(client, comment["id"]) == [guid]


async def test_unknown_attachment_with_text_is_a_warning(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    guid = await upload(client, connector)
    response = await post_comment(
        client, connector, task_id, comment_text="see file", attachments=[guid, MISSING_GUID]
    )
    assert response.status_code == 200
    body = response.json()
    assert body["error_code"] == "unrecognized_attachment_id"
    assert MISSING_GUID in body["error"]
    assert body["warnings"] == [
        {"error_code": "unrecognized_attachment_id", "error": body["error"]}
    ]
    [comment] = await comments_of(client, task_id)
    assert comment["text"] == "see file"
    assert await attachments_of(client, comment["id"]) == [guid]


async def test_unknown_attachment_without_text_is_an_error(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    response = await post_comment(client, connector, task_id, attachments=[MISSING_GUID])
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_attachment_id"
    assert MISSING_GUID in response.json()["error"]
    assert await comments_of(client, task_id) == []


async def test_file_of_another_extension_is_unrecognized(client):
    ours = await make_connector(client)
    theirs = await make_connector(client, account_id="theirs", name="Other")
    task_id = await new_task(client, ours)
    foreign = await upload(client, theirs)
    response = await post_comment(client, ours, task_id, attachments=[foreign])
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_attachment_id"


async def test_over_100_attachments_keeps_the_first_100_with_a_warning(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    guids = [await upload(client, connector, f"f{n}.txt", b"x%d" % n) for n in range(101)]
    response = await post_comment(
        client, connector, task_id, comment_text="many", attachments=guids
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error_code"] == "too_many_attachments"
    assert guids[100] in body["error"]
    [comment] = await comments_of(client, task_id)
    assert await attachments_of(client, comment["id"]) == guids[:100]


async def test_exactly_100_attachments_is_no_warning(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    guids = [await upload(client, connector, f"f{n}.txt", b"y%d" % n) for n in range(100)]
    response = await post_comment(client, connector, task_id, attachments=guids)
    assert response.json() == {}
    [comment] = await comments_of(client, task_id)
    assert len(await attachments_of(client, comment["id"])) == 100


async def test_unknown_task_is_unrecognized_task_id(client):
    connector = await make_connector(client)
    response = await post_comment(client, connector, 987654, comment_text="hi")
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_task_id"
    assert set(response.json()) == {"error_code", "error"}


async def test_task_of_another_form_is_unrecognized_task_id(client):
    connector = await make_connector(client)
    await add_account_on_new_form(connector, "acc-2")
    other_task = await new_task(client, connector, account_id="acc-2")
    response = await post_comment(client, connector, other_task, comment_text="hi")
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_task_id"
    assert await comments_of(client, other_task) == []
    # the account the task belongs to may comment on it
    own = await client.post(
        "/v1/comment",
        headers=connector.headers,
        json={"account_id": "acc-2", "task_id": other_task, "comment_text": "hi"},
    )
    assert own.json() == {}


async def test_a_planfix_chats_task_is_unrecognized_task_id(client):
    """An extension with an account on a chat system's form cannot write into (or answer
    in) that chat system's chats."""
    from factories import make_planfix, planfix_call

    connector = await make_connector(client)
    provider = await make_planfix(client)
    await add_account(connector, "on-chats", form_id=provider.form_id)
    sent = await planfix_call(
        client,
        {
            "cmd": "newMessage",
            "providerId": provider.provider_id,
            "chatId": "chat-1",
            "planfix_token": provider.planfix_token,
            "message": "Hello",
        },
    )
    chat_task = sent.json()["number"]
    response = await client.post(
        "/v1/comment",
        headers=connector.headers,
        json={
            "account_id": "on-chats",
            "task_id": chat_task,
            "comment_text": "not yours",
            "send_to_external_channel": True,
        },
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_task_id"
    assert [c["text"] for c in await comments_of(client, chat_task)] == ["Hello"]
    # a task an agent made in that form is still the extension's to comment on
    from factories import make_v4_agent, v4_task

    agent = await make_v4_agent(client)
    agent_task = (await v4_task(client, agent, form_id=provider.form_id, text="By an agent"))["id"]
    own = await client.post(
        "/v1/comment",
        headers=connector.headers,
        json={"account_id": "on-chats", "task_id": agent_task, "comment_text": "hi"},
    )
    assert own.json() == {}


async def test_task_of_another_extension_is_unrecognized_task_id(client):
    ours = await make_connector(client)
    theirs = await make_connector(client, account_id="theirs", name="Other")
    their_task = await new_task(client, theirs)
    response = await post_comment(client, ours, their_task, comment_text="hi")
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_task_id"


async def test_task_of_another_extension_on_the_same_form_is_unrecognized(client):
    """Sharing a form does not open one extension's tasks to another."""
    ours = await make_connector(client)
    theirs = await make_connector(client, account_id="theirs", name="Other")
    await add_account(theirs, "theirs-on-our-form", form_id=ours.form_id)
    our_task = await new_task(client, ours)
    response = await client.post(
        "/v1/comment",
        headers=theirs.headers,
        json={"account_id": "theirs-on-our-form", "task_id": our_task, "comment_text": "hi"},
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_task_id"
    assert len(await comments_of(client, our_task)) == 0


async def test_unknown_account_is_unrecognized_account_id(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    response = await client.post(
        "/v1/comment",
        headers=connector.headers,
        json={"account_id": "nobody", "task_id": task_id, "comment_text": "hi"},
    )
    assert response.status_code == 400
    assert response.json()["error_code"] == "unrecognized_account_id"
    assert await comments_of(client, task_id) == []


async def test_disabled_account_is_webhook_is_disabled(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    await set_enabled(connector, False)
    response = await post_comment(client, connector, task_id, comment_text="hi")
    assert response.status_code == 400
    assert response.json()["error_code"] == "webhook_is_disabled"
    assert await comments_of(client, task_id) == []


async def test_missing_account_and_task_are_both_named(client):
    connector = await make_connector(client)
    response = await client.post(
        "/v1/comment", headers=connector.headers, json={"comment_text": "hi"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "required_parameters_not_specified",
        "error": "Required parameters not specified: account_id, task_id",
    }


async def test_comment_with_nothing_to_say_names_comment_text(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    for extra in ({}, {"comment_text": ""}, {"attachments": [], "mappings": []}):
        response = await post_comment(client, connector, task_id, **extra)
        assert response.status_code == 400
        assert response.json() == {
            "error_code": "required_parameters_not_specified",
            "error": "Required parameters not specified: comment_text",
        }


async def test_comment_text_limit_is_10000_characters(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    ok = await post_comment(client, connector, task_id, comment_text="a" * 10_000)
    assert ok.status_code == 200, ok.text
    for field in ("comment_text", "comment_text_html"):
        too_long = await post_comment(client, connector, task_id, **{field: "a" * 10_001})
        assert too_long.status_code == 400
        assert too_long.json()["error_code"] == "too_large_message_text"
    assert [len(c["text"]) for c in await comments_of(client, task_id)] == [10_000]


@pytest.mark.parametrize(
    "extra",
    [
        {"task_id": "abc"},
        {"task_id": 1.5},
        # beyond the 64-bit ids the storage holds
        {"task_id": 2**63},
        {"task_id": [1]},
        {"comment_text": 5},
        {"attachments": MISSING_GUID},
        {"attachments": [1, 2]},
        {"send_to_external_channel": "maybe"},
        {"mappings": {"Subject": "x"}},
        {"mappings": [{"code": "Subject", "value": "v" * 301}]},
    ],
)
async def test_wrong_types_and_lengths_are_validation_error(client, extra):
    connector = await make_connector(client)
    task_id = await new_task(client, connector)
    body = {"account_id": connector.account_id, "task_id": task_id, "comment_text": "hi", **extra}
    response = await client.post("/v1/comment", headers=connector.headers, json=body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "validation_error"
    assert await comments_of(client, task_id) == []


async def test_a_comment_marks_its_task_as_just_active(client):
    """tasks.updated_at (the inbox order) follows the newest comment (a database trigger)."""
    connector = await make_connector(client)
    task_id = await new_task(client, connector, text="first")
    before = (await task_of(client, task_id))["updated_at"]
    await asyncio.sleep(0.01)
    response = await post_comment(client, connector, task_id, comment_text="later")
    assert response.status_code == 200
    after = (await task_of(client, task_id))["updated_at"]
    assert after > before


async def test_a_new_task_carries_its_first_comments_time(client):
    """A unit's rows share one time: the task made with its first comment is not touched
    again by it (the trigger updates a task only for a newer comment)."""
    connector = await make_connector(client)
    task_id = await new_task(client, connector, text="first")
    task = await task_of(client, task_id)
    (comment,) = await comments_of(client, task_id)
    assert task["created_at"] == task["updated_at"] == comment["created_at"]


async def test_an_older_comment_does_not_move_its_task_back(client):
    connector = await make_connector(client)
    task_id = await new_task(client, connector, text="first")
    latest = (await task_of(client, task_id))["updated_at"]

    async def backdated(tx):
        tx.now = latest - timedelta(hours=1)
        add_comment_later(tx, NewComment(task_id, Formatted("from the past")))
        await tx.flush()

    await db_of(client).write(backdated)
    assert (await task_of(client, task_id))["updated_at"] == latest
