"""Agents' answers to a Planfix chat leave as cmd=newMessage to the chat system's URL, through
the outbox, received and checked by a real local HTTP server; their files as signed,
expiring links that Frontdesk serves."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

from frontdesk.core import file_links, replies
from frontdesk.core.clock import utcnow
from frontdesk.delivery.worker import DeliveryWorker, RetryPolicy
from frontdesk.storage import tables
from frontdesk.storage.database import open_database
from receivers import Script

from factories import (
    PLANFIX_TOKEN,
    PROVIDER_TOKEN,
    app_client,
    comments_of,
    db_of,
    make_agent,
    make_planfix,
    make_v4_agent,
    planfix_call,
    rows,
    upload_v4,
)


async def drain(client, outbound, delays=(0.05, 0.05)) -> None:
    await DeliveryWorker(db_of(client), outbound, policy=RetryPolicy(delays)).drain()


async def chat(client, chat_id: str = "EFHASFN1239351", **extra: str) -> int:
    """The customer's first message (with the chat's channel and phone); returns the task."""
    body = {
        "cmd": "newMessage",
        "providerId": "superchat",
        "chatId": chat_id,
        "planfix_token": PLANFIX_TOKEN,
        "message": "Hello, I have a question",
        "contactId": "57487124",
        "contactName": "Ivan",
        "contactPhone": "79051234567",
        "channel": "telegram",
        **extra,
    }
    response = await planfix_call(client, body)
    assert response.status_code == 200, response.text
    return int(response.json()["number"])


async def answer(client, agent, task_id: int, **body) -> None:
    response = await client.post(
        f"/v4/tasks/{task_id}/comments",
        headers=agent.headers,
        json={"channel": {"type": "telegram"}, **body},
    )
    assert response.status_code == 200, response.text


def fields_of(request) -> list[tuple[str, str]]:
    return parse_qsl(request.body.decode(), keep_blank_values=True, errors="strict")


async def test_a_v4_answer_is_sent_as_newmessage(client, receiver, outbound):
    await make_planfix(client, url=receiver.url + "/planfix_api.php")
    agent = await make_v4_agent(client, email="peter@example.com")
    task_id = await chat(client)
    guid = await upload_v4(client, agent, "file1.doc", b"a document")
    await answer(
        client,
        agent,
        task_id,
        formatted_text="<b>Hello</b>, how can I help you?",
        attachments=[guid],
    )
    await drain(client, outbound)

    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/planfix_api.php")
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "X-Pyrus-Sig" not in request.headers  # the provider's token is its authentication
    [comment] = [c for c in await comments_of(client, task_id) if c["direction"] == "out"]
    sent = fields_of(request)
    link = dict(sent)["attachments[url]"]
    assert sent == [
        ("cmd", "newMessage"),
        ("providerId", "superchat"),
        ("chatId", "EFHASFN1239351"),
        ("token", PROVIDER_TOKEN),
        ("message", "Hello, how can I help you?"),
        ("messageId", str(comment["id"])),
        ("userName", "Ilya"),
        ("userLastName", "Laserson"),
        ("userIco", ""),
        ("taskEmail", ""),
        ("channel", "telegram"),
        ("contactPhone", "79051234567"),
        ("attachments[name]", "file1.doc"),
        ("attachments[url]", link),
    ]
    # the link is ours (the address the provider posted to), and it serves the file
    assert link.startswith("http://frontdesk.test/files/signed/")
    parts = urlsplit(link)
    download = await client.get(f"{parts.path}?{parts.query}")
    assert download.status_code == 200 and download.content == b"a document"
    assert 'filename="file1.doc"' in download.headers["content-disposition"]
    expires = int(dict(parse_qsl(parts.query))["expires"])
    lifetime = expires - utcnow().timestamp()
    assert timedelta(days=6) < timedelta(seconds=lifetime) <= file_links.LINK_LIFETIME


async def signed_link(client, file_id: int, expires: int) -> str:
    key = await db_of(client).read(file_links.stored_key)
    sig = file_links.signature(key, file_id, expires)
    return f"/files/signed/{file_id}?expires={expires}&sig={sig}"


async def test_links_that_are_forged_expired_or_to_nothing_are_refused(client, receiver, outbound):
    await make_planfix(client, url=receiver.url)
    agent = await make_v4_agent(client)
    task_id = await chat(client)
    guid = await upload_v4(client, agent)
    await answer(client, agent, task_id, text="see file", attachments=[guid])
    await drain(client, outbound)
    link = urlsplit(dict(fields_of(receiver.requests[0]))["attachments[url]"])
    file_id = int(link.path.rsplit("/", 1)[1])
    query = dict(parse_qsl(link.query))
    now = int(utcnow().timestamp())
    refused = [
        f"{link.path}?expires={query['expires']}&sig={'0' * 64}",
        f"{link.path}?expires={int(query['expires']) + 1}&sig={query['sig']}",
        f"/files/signed/{file_id + 1}?{link.query}",
        f"{link.path}?expires={query['expires']}",
        f"{link.path}?expires=soon&sig={query['sig']}",
        f"{link.path}?expires={query['expires']}&sig=%C3%A9{query['sig'][2:]}",
        await signed_link(client, file_id, now - 1),
    ]
    for path in refused:
        response = await client.get(path)
        assert response.status_code == 403, path
        assert set(response.json()) == {"error"}
    missing = await client.get(await signed_link(client, 999_999, now + 60))
    assert missing.status_code == 404 and "error" in missing.json()
    assert (await client.get(f"{link.path}?{link.query}")).status_code == 200


async def test_frontdesk_reply_and_order_and_retries(client, receiver, outbound):
    """`frontdesk reply` (core.replies) sends too; one chat's answers keep their order, a
    failed one is tried again and the later ones wait for it."""
    await make_planfix(client, url=receiver.url)
    await make_agent(client, email="ann@example.com")
    task_id = await chat(client)
    db = db_of(client)
    person = await db.read(replies.author_by_email, "ann@example.com")
    receiver.answer(Script(503))
    for n in range(3):
        sent = await db.write(replies.reply_to_customer, task_id, f"part {n}", (), person)
        assert sent.queued == 1
    await drain(client, outbound)
    texts = [dict(fields_of(r))["message"] for r in receiver.requests]
    assert texts == ["part 0", "part 0", "part 1", "part 2"]
    assert dict(fields_of(receiver.requests[0]))["userName"] == "Ilya"
    deliveries = await rows(client, tables.deliveries.select())
    assert {(d["kind"], d["status"]) for d in deliveries} == {("planfix_message", "sent")}


async def test_an_answer_that_keeps_failing_is_a_dead_letter(client, receiver, outbound):
    await make_planfix(client, url=receiver.url)
    task_id = await chat(client)
    receiver.answer(Script(500), Script(500), Script(500))
    await db_of(client).write(replies.reply_to_customer, task_id, "hello?")
    await drain(client, outbound)
    [delivery] = await rows(client, tables.deliveries.select())
    assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == (
        "dead",
        3,
        "HTTP 500",
    )
    receiver.answer(Script(400, body=b'{"error": "Invalid parameters"}'))
    await db_of(client).write(replies.reply_to_customer, task_id, "again")
    await drain(client, outbound)
    second = (await rows(client, tables.deliveries.select()))[1]
    assert (second["status"], second["attempts"]) == ("dead", 1)  # a 4xx is not retried


async def test_a_provider_without_url_and_an_echo_send_nothing(client, receiver, outbound):
    await make_planfix(client)
    task_id = await chat(client)
    assert (await db_of(client).write(replies.reply_to_customer, task_id, "hi")).queued == 0
    assert await rows(client, tables.deliveries.select()) == []


async def test_a_provider_given_a_url_gets_the_answers_not_sent_yet(client, receiver, outbound):
    from frontdesk.core import outbox_admin, planfix

    shared = "http://127.0.0.1:9/gone.php"  # nothing listens there
    await make_planfix(client, url=shared)
    await make_planfix(client, provider_id="otherchat", planfix_token="b" * 32, url=shared)
    task_id = await chat(client)
    other_task = await chat(client, providerId="otherchat", planfix_token="b" * 32)
    db = db_of(client)
    await db.write(replies.reply_to_customer, task_id, "first")
    await db.write(replies.reply_to_customer, other_task, "to the other provider")
    await drain(client, outbound, delays=())  # cannot connect: dead at once
    await db.write(replies.reply_to_customer, task_id, "second")  # pending behind it
    moved = await db.write(planfix.set_url, "superchat", receiver.url + "/api.php")
    assert (moved.url, moved.repointed) == (receiver.url + "/api.php", 2)
    deliveries = tables.deliveries
    urls = [d["url"] for d in await rows(client, deliveries.select().order_by(deliveries.c.id))]
    # the other provider's answer stays where it was (the same URL, but not this provider's)
    assert urls == [receiver.url + "/api.php", shared, receiver.url + "/api.php"]
    first = (await rows(client, deliveries.select().order_by(deliveries.c.id)))[0]
    await db.write(outbox_admin.redeliver, [first["id"]])
    await drain(client, outbound)
    assert [dict(fields_of(r))["message"] for r in receiver.requests] == ["first", "second"]
    assert {r.path for r in receiver.requests} == {"/api.php"}


async def test_a_long_chat_id_gets_an_ordering_key_that_fits(client, receiver, outbound):
    await make_planfix(client, url=receiver.url)
    task_id = await chat(client, chat_id="c" * 300)
    await db_of(client).write(replies.reply_to_customer, task_id, "hi")
    await drain(client, outbound)
    assert dict(fields_of(receiver.requests[0]))["chatId"] == "c" * 300


async def test_the_configured_public_url_and_secret_key_are_used(settings, receiver, outbound):
    configured = settings.model_copy(
        update={"public_url": "https://desk.example.com/", "secret_key": "k" * 40}
    )
    async with app_client(configured) as c:
        assert await db_of(c).read(file_links.stored_key) == "k" * 40
        await make_planfix(c, url=receiver.url)
        agent = await make_v4_agent(c)
        task_id = await chat(c)
        await answer(c, agent, task_id, text="x", attachments=[await upload_v4(c, agent)])
        await drain(c, outbound)
        link = dict(fields_of(receiver.requests[0]))["attachments[url]"]
        assert link.startswith("https://desk.example.com/files/signed/")
        parts = urlsplit(link)
        expires = int(dict(parse_qsl(parts.query))["expires"])
        file_id = int(parts.path.rsplit("/", 1)[1])
        assert dict(parse_qsl(parts.query))["sig"] == file_links.signature(
            "k" * 40, file_id, expires
        )
        assert (await c.get(f"{parts.path}?{parts.query}")).status_code == 200


async def test_the_generated_key_is_made_once_and_outlives_the_process(client, settings):
    db = db_of(client)
    assert await db.read(file_links.stored_key) is None  # nothing signed yet: no key
    keys = await asyncio.gather(*(db.write(file_links.signing_key) for _ in range(4)))
    assert len(set(keys)) == 1 and len(keys[0]) == 64
    restarted = await open_database(settings.effective_database_url)
    try:
        assert await restarted.read(file_links.stored_key) == keys[0]
    finally:
        await restarted.close()
