"""The four webhooks Frontdesk sends an extension service, received by a real local server."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiopyrus.utils.crypto import verify_webhook_signature

from frontdesk.core import extension_hooks, extensions, outbox_admin
from frontdesk.delivery.authorize import AuthorizeFailed, connect_account
from frontdesk.delivery.pulse import pulse_all
from frontdesk.delivery.worker import DeliveryWorker, RetryPolicy
from frontdesk.storage import tables
from receivers import Script

from factories import db_of, make_connector, rows, upload


async def drain(client, outbound) -> None:
    await DeliveryWorker(db_of(client), outbound, policy=RetryPolicy((0.05, 0.05))).drain()


async def chat_task(client, connector, channel_id="chat-7") -> int:
    response = await client.post(
        "/v1/getmessage",
        headers=connector.headers,
        json={"account_id": connector.account_id, "channel_id": channel_id, "message_text": "Hi"},
    )
    assert response.status_code == 200, response.text
    return int(response.json()["tasks"][0]["task_id"])


async def comment_in_chat(client, connector, task_id, text, *, send=True, **extra) -> None:
    """A v1 /comment on the chat's task, to the customer (`send_to_external_channel`)."""
    response = await client.post(
        "/v1/comment",
        headers=connector.headers,
        json={
            "account_id": connector.account_id,
            "task_id": task_id,
            "comment_text": text,
            "send_to_external_channel": send,
            **extra,
        },
    )
    assert response.status_code == 200, response.text


async def test_v1_comment_to_external_channel_sends_sendmessage(client, receiver, outbound):
    connector = await make_connector(client, base_url=receiver.url + "/ext/")
    task_id = await chat_task(client, connector)
    guid = await upload(client, connector)
    await comment_in_chat(client, connector, task_id, "Your order ships today", attachments=[guid])
    await drain(client, outbound)

    [request] = receiver.requests
    assert request.path == "/ext/sendmessage"
    assert verify_webhook_signature(request.body, request.headers["X-Pyrus-Sig"], connector.secret)
    body = json.loads(request.body)
    [file_row] = await rows(client, tables.files.select())
    [comment] = [
        c for c in await rows(client, tables.comments.select()) if c["send_to_external_channel"]
    ]
    assert body == {
        "account_id": connector.account_id,
        "channel_id": "chat-7",
        "message_text": "Your order ships today",
        "attachment_ids": [file_row["id"]],
        "task_id": task_id,
        "comment_id": comment["id"],
    }
    # the extension can fetch the attachment it was told about
    download = await client.get(f"/v1/files/download/{file_row['id']}", headers=connector.headers)
    assert download.status_code == 200


async def test_plain_comment_and_extension_without_url_send_nothing(client, receiver, outbound):
    with_url = await make_connector(client, base_url=receiver.url)
    without_url = await make_connector(client, account_id="acc-2", name="No URL")
    for connector, send in ((with_url, False), (without_url, True)):
        task_id = await chat_task(client, connector)
        await comment_in_chat(client, connector, task_id, "note", send=send)
    assert await db_of(client).read(outbox_admin.list_deliveries) == []


async def test_messages_of_one_chat_arrive_in_order(client, receiver, outbound):
    connector = await make_connector(client, base_url=receiver.url)
    task_id = await chat_task(client, connector)
    receiver.answer(Script(503))  # the first answer fails once; the rest must wait for it
    for n in range(5):
        await comment_in_chat(client, connector, task_id, f"part {n}")
    await drain(client, outbound)
    texts = [json.loads(r.body)["message_text"] for r in receiver.requests]
    assert texts == ["part 0", "part 0", "part 1", "part 2", "part 3", "part 4"]


async def test_toggle_is_sent_and_disabling_refuses_messages(client, receiver, outbound):
    connector = await make_connector(client, base_url=receiver.url)
    db = db_of(client)
    assert await db.write(
        extension_hooks.toggle_account, connector.extension_id, connector.account_id, False
    )
    await drain(client, outbound)
    [request] = receiver.requests
    assert request.path == "/toggle"
    assert json.loads(request.body) == {"account_id": connector.account_id, "enabled": False}
    assert verify_webhook_signature(request.body, request.headers["X-Pyrus-Sig"], connector.secret)
    response = await client.post(
        "/v1/getmessage",
        headers=connector.headers,
        json={"account_id": connector.account_id, "channel_id": "c", "message_text": "Hi"},
    )
    assert response.json()["error_code"] == "webhook_is_disabled"


async def test_authorize_creates_the_account_the_extension_answers(client, receiver, outbound):
    connector = await make_connector(client, base_url=receiver.url)
    receiver.answer(Script(200, body=b'{"account_id": "shop-42", "account_name": "Shop"}'))
    connected = await connect_account(
        db_of(client), outbound, connector.extension_id, connector.form_id, [("api_key", "k-1")]
    )
    assert (connected.account_id, connected.account_name) == ("shop-42", "Shop")
    [request] = receiver.requests
    assert request.path == "/authorize"
    assert json.loads(request.body) == {"credentials": [{"code": "api_key", "value": "k-1"}]}
    assert verify_webhook_signature(request.body, request.headers["X-Pyrus-Sig"], connector.secret)
    [account] = [
        a
        for a in await rows(client, tables.extension_accounts.select())
        if a["account_id"] == "shop-42"
    ]
    assert (account["name"], account["form_id"]) == ("Shop", connector.form_id)


@pytest.mark.parametrize(
    "script, reason",
    [
        (Script(200, body=b'{"error_code": "bad_credentials", "error": "Wrong key"}'), "Wrong key"),
        (Script(403, body=b'{"error": "forbidden"}'), "HTTP 403"),
        (Script(500, body=b"<html>oops</html>"), "not JSON"),
        (Script(200, body=b'{"account_name": "no id"}'), "no account_id"),
        (Script(200, body=b'{"account_id": true}'), "no account_id"),
        (Script(200, body=b'{"account_id": "  "}'), "no account_id"),
        (Script(200, body=b'{"account_id": "%s"}' % (b"a" * 301)), "over 300 characters"),
    ],
)
async def test_authorize_failures_create_nothing(client, receiver, outbound, script, reason):
    connector = await make_connector(client, base_url=receiver.url)
    receiver.answer(script)
    with pytest.raises(AuthorizeFailed, match=reason):
        await connect_account(
            db_of(client), outbound, connector.extension_id, connector.form_id, [("k", "v")]
        )
    accounts = await rows(client, tables.extension_accounts.select())
    assert [a["account_id"] for a in accounts] == [connector.account_id]


async def test_authorize_asks_nothing_for_a_form_that_does_not_exist(client, receiver, outbound):
    from frontdesk.errors import NotFound

    connector = await make_connector(client, base_url=receiver.url)
    with pytest.raises(NotFound, match="No form 999"):
        await connect_account(db_of(client), outbound, connector.extension_id, 999, [("k", "v")])
    assert receiver.requests == []


async def test_of_several_pulse_loops_one_probes_each_extension_per_interval(
    client, receiver, outbound
):
    up = await make_connector(client, base_url=receiver.url)
    db = db_of(client)
    # two processes' loops (serve --workers 2) at the same moment, then one a little later
    first, second = await asyncio.gather(
        pulse_all(db, outbound, min_age=60), pulse_all(db, outbound, min_age=60)
    )
    assert sorted([first, second], key=len) == [{}, {up.extension_id: "ok"}]
    assert await pulse_all(db, outbound, min_age=60) == {}
    assert len(receiver.requests) == 1
    assert await pulse_all(db, outbound) == {up.extension_id: "ok"}  # probed whenever asked


async def test_a_probe_slower_than_the_interval_is_not_doubled(client, receiver, outbound):
    """Another process's loop, due again while the first probe still waits for its answer,
    leaves the extension alone: one probe in flight, not two."""
    up = await make_connector(client, base_url=receiver.url)
    receiver.answer(Script(200, delay=0.6))
    db = db_of(client)
    slow = asyncio.create_task(pulse_all(db, outbound, min_age=0.1))
    await receiver.wait_for(1, timeout=5)
    await asyncio.sleep(0.2)  # past this loop's interval, the first probe still out
    assert await pulse_all(db, outbound, min_age=0.1) == {}
    assert await slow == {up.extension_id: "ok"}
    assert len(receiver.requests) == 1


async def test_the_pulse_runs_on_its_schedule(client, receiver, outbound):
    from frontdesk.delivery.pulse import pulse_forever

    await make_connector(client, base_url=receiver.url)
    loop = asyncio.create_task(pulse_forever(db_of(client), outbound, interval=0.05))
    try:
        await receiver.wait_for(3, timeout=10)
    finally:
        loop.cancel()
    assert {r.path for r in receiver.requests} == {"/pulse"}


async def test_pulse_records_each_extensions_health(client, receiver, outbound):
    up = await make_connector(client, base_url=receiver.url)
    down = await make_connector(client, account_id="b", name="Down", base_url="http://127.0.0.1:9")
    results = await pulse_all(db_of(client), outbound)
    assert results[up.extension_id] == "ok"
    assert "Connect" in results[down.extension_id] or "refused" in results[down.extension_id]
    [request] = receiver.requests
    assert (request.method, request.path) == ("GET", "/pulse")
    assert verify_webhook_signature(b"", request.headers["X-Pyrus-Sig"], up.secret)
    extension = await db_of(client).read(extensions.get_extension, up.extension_id)
    assert extension["pulse_result"] == "ok" and extension["pulse_at"] is not None


async def test_frontdesk_reply_answers_in_the_chat(
    client, receiver, outbound, database_url, tmp_path, monkeypatch, capsys
):
    from frontdesk.cli import main

    from factories import make_agent

    connector = await make_connector(client, base_url=receiver.url)
    task_id = await chat_task(client, connector)
    agent = await make_agent(client, email="ann@example.com")
    attachment = tmp_path / "invoice.pdf"
    attachment.write_bytes(b"%PDF-1.4 invoice")
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", database_url)
    monkeypatch.setenv("FRONTDESK_DATA_DIR", str(client.app.state.ctx.settings.data_dir))
    args = ["reply", str(task_id), "--text", "Here is your invoice", "--file", str(attachment)]
    code = await asyncio.to_thread(main, [*args, "--as", "Ann@Example.com", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["sendmessage_queued"] == 1
    await drain(client, outbound)

    [request] = receiver.requests
    body = json.loads(request.body)
    assert body["message_text"] == "Here is your invoice"
    assert body["comment_id"] == result["comment_id"]
    assert body["sender"] == {
        "user_id": agent.user_id,
        "first_name": "Ilya",
        "last_name": "Laserson",
    }
    [file_id] = body["attachment_ids"]
    download = await client.get(f"/v1/files/download/{file_id}", headers=connector.headers)
    assert download.status_code == 200 and download.content == b"%PDF-1.4 invoice"
    [comment] = [c for c in await rows(client, tables.comments.select()) if c["direction"] == "out"]
    assert (comment["id"], comment["author_id"]) == (result["comment_id"], agent.user_id)

    code = await asyncio.to_thread(main, ["reply", "999999", "--text", "x"])
    assert code == 1 and "No task 999999" in capsys.readouterr().err
    code = await asyncio.to_thread(main, ["reply", str(task_id)])
    assert code == 1 and "text" in capsys.readouterr().err


async def test_a_v4_comment_with_channel_sends_sendmessage(client, receiver, outbound):
    from factories import make_v4_agent, upload_v4

    connector = await make_connector(client, base_url=receiver.url)
    agent = await make_v4_agent(client, email="ann@example.com")
    task_id = await chat_task(client, connector, channel_id="tg-5")
    guid = await upload_v4(client, agent)
    response = await client.post(
        f"/v4/tasks/{task_id}/comments",
        headers=agent.headers,
        json={
            "formatted_text": "<b>On its way</b>",
            "attachments": [guid],
            "channel": {"type": "telegram"},
        },
    )
    assert response.status_code == 200, response.text
    internal = await client.post(
        f"/v4/tasks/{task_id}/comments", headers=agent.headers, json={"text": "agents only"}
    )
    assert internal.status_code == 200
    await drain(client, outbound)

    [request] = receiver.requests  # the internal comment stays inside
    assert verify_webhook_signature(request.body, request.headers["X-Pyrus-Sig"], connector.secret)
    body = json.loads(request.body)
    assert (body["channel_id"], body["message_text"]) == ("tg-5", "On its way")
    assert body["sender"]["user_id"] == agent.user_id
    [file_id] = body["attachment_ids"]
    download = await client.get(f"/v1/files/download/{file_id}", headers=connector.headers)
    assert download.status_code == 200


async def test_an_agents_internal_attachment_is_not_the_extensions(client):
    from factories import make_v4_agent, upload_v4

    connector = await make_connector(client)
    agent = await make_v4_agent(client)
    task_id = await chat_task(client, connector)
    guid = await upload_v4(client, agent, data=b"salary data")
    response = await client.post(
        f"/v4/tasks/{task_id}/comments",
        headers=agent.headers,
        json={"text": "for agents", "attachments": [guid]},
    )
    assert response.status_code == 200, response.text
    [file_row] = await rows(client, tables.files.select())
    download = await client.get(f"/v1/files/download/{file_row['id']}", headers=connector.headers)
    assert download.status_code == 404


async def test_answers_in_chats_with_300_character_ids_keep_their_own_order(client, receiver):
    connector = await make_connector(client, base_url=receiver.url)
    long_ids = ["x" * 299 + "1", "x" * 299 + "2"]  # alike but for the last character
    for channel_id in long_ids:
        task_id = await chat_task(client, connector, channel_id=channel_id)
        await comment_in_chat(client, connector, task_id, "answer")
    keys = [row["ordering_key"] for row in await rows(client, tables.deliveries.select())]
    assert len(set(keys)) == 2 and all(len(key) <= 200 for key in keys)


async def test_an_answer_nothing_would_carry_is_refused_not_lost(client, receiver, outbound):
    from frontdesk.core import replies
    from frontdesk.errors import FrontdeskError

    from factories import comments_of, make_v4_agent

    connector = await make_connector(client, base_url=receiver.url)
    agent = await make_v4_agent(client, email="ann@example.com")
    chat = await chat_task(client, connector)
    no_chat = (
        await client.post(
            "/v1/task", headers=connector.headers, json={"account_id": connector.account_id}
        )
    ).json()["task_ids"][0]
    db = db_of(client)
    await db.write(
        extension_hooks.toggle_account, connector.extension_id, connector.account_id, False
    )
    for task_id, reason in ((chat, "is disabled"), (no_chat, "no external channel")):
        before = await comments_of(client, task_id)
        response = await client.post(
            f"/v4/tasks/{task_id}/comments",
            headers=agent.headers,
            json={"text": "On its way", "channel": {"type": "telegram"}},
        )
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "validation_error"
        assert reason in response.json()["error"]
        with pytest.raises(FrontdeskError, match=reason):  # frontdesk reply
            await db.write(replies.reply_to_customer, task_id, "On its way")
        assert await comments_of(client, task_id) == before
    await drain(client, outbound)
    assert [r.path for r in receiver.requests] == ["/toggle"]  # no sendmessage
