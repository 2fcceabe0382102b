"""At-least-once: kill -9 the server mid-delivery, with one receiver down; nothing is lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import httpx

from frontdesk.core import auth, extensions, forms, outbox_admin
from frontdesk.storage.database import open_database
from receivers import Receiver, Script

from factories import free_port, start_server, stop_server

SETTINGS = {
    "FRONTDESK_DELIVERY_ALLOW_PRIVATE": "true",
    "FRONTDESK_DELIVERY_RETRY_DELAYS": "[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]",
    "FRONTDESK_DELIVERY_CONNECT_TIMEOUT": "1",
    "FRONTDESK_DELIVERY_READ_TIMEOUT": "5",
    "FRONTDESK_DELIVERY_LEASE_MARGIN_SECONDS": "1",
    "FRONTDESK_DELIVERY_POLL_SECONDS": "0.1",
    "FRONTDESK_PULSE_INTERVAL_SECONDS": "0",
}
SLOW_CHATS, DOWN_CHATS = 8, 4


async def _connector(db, name: str, url: str) -> tuple[str, str]:
    """An extension at `url` with account `name`; returns (account_id, token)."""
    form_id = await db.write(forms.add_form, f"Form {name}", ())
    extension = await db.write(extensions.add_extension, name, url)
    await db.write(extensions.add_account, extension.extension_id, name, form_id)
    issued = await db.write(
        auth.issue_extension_token, extension.client_id, extension.secret, timedelta(hours=1)
    )
    return name, issued.token


async def _answer_in_chats(base: str, account_id: str, token: str, chats: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
        for chat in range(chats):
            message = {"account_id": account_id, "channel_id": f"chat-{chat}", "message_text": "?"}
            reply = await http.post("/v1/getmessage", json=message)
            task_id = reply.json()["tasks"][0]["task_id"]
            comment = {
                "account_id": account_id,
                "task_id": task_id,
                "comment_text": f"answer {chat}",
                "send_to_external_channel": True,
            }
            assert (await http.post("/v1/comment", json=comment)).status_code == 200


async def test_kill_9_mid_delivery_loses_nothing(database_url, tmp_path):
    slow = await Receiver().start()
    down = Receiver(port=free_port())  # not listening until after the crash
    db = await open_database(database_url)
    try:
        slow_account = await _connector(db, "slow", slow.url)
        down_account = await _connector(db, "down", down.url)
    finally:
        await db.close()
    # the slow receiver holds its first answers long enough for the kill to land mid-flight
    slow.answer(*[Script(200, delay=30) for _ in range(SLOW_CHATS)])

    process, base = await asyncio.to_thread(start_server, database_url, tmp_path, env=SETTINGS)
    try:
        await _answer_in_chats(base, *slow_account, SLOW_CHATS)
        await _answer_in_chats(base, *down_account, DOWN_CHATS)
        await slow.wait_for(SLOW_CHATS)  # all in flight
        await asyncio.to_thread(stop_server, process, signal.SIGKILL)

        await down.start()
        process, base = await asyncio.to_thread(start_server, database_url, tmp_path, env=SETTINGS)
        # every slow delivery arrives a second time (its lease ran out), and all the rest
        await slow.wait_for(2 * SLOW_CHATS, timeout=30)
        await down.wait_for(DOWN_CHATS, timeout=30)
    finally:
        await asyncio.to_thread(stop_server, process)
        await slow.stop()
        await down.stop()

    db = await open_database(database_url)
    try:
        rows = await db.read(outbox_admin.list_deliveries)
    finally:
        await db.close()
    assert len(rows) == SLOW_CHATS + DOWN_CHATS
    assert {row["status"] for row in rows} == {"sent"}
    sent_ids = Counter(slow.header_values("X-Frontdesk-Delivery"))
    assert sorted(sent_ids.values()) == [2] * SLOW_CHATS  # each repeat carries its delivery id
    down_ids = set(down.header_values("X-Frontdesk-Delivery"))
    assert set(sent_ids) | down_ids == {row["delivery_id"] for row in rows}
    texts = sorted(json.loads(r.body)["message_text"] for r in down.requests)
    assert texts == sorted(f"answer {n}" for n in range(DOWN_CHATS))


async def _shop(database_url: str, receiver: Receiver) -> tuple[str, str]:
    db = await open_database(database_url)
    try:
        return await _connector(db, "shop", receiver.url)
    finally:
        await db.close()


def _worker_process(database_url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`frontdesk worker` on the database, with `env` on top of this process's."""
    return subprocess.Popen(
        [sys.executable, "-m", "frontdesk", "worker"],
        env={**os.environ, **env, "FRONTDESK_DATABASE_URL": database_url},
        start_new_session=True,
    )


async def test_a_separate_worker_process_sends_what_serve_writes(database_url, tmp_path):
    receiver = await Receiver().start()
    account = await _shop(database_url, receiver)
    env = {**SETTINGS, "FRONTDESK_DELIVERY_IN_PROCESS": "false"}
    process, base = await asyncio.to_thread(start_server, database_url, tmp_path, env=env)
    worker = None
    try:
        await _answer_in_chats(base, *account, 3)
        await asyncio.sleep(1)
        assert receiver.requests == []  # serve only writes the outbox
        worker = _worker_process(database_url, env)
        await receiver.wait_for(3, timeout=20)
    finally:
        if worker is not None:
            await asyncio.to_thread(stop_server, worker)
        await asyncio.to_thread(stop_server, process)
        await receiver.stop()
    texts = sorted(json.loads(r.body)["message_text"] for r in receiver.requests)
    assert texts == ["answer 0", "answer 1", "answer 2"]


async def _rows(database_url: str) -> list[dict]:
    db = await open_database(database_url)
    try:
        return await db.read(outbox_admin.list_deliveries)
    finally:
        await db.close()


async def test_sigterm_lets_a_worker_finish_its_sends_and_give_back_the_rest(
    database_url, tmp_path
):
    """SIGTERM (Docker, systemd) stops `frontdesk worker` as Ctrl-C does: the two sends under
    way end, the rows it claimed ahead go back unsent, with no attempt counted."""
    receiver = await Receiver().start()
    receiver.answer(*[Script(200, delay=1.5) for _ in range(2)])
    account = await _shop(database_url, receiver)
    env = {**SETTINGS, "FRONTDESK_DELIVERY_IN_PROCESS": "false"}
    process, base = await asyncio.to_thread(start_server, database_url, tmp_path, env=env)
    worker = None
    try:
        await _answer_in_chats(base, *account, 6)
        worker = _worker_process(database_url, {**env, "FRONTDESK_DELIVERY_CONCURRENCY": "2"})
        await receiver.wait_for(2, timeout=20)  # both slots sending, four rows claimed ahead
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 20) == 0
    finally:
        if worker is not None and worker.poll() is None:
            await asyncio.to_thread(stop_server, worker)
        await asyncio.to_thread(stop_server, process)
        await receiver.stop()
    rows = await _rows(database_url)
    assert len(receiver.requests) == 2
    assert sorted((row["status"], row["attempts"]) for row in rows) == [
        *[("pending", 0)] * 4,
        *[("sent", 1)] * 2,
    ]
