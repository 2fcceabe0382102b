"""Settling finished deliveries, alone and together with the next claim (core.outbox_settle)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from frontdesk.core import outbox, outbox_admin, outbox_settle
from frontdesk.core.clock import utcnow
from frontdesk.core.outbox_settle import Attempt, Outcome
from receivers import Script
from test_delivery_worker import enqueue, make_worker, show

from factories import WatchedDatabase, db_of

LEASE = timedelta(seconds=60)


def sent(claimed):
    return Outcome(claimed, Attempt(utcnow(), 3, status_code=200), None, True)


def failed(claimed, retry_in=None):
    retry_at = None if retry_in is None else utcnow() + timedelta(seconds=retry_in)
    return Outcome(claimed, Attempt(utcnow(), 3, 500, "HTTP 500"), retry_at, False)


async def settle_and_claim(client, outcomes, limit=10):
    return await db_of(client).write(outbox_settle.settle_and_claim, outcomes, limit, LEASE, 3)


async def test_a_settle_frees_its_channels_next_row_for_the_claim_it_comes_with(client):
    first = await enqueue(client, "http://127.0.0.1:9/a", key="chat:1")
    second = await enqueue(client, "http://127.0.0.1:9/b", key="chat:1")
    [head] = await db_of(client).write(outbox.claim_due, 10, LEASE)
    assert head.id == first
    assert await db_of(client).write(outbox.claim_due, 10, LEASE) == []  # held back by the head

    [claimed] = await settle_and_claim(client, [sent(head)])

    assert claimed.id == second and claimed.attempt == 1
    shown = await show(client, first)
    assert shown["status"] == "sent"
    assert [a["status_code"] for a in shown["attempt_log"]] == [200]
    assert (await show(client, second))["status"] == "sending"


async def test_a_row_due_again_later_still_holds_back_its_channel(client):
    first = await enqueue(client, "http://127.0.0.1:9/a", key="chat:1")
    await enqueue(client, "http://127.0.0.1:9/b", key="chat:1")
    [head] = await db_of(client).write(outbox.claim_due, 10, LEASE)

    assert await settle_and_claim(client, [failed(head, retry_in=60)]) == []

    shown = await show(client, first)
    assert shown["status"] == "pending" and shown["last_error"] == "HTTP 500"


async def test_a_dead_row_frees_its_channel_and_others_are_claimed_too(client):
    first = await enqueue(client, "http://127.0.0.1:9/a", key="chat:1")
    second = await enqueue(client, "http://127.0.0.1:9/b", key="chat:1")
    [head] = await db_of(client).write(outbox.claim_due, 10, LEASE)
    other = await enqueue(client, "http://127.0.0.1:9/c", key="chat:2")

    claimed = await settle_and_claim(client, [failed(head)])

    assert [c.id for c in claimed] == [second, other]
    assert (await show(client, first))["status"] == "dead"


async def test_a_stale_outcome_frees_nothing(client):
    row = await enqueue(client, "http://127.0.0.1:9/a", key="chat:1")
    after = await enqueue(client, "http://127.0.0.1:9/b", key="chat:1")
    [late] = await db_of(client).write(outbox.claim_due, 10, timedelta(seconds=-1))  # expired
    [current] = await db_of(client).write(outbox.claim_due, 10, LEASE)  # claimed again

    assert await settle_and_claim(client, [sent(late)]) == []
    assert (await show(client, row))["status"] == "sending"  # still the current claim's
    [claimed] = await settle_and_claim(client, [sent(current)])
    assert claimed.id == after


async def test_an_outcome_past_its_lease_settles_and_is_not_claimed_again(client):
    # its lease ran out, so its row is due as well: the statement that settles it must not
    # also claim it (PostgreSQL would change the row twice in one statement)
    row = await enqueue(client, "http://127.0.0.1:9/a", key="chat:1")
    [claimed] = await db_of(client).write(outbox.claim_due, 10, timedelta(seconds=-1))
    assert await settle_and_claim(client, [sent(claimed)]) == []
    shown = await show(client, row)
    assert shown["status"] == "sent" and len(shown["attempt_log"]) == 1


async def test_rows_being_settled_do_not_use_up_the_claims_limit(client):
    # the settled row's lease ran out, so the statement's snapshot sees it due, and older
    a = await enqueue(client, "http://127.0.0.1:9/a", key="chat:1")
    b = await enqueue(client, "http://127.0.0.1:9/b", key="chat:2")
    [expired] = await db_of(client).write(outbox.claim, [a], timedelta(seconds=-1))
    claimed = await settle_and_claim(client, [sent(expired)], limit=1)
    assert [c.id for c in claimed] == [b]


async def test_the_limit_counts_what_the_claim_takes(client):
    rows = [await enqueue(client, "http://127.0.0.1:9/x", key=f"chat:{n}") for n in range(5)]
    [head] = await db_of(client).write(outbox.claim_due, 1, LEASE)
    claimed = await settle_and_claim(client, [sent(head)], limit=2)
    assert [c.id for c in claimed] == rows[1:3]


async def test_an_answer_with_nul_characters_is_recorded(client, receiver, outbound):
    receiver.answer(Script(200, body=b"ok\x00done"))
    row = await enqueue(client, receiver.url + "/hook")
    await make_worker(client, outbound).drain()
    shown = await show(client, row)
    assert shown["status"] == "sent"
    assert shown["attempt_log"][0]["response_excerpt"] == "ok\ufffddone"


async def test_a_burst_to_one_chat_goes_out_whole_and_in_order(client, receiver, outbound):
    for n in range(30):
        await enqueue(client, receiver.url + "/hook", f'{{"n":{n}}}'.encode(), key="chat:1")
    await make_worker(client, outbound, concurrency=8).drain()
    assert [r.body for r in receiver.requests] == [f'{{"n":{n}}}'.encode() for n in range(30)]
    listed = await db_of(client).read(outbox_admin.list_deliveries, "sent", 100)
    assert len(listed) == 30


async def database_down(work):
    if work is outbox_settle.settle_and_claim:  # (say, for that moment)
        raise ConnectionError("the database went away")


async def test_a_failing_settle_and_claim_is_settled_alone_and_not_retried_at_once(
    client, receiver, outbound
):
    first = await enqueue(client, receiver.url + "/a", key="chat:1")
    second = await enqueue(client, receiver.url + "/b", key="chat:1")
    worker = make_worker(client, outbound, poll_seconds=0.25)
    worker.db = failing = WatchedDatabase(db_of(client), database_down)
    running = asyncio.create_task(worker.run())
    try:
        await receiver.wait_for(2)  # the second after the first's outcome was recorded
        await asyncio.sleep(0.5)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    # a failure per settle, not a loop retrying the same one
    assert 1 <= failing.count(failing.writes, outbox_settle.settle_and_claim) <= 4
    assert [r.path for r in receiver.requests] == ["/a", "/b"]
    assert (await show(client, first))["status"] == "sent"
    assert (await show(client, second))["status"] == "sent"


async def test_stopping_during_a_settle_and_claim_loses_no_outcome_and_keeps_no_row(
    client, receiver, outbound
):
    first = await enqueue(client, receiver.url + "/a", key="chat:1")
    second = await enqueue(client, receiver.url + "/b", key="chat:1")
    worker = make_worker(client, outbound, poll_seconds=0.25)
    started = asyncio.Event()

    async def slow_claims(work):  # time to stop the worker in the middle of one
        if work is outbox_settle.settle_and_claim:
            started.set()
            await asyncio.sleep(0.3)

    worker.db = WatchedDatabase(db_of(client), slow_claims)
    running = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 10)  # the first sent, its settle under way
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)

    assert [r.path for r in receiver.requests] == ["/a"]
    shown = await show(client, first)
    assert shown["status"] == "sent" and len(shown["attempt_log"]) == 1
    given_back = await show(client, second)  # claimed by that statement, never sent
    assert (given_back["status"], given_back["attempts"]) == ("pending", 0)
