"""A unit of work that loses a race (LostRace) is rolled back and run again."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
import sqlalchemy as sa

from frontdesk.core import calls, channels, messages, planfix_chat, tasks
from frontdesk.core.calls import INSERT_CALL
from frontdesk.core.clock import utcnow
from frontdesk.storage import tables
from frontdesk.storage.database import LostRace
from frontdesk.storage.sql import Query, Tx

from factories import (
    channels_of,
    close_task,
    comments_of,
    db_of,
    make_agent,
    make_connector,
    make_planfix,
    make_v4_agent,
    planfix_call,
    rows,
    values_of,
)

INSERT_FORM = Query(sa.insert(tables.forms).values(name=sa.bindparam("name"), created_at=utcnow()))


async def test_a_lost_race_rolls_back_and_runs_again(client):
    runs = []

    async def unit(tx: Tx) -> int:
        runs.append(len(runs))
        await tx.run(INSERT_FORM, name=f"try {len(runs)}")
        if len(runs) < 2:
            raise LostRace("someone else was first")
        return len(runs)

    assert await db_of(client).write(unit) == 2
    names = [row["name"] for row in await rows(client, sa.select(tables.forms.c.name))]
    assert "try 1" not in names and "try 2" in names  # the lost try left nothing behind


async def test_a_race_lost_every_time_is_the_callers_error(client):
    async def unit(tx: Tx) -> None:
        raise LostRace("always")

    with pytest.raises(LostRace):
        await db_of(client).write(unit)


async def test_a_call_id_taken_meanwhile_is_a_lost_race_that_leaves_nothing(client):
    connector = await make_connector(client)
    task = await client.post(
        "/v1/task", headers=connector.headers, json={"account_id": connector.account_id}
    )
    task_id = task.json()["task_ids"][0]
    values = {
        "account_ref": connector.account_ref,
        "task_id": task_id,
        "external_id": "call-1",
        "from_number": "1",
        "to_number": "2",
        "internal_number": None,
        "now": utcnow(),
    }

    async def insert(tx: Tx) -> None:
        tx.defer(INSERT_FORM, name="beside the call")
        tx.defer(INSERT_CALL, claim=True, **values)
        await tx.flush(last=True)

    await db_of(client).write(insert)
    with pytest.raises(LostRace):
        await db_of(client).write(insert)
    assert len(await rows(client, sa.select(tables.calls))) == 1
    names = [row["name"] for row in await rows(client, sa.select(tables.forms.c.name))]
    assert names.count("beside the call") == 1  # the lost tries left nothing behind


async def test_simultaneous_first_reports_of_a_call_make_one_call(client):
    connector = await make_connector(client)
    body = {"account_id": connector.account_id, "from": "+7 900 1", "to": "200", "external_id": "x"}
    answers = await asyncio.gather(
        *(client.post("/v1/call", headers=connector.headers, json=body) for _ in range(8))
    )
    assert {a.status_code for a in answers} == {200}
    task_ids = {a.json()["tasks"][0]["task_id"] for a in answers}
    assert len(task_ids) == 1
    assert sum(a.json()["tasks"][0]["is_new_task"] for a in answers) == 1
    assert len(await rows(client, sa.select(tables.calls))) == 1


async def test_outbox_rows_of_one_key_commit_in_id_order(client, database_url):
    """Two answers in one chat, the first one's transaction still open: the second waits for
    it, so its row cannot be committed (and sent) first."""
    from frontdesk.core import outbox

    if database_url.startswith("sqlite"):
        pytest.skip("one writer: transactions cannot interleave on SQLite")
    db = db_of(client)
    release = asyncio.Event()
    order: list[str] = []

    async def first(tx: Tx) -> int:
        row = await outbox.enqueue(
            tx, kind="sendmessage", url="http://x/", body=b"1", ordering_key="chat:1"
        )
        await release.wait()
        order.append("first")
        return row

    async def second(tx: Tx) -> int:
        row = await outbox.enqueue(
            tx, kind="sendmessage", url="http://x/", body=b"2", ordering_key="chat:1"
        )
        order.append("second")
        return row

    first_task = asyncio.create_task(db.write(first))
    await asyncio.sleep(0.2)
    second_task = asyncio.create_task(db.write(second))
    await asyncio.sleep(0.3)
    waited = order == []  # the second waits on the first's key
    release.set()  # (before asserting: an open transaction would block the clean-up)
    first_id, second_id = await first_task, await second_task
    assert waited
    assert order == ["first", "second"] and first_id < second_id


async def test_simultaneous_messages_of_an_always_new_chat_each_make_a_task(client):
    """Each claims the chat's next generation; they take turns instead of losing to each
    other until their retries run out (PostgreSQL answered 500 to some of them)."""
    connector = await make_connector(client, routing="always_new")
    body = {"account_id": connector.account_id, "channel_id": "busy", "message_text": "hi"}
    answers = await asyncio.gather(
        *(client.post("/v1/getmessage", headers=connector.headers, json=body) for _ in range(24))
    )
    assert [a.status_code for a in answers] == [200] * 24
    assert len({a.json()["tasks"][0]["task_id"] for a in answers}) == 24
    generations = sorted(c["chat_generation"] for c in await channels_of(client))
    assert generations == list(range(1, 25))


async def test_simultaneous_messages_of_an_always_new_planfix_chat_each_make_a_task(client):
    provider = await make_planfix(client, routing="always_new")
    body = {
        "cmd": "newMessage",
        "providerId": provider.provider_id,
        "chatId": "busy",
        "planfix_token": provider.planfix_token,
        "message": "hi",
    }
    answers = await asyncio.gather(*(planfix_call(client, body) for _ in range(24)))
    assert [a.status_code for a in answers] == [200] * 24
    assert len({a.json()["number"] for a in answers}) == 24


async def test_simultaneous_closes_and_reopens_leave_the_task_as_its_last_action_says(client):
    """Each comment's change is decided from the task as it stands when the comment is
    written, so the newest action comment and the task agree."""
    agent = await make_v4_agent(client)

    async def act(task_id: int, action: str) -> int:
        path = f"/v4/tasks/{task_id}/comments"
        response = await client.post(path, headers=agent.headers, json={"action": action})
        return response.status_code

    disagreeing = []
    for _ in range(6):
        body = {"text": "Printer", "responsible": agent.user_id}
        task_id = (await client.post("/v4/tasks", headers=agent.headers, json=body)).json()["task"][
            "id"
        ]
        statuses = await asyncio.gather(
            *(act(task_id, action) for action in ["finished", "reopened"] * 8)
        )
        assert set(statuses) == {200}
        answer = await client.get(f"/v4/tasks/{task_id}", headers=agent.headers)
        task = answer.json()["task"]
        last_action = [c["action"] for c in task["comments"] if c.get("action")][-1]
        if ("close_date" in task) is not (last_action == "finished"):
            disagreeing.append(task_id)
    assert disagreeing == []


def close_after_the_first_read(monkeypatch, client, module, name: str, task_of_read) -> list[int]:
    """Make an agent close the routed task between the unit's routing read and its writes,
    once (the unit runs on PostgreSQL with other units interleaved; SQLite lets none in)."""
    if db_of(client).dialect == "sqlite":
        pytest.skip("a SQLite unit reads and writes in one transaction: nothing comes between")
    read = getattr(module, name)
    closed: list[int] = []

    async def read_then_close(*args, **kwargs):
        found = await read(*args, **kwargs)
        task_id = task_of_read(found)
        if not closed and task_id is not None:
            await close_task(client, task_id)  # (another connection: it commits at once)
            closed.append(task_id)
        return found

    monkeypatch.setattr(module, name, read_then_close)
    return closed


#: v1 requests routed to a conversation's open task: (path, body, the routing read, its task)
INTO_A_CONVERSATION = {
    "message": (
        "/v1/getmessage",
        {"channel_id": "chat-1", "message_text": "hi"},
        (messages, "find_conversation", lambda conversation: conversation.latest["task_id"]),
    ),
    "caller's call": (
        "/v1/call",
        {"from_number": "+100", "to_number": "+200"},
        (channels, "_latest", lambda row: row and row["task_id"]),
    ),
}


@pytest.mark.parametrize("kind", INTO_A_CONVERSATION)
async def test_what_is_routed_to_a_task_closed_meanwhile_goes_to_a_new_task(
    client, monkeypatch, kind
):
    path, body, (module, read, task_of_read) = INTO_A_CONVERSATION[kind]
    connector = await make_connector(client)
    body = {"account_id": connector.account_id, **body}
    first = await client.post(path, headers=connector.headers, json=body)
    first_task = first.json()["tasks"][0]["task_id"]
    closed = close_after_the_first_read(monkeypatch, client, module, read, task_of_read)
    mapped = {**body, "mappings": [{"code": "Subject", "value": "late"}]}
    second = await client.post(path, headers=connector.headers, json=mapped)
    assert second.status_code == 200, second.text
    assert closed == [first_task]
    landed = second.json()["tasks"][0]
    assert landed["is_new_task"] is True and landed["task_id"] != first_task
    assert len(await comments_of(client, first_task)) == 1
    assert len(await comments_of(client, landed["task_id"])) == 1
    assert "late" not in (await values_of(client, first_task)).values()


async def test_a_planfix_message_into_a_task_closed_meanwhile_goes_to_a_new_task(
    client, monkeypatch
):
    provider = await make_planfix(client)
    body = {
        "cmd": "newMessage",
        "providerId": provider.provider_id,
        "chatId": "chat-1",
        "planfix_token": provider.planfix_token,
        "message": "one",
    }
    first_task = (await planfix_call(client, body)).json()["number"]
    closed = close_after_the_first_read(
        monkeypatch, client, planfix_chat, "_chat", lambda chat: chat["task_id"]
    )
    second = await planfix_call(client, {**body, "message": "two"})
    assert second.status_code == 200, second.text
    assert closed == [first_task] and second.json()["number"] != first_task
    assert [c["text"] for c in await comments_of(client, first_task)] == ["one"]


async def test_a_repeated_report_finding_the_call_handed_over_meanwhile_notes_nothing(
    client, monkeypatch
):
    """Two reports of a call with the same new operator at once both read the task in other
    hands; the one whose hand-over comes second writes no second "took the call" note."""
    connector = await make_connector(client)
    operator = await make_agent(client, work_phone="200")
    body = {
        "account_id": connector.account_id,
        "external_id": "x",
        "from_number": "+1",
        "to_number": "+2",
    }
    first = await client.post("/v1/call", headers=connector.headers, json=body)
    task_id = first.json()["tasks"][0]["task_id"]
    read = calls.call_context

    async def read_then_hand_over(*args, **kwargs):
        context = await read(*args, **kwargs)
        if db_of(client).dialect == "postgresql" and context.reported_before is not None:
            await db_of(client).write(tasks.set_responsible, task_id, operator.user_id)
        return context

    monkeypatch.setattr(calls, "call_context", read_then_hand_over)
    if db_of(client).dialect == "sqlite":
        pytest.skip("a SQLite unit reads and writes in one transaction: nothing comes between")
    repeat = body | {"internal_number": "200"}
    answer = await client.post("/v1/call", headers=connector.headers, json=repeat)
    assert answer.status_code == 200, answer.text
    assert answer.json()["tasks"][0]["responsible_person"]["user_id"] == operator.user_id
    notes = [c["text"] for c in await comments_of(client, task_id) if c["direction"] == "internal"]
    assert notes == []


async def test_simultaneous_repeats_with_a_new_operator_note_the_hand_over_once(client):
    connector = await make_connector(client)
    await make_agent(client, work_phone="200")
    body = {"account_id": connector.account_id, "external_id": "x", "from_number": "+1"}
    body["to_number"] = "+2"
    first = await client.post("/v1/call", headers=connector.headers, json=body)
    task_id = first.json()["tasks"][0]["task_id"]
    repeat = body | {"internal_number": "200"}
    answers = await asyncio.gather(
        *(client.post("/v1/call", headers=connector.headers, json=repeat) for _ in range(8))
    )
    assert [a.status_code for a in answers] == [200] * 8
    notes = [c for c in await comments_of(client, task_id) if c["direction"] == "internal"]
    assert len(notes) == 1


async def test_a_message_waits_for_a_close_being_written_and_goes_to_a_new_task(client):
    """The close's transaction holds the task when the message's statement starts: the
    message waits for it, sees the task closed, and is routed anew (without the lock, its
    statement saw the task open and wrote into it once the close had committed)."""
    db = db_of(client)
    if db.dialect == "sqlite":
        pytest.skip("a SQLite unit reads and writes in one transaction: nothing comes between")
    connector = await make_connector(client)
    body = {"account_id": connector.account_id, "channel_id": "chat-1", "message_text": "one"}
    first = await client.post("/v1/getmessage", headers=connector.headers, json=body)
    first_task = first.json()["tasks"][0]["task_id"]
    closer = await asyncpg.connect(db.dsn)
    try:
        closing = closer.transaction()
        await closing.start()
        await closer.execute("UPDATE tasks SET closed_at = now() WHERE id = $1", first_task)
        sending = asyncio.create_task(
            client.post(
                "/v1/getmessage", headers=connector.headers, json=body | {"message_text": "two"}
            )
        )
        await _until_a_statement_waits_for_a_lock(closer)
        await closing.commit()
        second = await asyncio.wait_for(sending, timeout=10)
    finally:
        await closer.close()
    assert second.status_code == 200, second.text
    assert second.json()["tasks"][0]["task_id"] != first_task
    assert [c["text"] for c in await comments_of(client, first_task)] == ["one"]


async def _until_a_statement_waits_for_a_lock(conn) -> None:
    waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    for _ in range(500):
        if await conn.fetchval(waiting + " AND datname = current_database()"):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no statement came to wait for the close")


async def test_a_message_that_deadlocks_with_another_writer_runs_again(client):
    """A writer holds a task's values, a message with mappings takes the task's row and waits
    for them, the writer's comment then waits for the row: PostgreSQL ends the deadlock by
    failing one of them, and the message runs again instead of answering 500."""
    db = db_of(client)
    if db.dialect == "sqlite":
        pytest.skip("one writer: SQLite has no deadlocks")
    connector = await make_connector(client)
    mapped = {"mappings": [{"code": "SenderName", "value": "Paul"}]}
    body = {"account_id": connector.account_id, "channel_id": "chat-1", "message_text": "one"}
    first = await client.post("/v1/getmessage", headers=connector.headers, json=body | mapped)
    task_id = first.json()["tasks"][0]["task_id"]
    writer = await asyncpg.connect(db.dsn)
    try:
        writing = writer.transaction()
        await writing.start()
        await writer.execute("UPDATE task_values SET value = 'Agent' WHERE task_id = $1", task_id)
        second = body | mapped | {"message_text": "two"}
        sending = asyncio.create_task(
            client.post("/v1/getmessage", headers=connector.headers, json=second)
        )
        await _until_a_statement_waits_for_a_lock(writer)
        await writer.execute(
            "INSERT INTO comments (task_id, direction, text, send_to_external_channel,"
            " created_at) VALUES ($1, 'internal', 'agent', false, now())",
            task_id,
        )
        await writing.commit()
        answer = await asyncio.wait_for(sending, timeout=20)
    finally:
        await writer.close()
    assert answer.status_code == 200, answer.text
    assert answer.json()["tasks"][0]["task_id"] == task_id
    texts = [c["text"] for c in await comments_of(client, task_id)]
    assert texts.count("two") == 1 and "agent" in texts


async def test_a_repeated_report_under_reopen_closed_reopens_a_task_closed_meanwhile(
    client, monkeypatch
):
    connector = await make_connector(client, routing="reopen_closed")
    body = {"account_id": connector.account_id, "external_id": "x", "from_number": "+1"}
    body["to_number"] = "+2"
    first = await client.post("/v1/call", headers=connector.headers, json=body)
    task_id = first.json()["tasks"][0]["task_id"]
    closed = close_after_the_first_read(
        monkeypatch,
        client,
        calls,
        "call_context",
        lambda context: context.reported_before and context.reported_before["task_id"],
    )
    again = await client.post("/v1/call", headers=connector.headers, json=body)
    assert again.status_code == 200, again.text
    assert closed == [task_id] and again.json()["tasks"][0]["task_id"] == task_id
    task = await rows(
        client, sa.select(tables.tasks.c.closed_at).where(tables.tasks.c.id == task_id)
    )
    assert task == [{"closed_at": None}]
