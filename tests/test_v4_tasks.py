"""GET /v4/tasks/{id}, POST /v4/tasks and GET /v4/inbox: Pyrus' shapes, checks and access."""

from __future__ import annotations

import re

import pytest

from frontdesk.core import access, forms, users
from frontdesk.core.forms import FieldSpec

from factories import (
    close_task,
    comments_of,
    db_of,
    make_connector,
    make_form,
    make_planfix,
    make_v4_agent,
    nulls_in,
    planfix_call,
    task_of,
    tasks_of,
    upload_v4,
    v4_task,
    values_of,
)

EVERY_TYPE = (
    FieldSpec("Subject", "text", "Subject line"),
    FieldSpec("Amount", "money"),
    FieldSpec("Count", "number"),
    FieldSpec("Started", "datetime"),
    FieldSpec("Urgent", "checkmark"),
    FieldSpec("Channel", "choice", choices=("Telegram", "VK")),
    FieldSpec("Note", "text"),
)
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


async def field_ids(client, form_id: int) -> dict[str, int]:
    form = await db_of(client).read(forms.load_form, form_id)
    return {code: found.id for code, found in form.fields.items()}


async def person(client, user_id: int) -> dict:
    member = await db_of(client).read(users.get_member, user_id)
    found = {
        "id": member.user_id,
        "first_name": member.first_name,
        "last_name": member.last_name,
        "email": member.email,
        "type": "user",
        "banned": False,
    }
    return {**found, "phone": member.work_phone} if member.work_phone else found


async def chat_task(client, connector, **message) -> int:
    """A customer's first message through the Extensions API: a task with a chat channel."""
    response = await client.post(
        "/v1/getmessage",
        headers=connector.headers,
        json={
            "account_id": connector.account_id,
            "channel_id": "chat-1",
            "sender_name": "Paul Jones",
            "message_type": "Telegram",
            "message_text": "Hello!",
            **message,
        },
    )
    assert response.status_code == 200, response.text
    task_id: int = response.json()["tasks"][0]["task_id"]
    return task_id


async def get_task(client, agent, task_id) -> dict:
    response = await client.get(f"/v4/tasks/{task_id}", headers=agent.headers)
    assert response.status_code == 200, response.text
    task: dict = response.json()["task"]
    return task


async def test_a_chat_task_shows_fields_and_the_customers_message(client):
    agent = await make_v4_agent(client)
    connector = await make_connector(client)
    task_id = await chat_task(
        client, connector, mappings=[{"code": "Rating", "value": "4"}, {"code": "CallDuration",
                                                                          "value": "12.50"}]
    )  # fmt: skip
    task = await get_task(client, agent, task_id)
    ids = await field_ids(client, connector.form_id)
    [comment] = await comments_of(client, task_id)
    assert task == {
        "id": task_id,
        "form_id": connector.form_id,
        "subject": "Hello!",
        "create_date": task["create_date"],
        "last_modified_date": task["last_modified_date"],
        "fields": [
            {"id": ids["Subject"], "type": "text", "name": "Subject", "code": "Subject"},
            {"id": ids["SenderName"], "type": "text", "name": "SenderName", "code": "SenderName"},
            {"id": ids["MessageType"], "type": "multiple_choice", "name": "MessageType",
             "code": "MessageType", "value": {"choice_ids": [1], "choice_names": ["Telegram"]}},
            {"id": ids["CallDuration"], "type": "number", "name": "CallDuration",
             "code": "CallDuration", "value": 12.5},
            {"id": ids["CallStartTime"], "type": "due_date_time", "name": "CallStartTime",
             "code": "CallStartTime"},
            {"id": ids["Rating"], "type": "multiple_choice", "name": "Rating", "code": "Rating",
             "value": {"choice_ids": [4], "choice_names": ["4"]}},
            {"id": ids["RatingDate"], "type": "date", "name": "RatingDate", "code": "RatingDate"},
            {"id": ids["PhoneNumberFrom"], "type": "phone", "name": "PhoneNumberFrom",
             "code": "PhoneNumberFrom"},
        ],
        "last_note_id": comment["id"],
        "comments": [
            {
                "id": comment["id"],
                "text": "Hello!",
                "create_date": task["create_date"],
                "channel": {"type": "telegram", "from": {"name": "Paul Jones"}},
            }
        ],
    }  # fmt: skip
    assert DATE_TIME.match(task["create_date"]) and DATE_TIME.match(task["last_modified_date"])


async def test_a_simple_task_has_text_author_responsible_and_a_first_comment(client):
    ann = await make_v4_agent(client, email="ann@example.com")
    bob = await make_v4_agent(client, email="bob@example.com", work_phone=None)
    task = await v4_task(client, ann, text="Help with printer", responsible={"email": bob.email})
    assert task == await get_task(client, ann, task["id"])
    assert task["text"] == "Help with printer"
    assert task["subject"] == "Help with printer"
    assert task["author"] == await person(client, ann.user_id)
    assert task["responsible"] == await person(client, bob.user_id)
    assert "form_id" not in task and "fields" not in task
    [comment] = task["comments"]
    assert (comment["text"], comment["author"]) == ("Help with printer", task["author"])
    assert task["last_note_id"] == comment["id"]
    assert (await task_of(client, task["id"]))["author_id"] == ann.user_id
    assert nulls_in(task) == []


async def test_subject_formatted_text_and_attachments_on_create(client):
    agent = await make_v4_agent(client)
    guid = await upload_v4(client, agent, "scan.pdf", b"%PDF-1.4 scan")
    task = await v4_task(
        client,
        agent,
        subject="Printer",
        formatted_text="<b>Jammed</b> again<script>x()</script>",
        attachments=[guid],
        responsible=agent.user_id,
    )
    assert task["subject"] == "Printer"
    [comment] = task["comments"]
    assert (comment["text"], comment["formatted_text"]) == ("Jammed again", "<b>Jammed</b> again")
    [attached] = comment["attachments"]
    assert (attached["name"], attached["size"]) == ("scan.pdf", len(b"%PDF-1.4 scan"))
    assert attached["url"] == f"http://frontdesk.test/services/attachment?Id={attached['id']}"
    assert task["attachments"] == [attached]
    assert task["responsible"]["id"] == agent.user_id


async def test_a_form_task_takes_fields_by_id_code_or_name_typed_as_pyrus_sends_them(client):
    agent = await make_v4_agent(client)
    form_id = await make_form(client, "Everything", EVERY_TYPE)
    ids = await field_ids(client, form_id)
    task = await v4_task(
        client,
        agent,
        form_id=form_id,
        fields=[
            {"id": ids["Subject"], "value": "Broken"},
            {"code": "Amount", "value": "12.50"},
            {"name": "Count", "value": 3},
            {"id": ids["Started"], "value": "2021-12-23T03:11:32+03:00"},
            {"code": "Urgent", "value": True},
            {"code": "Channel", "value": {"choice_ids": [2]}},
            {"code": "Note", "value": None},
        ],
    )
    values = {f["code"]: f.get("value") for f in task["fields"]}
    assert values == {
        "Subject": "Broken",
        "Amount": 12.5,
        "Count": 3,
        "Started": "2021-12-23T00:11:32Z",
        "Urgent": "checked",
        "Channel": {"choice_ids": [2], "choice_names": ["VK"]},
        "Note": None,
    }
    assert task["form_id"] == form_id and "text" not in task and task["comments"] == []
    assert await values_of(client, task["id"]) == {
        "Subject": "Broken",
        "Amount": "12.5",
        "Count": "3",
        "Started": "2021-12-23T00:11:32Z",
        "Urgent": "checked",
        "Channel": "VK",
    }


@pytest.mark.parametrize(
    "choice", [{"choice_id": 2}, {"choice_names": ["VK"]}, "vk", ["VK"], {"choice_ids": [2]}]
)
async def test_a_choice_is_taken_by_id_or_name(client, choice):
    agent = await make_v4_agent(client)
    form_id = await make_form(client, "Everything", EVERY_TYPE)
    task = await v4_task(
        client, agent, form_id=form_id, fields=[{"code": "Channel", "value": choice}]
    )
    assert await values_of(client, task["id"]) == {"Channel": "VK"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "text_missing"),
        ({"text": "   "}, "text_missing"),
        ({"fields": [{"code": "Subject", "value": "x"}]}, "form_id_missing"),
        ({"form": True, "fields": [{"id": 999999, "value": "x"}]}, "invalid_field_id"),
        ({"form": True, "fields": [{"name": "Nope", "value": "x"}]}, "invalid_field_name"),
        ({"form": True, "fields": [{"code": "Nope", "value": "x"}]}, "invalid_field_code"),
        ({"form": True, "fields": [{"value": "x"}]}, "field_identity_missing"),
        ({"form": True, "fields": [{"id": "{Subject}", "name": "Count", "value": "1"}]},
         "invalid_field_id_name"),
        ({"form": True, "fields": [{"code": "Count", "value": 1}, {"name": "Count", "value": 2}]},
         "duplicate_field"),
        ({"form": True, "fields": [{"code": "Count", "value": "many"}]}, "invalid_value_format"),
        ({"form": True, "fields": [{"code": "Urgent", "value": "perhaps"}]},
         "invalid_value_format"),
        ({"form": True, "fields": [{"code": "Channel", "value": {"choice_ids": [7]}}]},
         "invalid_value_format"),
        ({"form": True, "fields": [{"code": "Channel", "value": {"choice_ids": [1, 2]}}]},
         "invalid_value_format"),
        ({"form": True, "fields": [{"code": "Channel", "value": {"choice": 1}}]},
         "invalid_value_format"),
        ({"form": True, "fields": [{"code": "Count", "value": [[1]]}]}, "invalid_value_format"),
        ({"form": True, "fields": [{"code": "Subject", "value": "x" * 10_001}]},
         "text_field_value_limit_exceeded"),
        ({"text": "x", "responsible": {"id": 999999}}, "invalid_person_id"),
        ({"text": "x", "responsible": {"email": "nobody@example.com"}}, "invalid_email"),
        ({"text": "x", "responsible": {"id": "{me}", "email": "nobody@example.com"}},
         "invalid_person_id_email"),
        ({"text": "x", "responsible": {}}, "person_identity_missing"),
        ({"text": "x" * 10_001}, "too_large_message_text"),
        ({"text": "x", "attachments": ["50b15ea9-41aa-4820-8350-8c6a3a16ed84"]},
         "unrecognized_attachment_id"),
        ({"text": "x", "attachments": [{"url": "https://example.com/a.pdf"}]},
         "unrecognized_attachment_id"),
        ({"text": "x", "attachments": ["g"] * 101}, "too_many_attachments"),
        ({"text": "x", "form_id": 0}, "validation_error"),
        ({"text": "x", "form_id": "seven"}, "validation_error"),
        ({"text": "x", "subject": "s" * 1001}, "validation_error"),
        ({"text": "x", "fields": "none"}, "validation_error"),
    ],
)  # fmt: skip
async def test_create_refuses_bad_input_with_pyrus_codes(client, body, code):
    agent = await make_v4_agent(client)
    form_id = await make_form(client, "Everything", EVERY_TYPE)
    ids = await field_ids(client, form_id)
    if body.pop("form", False):
        body["form_id"] = form_id
    for item in body.get("fields", []) if isinstance(body.get("fields"), list) else []:
        if isinstance(item.get("id"), str):
            item["id"] = ids[item["id"].strip("{}")]
    responsible = body.get("responsible")
    if isinstance(responsible, dict) and responsible.get("id") == "{me}":
        responsible["id"] = agent.user_id
    response = await client.post("/v4/tasks", headers=agent.headers, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == code
    assert await tasks_of(client) == []


@pytest.mark.parametrize(("body", "code"), [(b"", "empty_body"), (b"{x", "invalid_json")])
async def test_create_refuses_malformed_bodies(client, body, code):
    agent = await make_v4_agent(client)
    response = await client.post("/v4/tasks", headers=agent.headers, content=body)
    assert response.status_code == 400
    assert response.json()["error_code"] == code


# --- access -------------------------------------------------------------------------------


async def test_a_member_only_form_hides_its_tasks_but_from_author_and_responsible(client):
    ann = await make_v4_agent(client, email="ann@example.com")
    bob = await make_v4_agent(client, email="bob@example.com", work_phone=None)
    carol = await make_v4_agent(client, email="carol@example.com", work_phone=None)
    form_id = await make_form(client, "Closed", members=(ann.user_id,))
    task = await v4_task(client, ann, form_id=form_id, text="private")
    for outsider, path in ((bob, "/v4/tasks/{id}"), (bob, "/v4/tasks/{id}/comments")):
        url = path.format(id=task["id"])
        if url.endswith("comments"):
            response = await client.post(url, headers=outsider.headers, json={"text": "hi"})
        else:
            response = await client.get(url, headers=outsider.headers)
        assert response.status_code == 403, response.text
        assert response.json()["error_code"] == "access_denied_task"
    refused = await client.post(
        "/v4/tasks", headers=carol.headers, json={"form_id": form_id, "text": "x"}
    )
    assert (refused.status_code, refused.json()["error_code"]) == (403, "access_denied_form")
    # made responsible, bob sees the task and may comment on it
    reassign = await client.post(
        f"/v4/tasks/{task['id']}/comments", headers=ann.headers, json={"reassign_to": bob.user_id}
    )
    assert reassign.status_code == 200, reassign.text
    assert (await get_task(client, bob, task["id"]))["responsible"]["id"] == bob.user_id
    answer = await client.post(
        f"/v4/tasks/{task['id']}/comments", headers=bob.headers, json={"text": "on it"}
    )
    assert answer.status_code == 200, answer.text


async def test_an_agent_who_hands_a_task_on_still_sees_it(client):
    """In a member-only form, the responsible agent (no member) hands the task back: the
    comment is taken, and having commented the agent keeps seeing the task, as a Pyrus
    participant does; one who never took part still does not."""
    ann = await make_v4_agent(client, email="ann@example.com")
    bob = await make_v4_agent(client, email="bob@example.com", work_phone=None)
    carol = await make_v4_agent(client, email="carol@example.com", work_phone=None)
    form_id = await make_form(client, "Closed", members=(ann.user_id,))
    task = await v4_task(client, ann, form_id=form_id, text="private", responsible=bob.user_id)
    handed = await client.post(
        f"/v4/tasks/{task['id']}/comments",
        headers=bob.headers,
        json={"text": "handing back", "reassign_to": {"email": ann.email}},
    )
    assert handed.status_code == 200, handed.text
    assert handed.json()["task"]["responsible"]["id"] == ann.user_id
    assert (await get_task(client, bob, task["id"]))["comments"][-1]["text"] == "handing back"
    outsider = await client.get(f"/v4/tasks/{task['id']}", headers=carol.headers)
    assert outsider.status_code == 403


@pytest.mark.parametrize("task_id", ["999999", "abc", "1" * 30, "-1"])
async def test_an_unknown_or_malformed_task_is_access_denied(client, task_id):
    agent = await make_v4_agent(client)
    response = await client.get(f"/v4/tasks/{task_id}", headers=agent.headers)
    assert response.status_code == 403
    assert response.json()["error_code"] == "access_denied_task"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v4/tasks/{id}"),
        ("GET", "/v4/inbox"),
        ("POST", "/v4/tasks"),
        ("POST", "/v4/tasks/{id}/comments"),
    ],
)
async def test_task_methods_need_a_current_token(client, method, path):
    agent = await make_v4_agent(client)
    task = await v4_task(client, agent, text="x")
    url = path.format(id=task["id"])
    missing = await client.request(method, url, json={"text": "y"})
    assert (missing.status_code, missing.json()["error_code"]) == (401, "token_not_specified")
    await db_of(client).write(users.rotate_security_key, agent.user_id)
    revoked = await client.request(method, url, headers=agent.headers, json={"text": "y"})
    assert (revoked.status_code, revoked.json()["error_code"]) == (401, "revoked_token")
    assert len(await comments_of(client, task["id"])) == 1


# --- the inbox ----------------------------------------------------------------------------


async def test_inbox_lists_open_tasks_of_the_responsible_most_recently_active_first(client):
    ann = await make_v4_agent(client, email="ann@example.com")
    bob = await make_v4_agent(client, email="bob@example.com", work_phone=None)
    first = await v4_task(client, bob, text="first", responsible={"id": ann.user_id})
    second = await v4_task(client, bob, text="second", responsible={"id": ann.user_id})
    closed = await v4_task(client, bob, text="closed", responsible={"id": ann.user_id})
    await v4_task(client, ann, text="bob's", responsible={"id": bob.user_id})
    await close_task(client, closed["id"])

    async def inbox(agent, **params):
        response = await client.get("/v4/inbox", headers=agent.headers, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    listed = await inbox(ann)
    assert [t["id"] for t in listed["tasks"]] == [second["id"], first["id"]]
    assert listed["has_more"] is False
    header = listed["tasks"][0]
    assert header["author"] == await person(client, bob.user_id)
    assert header["responsible"] == await person(client, ann.user_id)
    assert header["subject"] == "second" and "comments" not in header
    comment = await client.post(
        f"/v4/tasks/{first['id']}/comments", headers=bob.headers, json={"text": "ping"}
    )
    assert comment.status_code == 200
    assert [t["id"] for t in (await inbox(ann))["tasks"]] == [first["id"], second["id"]]
    one = await inbox(ann, item_count=1, group_item_count=50)
    assert ([t["id"] for t in one["tasks"]], one["has_more"]) == ([first["id"]], True)


# (int() refuses a string of 4,301 digits or more)
@pytest.mark.parametrize("count", ["0", "x", "1001", "-1", "9" * 5000, "\u0663"])
async def test_inbox_refuses_a_bad_item_count(client, count):
    agent = await make_v4_agent(client)
    response = await client.get(f"/v4/inbox?item_count={count}", headers=agent.headers)
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid_value_format"


async def test_a_chat_systems_echo_naming_an_agent_grants_no_access(client):
    """An echo's author is named by an e-mail the chat system chooses: it makes no one a
    participant of a member-only task."""
    ann = await make_v4_agent(client, email="ann@example.com")
    bob = await make_v4_agent(client, email="bob@example.com", work_phone=None)
    chats = await make_planfix(client)
    await db_of(client).write(access.add_form_members, chats.form_id, [ann.user_id])
    first = {
        "cmd": "newMessage",
        "providerId": chats.provider_id,
        "chatId": "chat-1",
        "planfix_token": chats.planfix_token,
        "message": "Hello",
        "contactId": "1",
    }
    task_id = (await planfix_call(client, first)).json()["number"]
    echo = {**first, "message": "as bob", "isEcho": "1", "userEmail": bob.email}
    assert (await planfix_call(client, echo)).status_code == 200
    assert (await comments_of(client, task_id))[-1]["author_id"] == bob.user_id
    seen = await client.get(f"/v4/tasks/{task_id}", headers=bob.headers)
    assert seen.status_code == 403
