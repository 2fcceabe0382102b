"""POST /webchat/api, cmd=newMessage and cmd=getTask: the document's samples verbatim, chats
routed to tasks, contacts, echo messages, data_ fields and every attachment shape."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode, urlsplit

import pytest
import sqlalchemy as sa

from frontdesk.core import demo
from frontdesk.core.forms import FieldSpec
from frontdesk.storage import tables

from factories import (
    FIELDS,
    PLANFIX_TOKEN,
    channels_of,
    close_task,
    comments_of,
    db_of,
    fetches_of,
    make_agent,
    make_planfix,
    planfix_call,
    planfix_seed_sample,
    rows,
    task_of,
    tasks_of,
    values_of,
)


async def contacts_of(client) -> list[dict]:
    table = tables.planfix_contacts
    return await rows(client, sa.select(table).order_by(table.c.id))


def message(chat_id: str = "chat-1", text: str = "Hello", **extra: str) -> dict[str, str]:
    fields = {
        "cmd": "newMessage",
        "providerId": "superchat",
        "chatId": chat_id,
        "planfix_token": PLANFIX_TOKEN,
        "message": text,
        "contactId": "57487124",
        "contactName": "Ivan",
    }
    return {**fields, **extra}


async def sent(client, body, path="/webchat/api") -> dict:
    response = await planfix_call(client, body, path)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_documents_samples_work_verbatim(client):
    await db_of(client).write(demo.seed, client.app.state.ctx.blobs)
    path, fields = planfix_seed_sample("newMessage")
    assert path == "/webchat/api" and ("planfix_token", PLANFIX_TOKEN) in fields

    answer = await sent(client, fields, path)
    task_id = answer["number"]
    assert answer == {"number": task_id, "isNewTask": True}
    task = await task_of(client, task_id)
    assert task["subject"] == "Ivan Ivanov"  # no title: named after the contact
    [comment] = await comments_of(client, task_id)
    assert (comment["text"], comment["direction"], comment["sender_name"]) == (
        "Hello, I have a question",
        "in",
        "Ivan Ivanov",
    )
    [contact] = await contacts_of(client)
    assert {k: contact[k] for k in ("external_id", "first_name", "last_name", "phone")} == {
        "external_id": "57487124",
        "first_name": "Ivan",
        "last_name": "Ivanov",
        "phone": "79051234567",
    }
    assert contact["avatar_url"] == "https://superchat.io/avatars/183712.png"
    assert (contact["email"], contact["data"]) == (
        "ivan@ivanov.com",
        "the gas boilers came as expected",
    )
    # both attachments, paired by position, waiting to be fetched
    jobs = await fetches_of(client)
    assert [(f["position"], f["name"], f["url"], f["status"]) for f in jobs] == [
        (0, "photo1.jpg", "https://superchat.io/files/5444.jpg", "pending"),
        (1, "photo2.jpg", "https://superchat.io/files/5445.jpg", "pending"),
    ]

    get_path, get_fields = planfix_seed_sample("getTask")
    assert await sent(client, get_fields, urlsplit(get_path).path) == {"number": task_id}


async def test_one_task_per_chat_and_provider(client):
    await make_planfix(client)
    await make_planfix(client, provider_id="otherchat", planfix_token="b" * 32)
    first = await sent(client, message("chat-1", "one"))
    again = await sent(client, message("chat-1", "two"))
    other_chat = await sent(client, message("chat-2"))
    other_provider = await sent(
        client, message("chat-1", providerId="otherchat", planfix_token="b" * 32)
    )
    assert again == {"number": first["number"], "isNewTask": False}
    assert other_chat["isNewTask"] and other_provider["isNewTask"]
    numbers = {first["number"], other_chat["number"], other_provider["number"]}
    assert len(numbers) == 3 and len(await tasks_of(client)) == 3
    texts = [c["text"] for c in await comments_of(client, first["number"])]
    assert texts == ["one", "two"]


async def test_the_2019_path_and_the_token_field_work_too(client):
    await make_planfix(client)
    fields = message()
    fields["token"] = fields.pop("planfix_token")
    assert (await sent(client, fields, "/chat/api"))["isNewTask"] is True


async def test_a_multipart_body_is_read_like_a_form(client):
    await make_planfix(client)
    form = {key: (None, value) for key, value in message(text="Привет").items()}
    response = await client.post("/webchat/api", files=form)
    assert response.status_code == 200, response.text
    [comment] = await comments_of(client, response.json()["number"])
    assert comment["text"] == "Привет"


@pytest.mark.parametrize(
    ("routing", "after_close"),
    [("reuse_open", "new"), ("reopen_closed", "reopened"), ("always_new", "new")],
)
async def test_routing_after_the_task_is_closed(client, routing, after_close):
    await make_planfix(client, routing=routing)
    first = await sent(client, message())
    second = await sent(client, message())
    assert second["isNewTask"] is (routing == "always_new")
    await close_task(client, second["number"])
    third = await sent(client, message())
    if after_close == "reopened":
        assert third == {"number": first["number"], "isNewTask": False}
        assert (await task_of(client, first["number"]))["closed_at"] is None
    else:
        assert third["isNewTask"] is True and third["number"] != second["number"]


async def test_two_first_messages_of_a_chat_make_one_task(client):
    await make_planfix(client)
    answers = await asyncio.gather(*(sent(client, message("race", f"m{n}")) for n in range(6)))
    assert len({answer["number"] for answer in answers}) == 1
    assert sum(answer["isNewTask"] for answer in answers) == 1


async def test_title_names_a_new_task_and_the_channel_is_kept(client):
    await make_planfix(client)
    answer = await sent(client, message(title="Order #42", channel="telegram"))
    assert (await task_of(client, answer["number"]))["subject"] == "Order #42"
    [chat] = await channels_of(client)
    assert (chat["kind"], chat["key"], chat["message_type"], chat["account_ref"]) == (
        "chat",
        "chat-1",
        "telegram",
        None,
    )
    assert chat["planfix_ref"] is not None and chat["contact_ref"] is not None
    later = await sent(client, message(title="Ignored on an existing task"))
    assert (await task_of(client, later["number"]))["subject"] == "Order #42"


async def test_the_contact_is_created_then_updated_per_provider(client):
    await make_planfix(client)
    await make_planfix(client, provider_id="otherchat", planfix_token="b" * 32)
    await sent(client, message(contactEmail="ivan@old.example", contactPhone="111"))
    await sent(client, message(contactEmail="ivan@new.example", contactLastName="Ivanov"))
    await sent(client, message(providerId="otherchat", planfix_token="b" * 32))
    first, other = await contacts_of(client)
    assert (first["email"], first["phone"], first["last_name"]) == (
        "ivan@new.example",
        "111",  # not sent the second time: kept
        "Ivanov",
    )
    assert other["external_id"] == first["external_id"] and other["id"] != first["id"]


async def test_a_message_without_contact_fields_is_taken(client):
    await make_planfix(client)
    fields = {k: v for k, v in message().items() if not k.startswith("contact")}
    answer = await sent(client, fields)
    assert (await task_of(client, answer["number"]))["subject"] == "Hello"
    assert await contacts_of(client) == []


async def test_unknown_fields_are_ignored(client):
    await make_planfix(client)
    assert (await sent(client, message(telegramUserName="@ivan", foo="bar")))["isNewTask"]


DATA_FIELDS = (
    *FIELDS,
    FieldSpec("utm_source", "text", "utm_source"),
    FieldSpec("Visits", "number", "Visits count"),
    # a name wins over another field's code
    FieldSpec("Source", "text", "Referrer"),
    FieldSpec("Referrer", "text", "Old referrer"),
)


async def test_data_fields_fill_the_task_fields_by_name(client):
    await make_planfix(client, fields=DATA_FIELDS)
    answer = await sent(
        client,
        message(
            data_utm_source="google",
            **{"data_Visits count": "12"},
            data_SenderName="by code",
            data_Referrer="by name",
            data_unknown="x",
            data_CallDuration="not a number",
        ),
    )
    assert await values_of(client, answer["number"]) == {
        "utm_source": "google",
        "Visits": "12",
        "SenderName": "by code",
        "Source": "by name",
    }
    warnings = answer["warnings"]
    assert len(warnings) == 2
    assert "data_unknown" in warnings[0] and "data_CallDuration" in warnings[1]


async def test_empty_data_fields_fill_nothing_and_keep_what_is_there(client):
    await make_planfix(client, fields=DATA_FIELDS)
    task_id = (await sent(client, message(data_utm_source="google")))["number"]
    answer = await sent(client, message(data_utm_source="", data_Visits=" ", text="again"))
    assert answer["number"] == task_id and "warnings" not in answer
    assert await values_of(client, task_id) == {"utm_source": "google"}


async def test_a_warning_shows_a_long_value_clipped(client):
    await make_planfix(client)
    answer = await sent(
        client, message(data_CallDuration="9x" * 1000, **{"data_" + "u" * 2000: "x"})
    )
    assert [len(warning) < 200 for warning in answer["warnings"]] == [True, True]


async def test_an_echo_is_the_agents_outgoing_message(client):
    agent = await make_agent(client, email="peter@example.com")
    default = await make_agent(client, email="default@example.com", work_phone=None)
    await make_planfix(client, default_agent="default@example.com")
    task_id = (await sent(client, message(text="Hi")))["number"]
    await sent(client, message(text="In the chat", isEcho="1", userEmail="Peter@example.com"))
    await sent(client, message(text="Someone else", isEcho="true", userEmail="nobody@example.com"))
    await sent(client, message(text="Not an echo", isEcho="0"))
    _, echo, fallback, plain = await comments_of(client, task_id)
    assert (echo["direction"], echo["author_id"], echo["send_to_external_channel"]) == (
        "out",
        agent.user_id,
        False,
    )
    assert (fallback["direction"], fallback["author_id"]) == ("out", default.user_id)
    assert (plain["direction"], plain["author_id"]) == ("in", None)
    deliveries = await rows(client, sa.select(tables.deliveries))
    assert deliveries == []  # an echo is already in the chat: nothing goes back


async def test_an_echo_by_nobody_known_says_who_wrote_it(client):
    await make_planfix(client)
    task_id = (await sent(client, message(isEcho="1", userEmail="bot@chat.example")))["number"]
    [echo] = await comments_of(client, task_id)
    assert (echo["author_id"], echo["sender_name"]) == (None, "bot@chat.example")


# --- attachments --------------------------------------------------------------------------


async def attached(client, body) -> list[tuple[str, str]]:
    await sent(client, body)
    return [(f["name"], f["url"]) for f in await fetches_of(client)]


async def test_repeated_attachment_pairs_pair_by_position(client):
    await make_planfix(client)
    pairs = [
        *message().items(),
        ("attachments[name]", "a.jpg"),
        ("attachments[url]", "https://files.example/1"),
        ("attachments[name]", "b.pdf"),
        ("attachments[url]", "https://files.example/2"),
    ]
    assert await attached(client, pairs) == [
        ("a.jpg", "https://files.example/1"),
        ("b.pdf", "https://files.example/2"),
    ]


async def test_php_indexed_and_parallel_attachments(client):
    await make_planfix(client)
    pairs = [
        *message().items(),
        ("attachments[1][url]", "https://files.example/second"),
        ("attachments[0][name]", "first.png"),
        ("attachments[1][name]", "second.png"),
        ("attachments[0][url]", "https://files.example/first"),
    ]
    assert await attached(client, pairs) == [
        ("first.png", "https://files.example/first"),
        ("second.png", "https://files.example/second"),
    ]
    parallel = [
        *message("chat-2").items(),
        ("attachments[name][0]", "x.txt"),
        ("attachments[url][0]", "https://files.example/x"),
        ("attachments[url][]", "https://files.example/dir/report%20final.pdf?v=2"),
    ]
    found = await attached(client, parallel)
    assert found[2:] == [
        ("x.txt", "https://files.example/x"),
        ("report final.pdf", "https://files.example/dir/report%20final.pdf?v=2"),
    ]


async def test_the_same_index_in_two_spellings_is_two_files(client):
    await make_planfix(client)
    pairs = [
        *message().items(),
        ("attachments[0][name]", "x.jpg"),
        ("attachments[0][url]", "https://files.example/x.jpg"),
        ("attachments[name][0]", "z.jpg"),
        ("attachments[url][0]", "https://files.example/z.jpg"),
    ]
    assert await attached(client, pairs) == [
        ("x.jpg", "https://files.example/x.jpg"),
        ("z.jpg", "https://files.example/z.jpg"),
    ]


async def test_an_attachment_field_given_twice_is_refused_not_half_kept(client):
    await make_planfix(client)
    pairs = [
        *message().items(),
        ("attachments[0][url]", "https://files.example/one"),
        ("attachments[0][url]", "https://files.example/two"),
    ]
    response = await planfix_call(client, pairs)
    assert response.status_code == 400
    assert "attachments[0][url]" in response.json()["detail"]
    assert await tasks_of(client) == []


@pytest.mark.parametrize(
    "key", ["attachments", "attachments[link]", "attachments[0][link]", "attachments[url][x]"]
)
async def test_an_attachment_url_in_a_field_of_another_shape_is_refused_not_lost(client, key):
    await make_planfix(client)
    response = await planfix_call(client, [*message().items(), (key, "https://f.example/a")])
    assert response.status_code == 400
    assert key in response.json()["detail"]
    assert await tasks_of(client) == []


async def test_an_index_of_many_digits_is_an_index(client):
    await make_planfix(client)
    pairs = [*message().items(), ("attachments[10000][url]", "https://f.example/a")]
    assert await attached(client, pairs) == [("a", "https://f.example/a")]


async def test_other_attachment_fields_without_a_url_are_ignored(client):
    """Metadata beside a file (its size, its type) or an empty field leave the file as it is;
    `name` and `url` are read in any case."""
    await make_planfix(client)
    pairs = [
        *message().items(),
        ("attachments", ""),
        ("attachments[0][NAME]", "a.pdf"),
        ("attachments[0][URL]", "https://f.example/a"),
        ("attachments[0][size]", "123"),
        ("attachments[0][mime]", "application/pdf"),
    ]
    assert await attached(client, pairs) == [("a.pdf", "https://f.example/a")]


async def test_a_message_of_only_attachments_is_taken(client):
    await make_planfix(client)
    body = urlencode(
        {
            **message(text=""),
            "attachments[name]": "a.jpg",
            "attachments[url]": "https://f.example/a",
        }
    )
    answer = await sent(client, body)
    [comment] = await comments_of(client, answer["number"])
    assert comment["text"] == ""
    assert len(await fetches_of(client)) == 1


async def test_over_a_hundred_attachments_keeps_the_first_hundred(client):
    await make_planfix(client)
    pairs = list(message().items())
    for n in range(103):
        pairs += [("attachments[name]", f"{n}.jpg"), ("attachments[url]", f"https://f.example/{n}")]
    answer = await sent(client, pairs)
    assert "More than 100 attachments" in answer["warnings"][0]
    kept = await fetches_of(client)
    assert [f["name"] for f in kept] == [f"{n}.jpg" for n in range(100)]


async def test_the_longest_names_the_api_takes_are_kept_as_the_column_allows(client):
    await make_planfix(client)
    await sent(client, message(contactName="n" * 200, contactLastName="l" * 200))
    [comment] = await comments_of(client, (await tasks_of(client))[0]["id"])
    assert comment["sender_name"] == ("n" * 200 + " " + "l" * 200)[:300]


async def test_a_host_header_that_is_no_host_is_not_kept_for_links(client):
    await make_planfix(client)
    response = await client.post(
        "/webchat/api", data=message(), headers={"Host": "h" * 2100 + ":80"}
    )
    assert response.status_code == 200, response.text
    table = tables.planfix_integrations
    [stored] = await rows(client, sa.select(table.c.public_base_url))
    kept = stored["public_base_url"]
    assert kept.startswith("http://") and "hhhh" not in kept  # the server's own address


@pytest.mark.parametrize(
    ("host", "server", "base"),
    [
        ("frontdesk.example:8443", ("10.0.0.5", 8000), "http://frontdesk.example:8443"),
        ("[::1]:8000", ("::1", 8000), "http://[::1]:8000"),
        ("h" * 300, ("::1", 8000), "http://[::1]:8000"),
        ("bad host", ("10.0.0.5", 8000), "http://10.0.0.5:8000"),
        ("", None, "http://127.0.0.1"),
    ],
)
def test_links_are_made_from_the_host_header_when_it_is_a_host(host, server, base):
    from types import SimpleNamespace

    from frontdesk.web.endpoints import Call

    scope = {"headers": [(b"host", host.encode())], "server": server, "scheme": "http"}
    ctx = SimpleNamespace(settings=SimpleNamespace(public_url=""))
    assert Call(scope, None, ctx).public_base_url() == base  # type: ignore[arg-type]
