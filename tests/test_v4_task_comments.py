"""POST /v4/tasks/{id}/comments: text, files, field updates, closing, reassigning, and answers
to the customer in the task's channel; each recorded so that the task's history shows it."""

from __future__ import annotations

import hashlib

import pytest

from frontdesk.core import forms
from frontdesk.core.forms import FieldSpec

from factories import (
    FIELDS as CHAT_FIELDS,
)
from factories import (
    attachments_of,
    channels_of,
    comments_of,
    db_of,
    make_connector,
    make_form,
    make_v4_agent,
    nulls_in,
    task_of,
    upload_v4,
    v4_task,
    values_of,
)

FIELDS = (
    FieldSpec("Subject", "text"),
    FieldSpec("Amount", "money"),
    FieldSpec("Channel", "choice", choices=("Telegram", "VK")),
)


async def comment(client, agent, task_id, **body):
    return await client.post(f"/v4/tasks/{task_id}/comments", headers=agent.headers, json=body)


async def commented(client, agent, task_id, **body) -> dict:
    """The task the comment answers with, after checking it was accepted."""
    response = await comment(client, agent, task_id, **body)
    assert response.status_code == 200, response.text
    task: dict = response.json()["task"]
    return task


async def test_a_comment_answers_the_task_with_it_last(client):
    agent = await make_v4_agent(client)
    task = await v4_task(client, agent, text="Printer")
    answered = await commented(client, agent, task["id"], text="Restarted it")
    _, last = answered["comments"]
    assert (last["text"], last["author"]["id"]) == ("Restarted it", agent.user_id)
    assert answered["last_note_id"] == last["id"]
    assert answered["text"] == "Printer"
    stored = (await comments_of(client, task["id"]))[-1]
    assert (stored["direction"], stored["author_id"], stored["action"]) == (
        "internal",
        agent.user_id,
        None,
    )
    assert nulls_in(answered) == []


async def test_formatted_text_is_sanitised_as_everywhere(client):
    agent = await make_v4_agent(client)
    task = await v4_task(client, agent, text="Order")
    html = (
        '<b>Paid</b> <script>alert(1)</script><mark data-color="purple">late</mark> '
        '<a href="javascript:alert(1)">x</a> <a href="https://shop.example/1">order</a>'
    )
    answered = await commented(client, agent, task["id"], formatted_text=html)
    last = answered["comments"][-1]
    assert last["formatted_text"] == (
        '<b>Paid</b> <mark>late</mark> <a>x</a> <a href="https://shop.example/1">order</a>'
    )
    assert last["text"] == "Paid late x order"


async def test_attachments_are_the_users_own_uploads(client):
    ann = await make_v4_agent(client, email="ann@example.com")
    bob = await make_v4_agent(client, email="bob@example.com", work_phone=None)
    task = await v4_task(client, ann, text="Invoice")
    mine = await upload_v4(client, ann, "invoice.pdf", b"%PDF invoice")
    answered = await commented(client, ann, task["id"], attachments=[mine, {"guid": mine}])
    [attached] = answered["comments"][-1]["attachments"]
    assert (attached["name"], attached["size"]) == ("invoice.pdf", 12)
    assert attached["md5"] == hashlib.md5(b"%PDF invoice").hexdigest()
    assert answered["attachments"] == [attached]
    stored = (await comments_of(client, task["id"]))[-1]
    assert await attachments_of(client, stored["id"]) == [mine]
    theirs = await upload_v4(client, bob)
    refused = await comment(client, ann, task["id"], text="x", attachments=[theirs])
    assert (refused.status_code, refused.json()["error_code"]) == (
        400,
        "unrecognized_attachment_id",
    )


async def test_finishing_and_reopening_are_recorded(client):
    agent = await make_v4_agent(client)
    task = await v4_task(client, agent, text="Printer")
    finished = await commented(client, agent, task["id"], text="Fixed", action="finished")
    assert finished["comments"][-1]["action"] == "finished"
    assert finished["close_date"] >= finished["create_date"]
    assert (await task_of(client, task["id"]))["closed_at"] is not None
    reopened = await commented(client, agent, task["id"], action="reopened")
    assert "close_date" not in reopened
    last = reopened["comments"][-1]
    assert last["action"] == "reopened" and "text" not in last
    assert (await task_of(client, task["id"]))["closed_at"] is None


async def test_reassigning_by_id_or_email_changes_the_responsible(client):
    ann = await make_v4_agent(client, email="ann@example.com")
    bob = await make_v4_agent(client, email="bob@example.com", work_phone=None)
    task = await v4_task(client, ann, text="Printer")
    by_id = await commented(client, ann, task["id"], reassign_to={"id": bob.user_id})
    assert by_id["responsible"]["id"] == bob.user_id
    assert by_id["comments"][-1]["reassigned_to"]["email"] == bob.email
    by_email = await commented(client, ann, task["id"], reassign_to={"email": "ANN@example.com"})
    assert by_email["responsible"]["id"] == ann.user_id
    stored = (await comments_of(client, task["id"]))[-1]
    assert stored["changes"] == {"reassigned_to": ann.user_id}


async def test_field_updates_change_values_and_stay_in_the_history(client):
    agent = await make_v4_agent(client)
    form_id = await make_form(client, "Orders", FIELDS)
    form = await db_of(client).read(forms.load_form, form_id)
    ids = {code: found.id for code, found in form.fields.items()}
    task = await v4_task(
        client, agent, form_id=form_id, fields=[{"code": "Subject", "value": "Old"}]
    )
    answered = await commented(
        client,
        agent,
        task["id"],
        field_updates=[
            {"id": ids["Amount"], "value": 99.9},
            {"name": "Channel", "value": {"choice_ids": [2]}},
            {"code": "Subject", "value": None},
        ],
    )
    assert await values_of(client, task["id"]) == {"Amount": "99.9", "Channel": "VK"}
    assert answered["comments"][-1]["field_updates"] == [
        {"id": ids["Amount"], "type": "money", "name": "Amount", "code": "Amount", "value": 99.9},
        {"id": ids["Channel"], "type": "multiple_choice", "name": "Channel", "code": "Channel",
         "value": {"choice_ids": [2], "choice_names": ["VK"]}},
        {"id": ids["Subject"], "type": "text", "name": "Subject", "code": "Subject"},
    ]  # fmt: skip
    stored = (await comments_of(client, task["id"]))[-1]
    assert stored["changes"]["field_updates"][0] == {
        "id": ids["Amount"],
        "code": "Amount",
        "name": "Amount",
        "type": "money",
        "value": "99.9",
    }


async def test_an_answer_in_the_channel_goes_out_through_the_tasks_chat(client):
    agent = await make_v4_agent(client)
    connector = await make_connector(client)
    message = await client.post(
        "/v1/getmessage",
        headers=connector.headers,
        json={
            "account_id": connector.account_id,
            "channel_id": "chat-1",
            "sender_name": "Paul Jones",
            "message_type": "VK",
            "message_text": "Where is my order?",
        },
    )
    task_id = message.json()["tasks"][0]["task_id"]
    answered = await commented(client, agent, task_id, text="On its way", channel={"type": "vk"})
    customer, answer = answered["comments"]
    assert customer["channel"] == {"type": "vk", "from": {"name": "Paul Jones"}}
    assert answer["channel"] == {"type": "vk", "to": {"name": "Paul Jones"}}
    assert answer["author"]["id"] == agent.user_id
    [chat] = await channels_of(client)
    stored = (await comments_of(client, task_id))[-1]
    assert (stored["direction"], stored["channel_id"], stored["message_type"]) == (
        "out",
        chat["id"],
        "VK",
    )
    assert stored["send_to_external_channel"] is True


async def test_an_answer_goes_only_to_a_chat_of_the_type_it_names(client):
    """A VK chat's task: a Telegram or e-mail answer is refused, not carried by VK; "custom"
    (an integration's own channel) takes the task's chat; a chat of a message type Pyrus has
    no type for takes any named type."""
    agent = await make_v4_agent(client)
    typed = await make_connector(client)
    untyped = await make_connector(  # (a form without message types keeps the one sent)
        client,
        account_id="acc-2",
        name="Pager bridge",
        fields=tuple(spec for spec in CHAT_FIELDS if spec.code != "MessageType"),
    )

    async def chat_task(channel_id: str, message_type: str, connector=typed) -> int:
        message = await client.post(
            "/v1/getmessage",
            headers=connector.headers,
            json={
                "account_id": connector.account_id,
                "channel_id": channel_id,
                "message_type": message_type,
                "message_text": "Where is my order?",
            },
        )
        task_id: int = message.json()["tasks"][0]["task_id"]
        return task_id

    vk_task = await chat_task("vk-1", "VK")
    for wrong in ("telegram", "email"):
        refused = await comment(client, agent, vk_task, text="x", channel={"type": wrong})
        assert refused.status_code == 400, refused.text
        assert refused.json() == {
            "error_code": "validation_error",
            "error": f"Task {vk_task} has no {wrong} chat to answer in",
        }
    assert len(await comments_of(client, vk_task)) == 1  # nothing recorded, nothing sent
    await commented(client, agent, vk_task, text="ok", channel={"type": "custom"})
    await commented(client, agent, vk_task, text="ok", channel="vk")
    other_task = await chat_task("pager-1", "Pager", untyped)  # (no Pyrus type has its name)
    await commented(client, agent, other_task, text="ok", channel={"type": "telegram"})


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "text_missing"),
        ({"text": "  \n "}, "text_missing"),
        ({"formatted_text": "<script>alert(1)</script>"}, "text_missing"),
        ({"text": "x", "action": "done"}, "invalid_value_format"),
        ({"text": "x" * 10_001}, "too_large_message_text"),
        ({"formatted_text": "<b>x</b>" * 1_500}, "too_large_message_text"),
        ({"text": "x", "attachments": ["g"] * 101}, "too_many_attachments"),
        ({"text": "x", "attachments": ["50b15ea9-41aa-4820-8350-8c6a3a16ed84"]},
         "unrecognized_attachment_id"),
        ({"reassign_to": {"id": 999999}}, "invalid_person_id"),
        ({"reassign_to": {"email": "nobody@example.com"}}, "invalid_email"),
        ({"reassign_to": {}}, "person_identity_missing"),
        ({"field_updates": [{"code": "Subject", "value": "x"}]}, "task_has_no_form"),
        ({"text": "x", "channel": {"type": "telegram"}}, "validation_error"),
        ({"channel": "telegram"}, "text_missing"),
        ({"text": "x", "channel": {}}, "invalid_value_format"),
        ({"text": "x", "channel": {"type": "no_such_channel"}}, "invalid_value_format"),
        ({"text": "x", "reassign_to": 0}, "validation_error"),
        ({"text": "x", "action": 5}, "validation_error"),
        ({"text": ["x"]}, "validation_error"),
    ],
)  # fmt: skip
async def test_bad_comments_are_refused_with_pyrus_codes_and_change_nothing(client, body, code):
    agent = await make_v4_agent(client)
    task = await v4_task(client, agent, text="Printer")
    response = await comment(client, agent, task["id"], **body)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == code
    assert len(await comments_of(client, task["id"])) == 1
    assert (await task_of(client, task["id"]))["responsible_id"] is None


@pytest.mark.parametrize(
    ("update", "code"),
    [
        ({"id": 999999, "value": "x"}, "invalid_field_id"),
        ({"code": "Amount", "value": "lots"}, "invalid_value_format"),
        ({"name": "Channel", "value": "Fax"}, "invalid_value_format"),
    ],
)
async def test_bad_field_updates_are_refused(client, update, code):
    agent = await make_v4_agent(client)
    form_id = await make_form(client, "Orders", FIELDS)
    task = await v4_task(client, agent, form_id=form_id, text="x")
    response = await comment(client, agent, task["id"], field_updates=[update], action="finished")
    assert (response.status_code, response.json()["error_code"]) == (400, code)
    assert (await task_of(client, task["id"]))["closed_at"] is None
    assert await values_of(client, task["id"]) == {}


@pytest.mark.parametrize(("body", "code"), [(b"", "empty_body"), (b"{x", "invalid_json")])
async def test_malformed_comment_bodies(client, body, code):
    agent = await make_v4_agent(client)
    task = await v4_task(client, agent, text="Printer")
    response = await client.post(
        f"/v4/tasks/{task['id']}/comments", headers=agent.headers, content=body
    )
    assert (response.status_code, response.json()["error_code"]) == (400, code)


async def test_null_lists_are_empty_ones(client):
    agent = await make_v4_agent(client)
    task = await v4_task(client, agent, text="Printer", fields=None, attachments=None)
    answered = await commented(
        client, agent, task["id"], text="ok", field_updates=None, attachments=None
    )
    assert answered["comments"][-1]["text"] == "ok"
