"""The outbox worker against a real local receiver: signing, retries, dead letters, order."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import timedelta

import pytest
from aiopyrus.utils.crypto import verify_webhook_signature

from frontdesk.core import outbox, outbox_admin, outbox_settle
from frontdesk.delivery.http import Outbound
from frontdesk.delivery.signing import DELIVERY_ID_HEADER, pyrus_signature
from frontdesk.delivery.worker import DeliveryWorker, RetryPolicy
from receivers import Script

from factories import db_of, make_connector


def make_worker(client, outbound, delays=(0.05, 0.05), **options) -> DeliveryWorker:
    return DeliveryWorker(db_of(client), outbound, policy=RetryPolicy(delays), **options)


async def enqueue(client, url, body=b'{"a":1}', key="channel:1", extension_id=None):
    return await db_of(client).write(
        outbox.enqueue,
        kind="sendmessage",
        url=url,
        body=body,
        ordering_key=key,
        extension_id=extension_id,
    )


async def show(client, row_id):
    return await db_of(client).read(outbox_admin.show_delivery, row_id)


def test_signature_matches_the_spec_vectors():
    assert pyrus_signature("my-extension-secret", b"") == "37EA5C90F09783D424EECE4319E64CAE610F401E"
    body = b'{"account_id":"uniqueID12345"}'
    assert (
        pyrus_signature("my-extension-secret", body) == "ABAD80378B8277F59BE5FFEA6F44D716CC69D3D1"
    )


async def test_signed_delivery_with_pyrus_headers(client, receiver, outbound):
    connector = await make_connector(client)
    body = json.dumps({"account_id": "acc-1", "message_text": "Привет"}).encode()
    row = await enqueue(
        client, receiver.url + "/sendmessage", body, extension_id=connector.extension_id
    )
    await make_worker(client, outbound).drain()

    [request] = receiver.requests
    assert request.method == "POST" and request.path == "/sendmessage"
    assert request.body == body
    assert request.headers["User-Agent"] == "Pyrus-Extensions-1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Pyrus-Retry"] == "1/3"
    signature = request.headers["X-Pyrus-Sig"]
    assert signature == signature.upper()
    assert verify_webhook_signature(request.body, signature, connector.secret)
    shown = await show(client, row)
    assert shown["status"] == "sent"
    assert request.headers["X-Frontdesk-Delivery"] == shown["delivery_id"]
    assert [a["status_code"] for a in shown["attempt_log"]] == [200]


@pytest.mark.parametrize(
    "scripts, attempts, status",
    [
        ([Script(500), Script(503), Script(200)], 3, "sent"),
        ([Script(500), Script(500), Script(500)], 3, "dead"),
        ([Script(410)], 1, "dead"),
        ([Script(400)], 1, "dead"),
        ([Script(302, {"Location": "http://127.0.0.1:1/elsewhere"})], 1, "dead"),
        ([Script(429, {"Retry-After": "0"}), Script(200)], 2, "sent"),
        ([Script(200, delay=1.5), Script(200)], 2, "sent"),
    ],
    ids=[
        "5xx-then-ok",
        "5xx-dead",
        "410-at-once",
        "400-at-once",
        "redirect-not-followed",
        "429-retry-after",
        "timeout-retried",
    ],
)
async def test_failure_classes(client, receiver, outbound, scripts, attempts, status):
    receiver.answer(*scripts)
    row = await enqueue(client, receiver.url + "/hook")
    await make_worker(client, outbound).drain()
    shown = await show(client, row)
    assert shown["status"] == status
    assert len(shown["attempt_log"]) == attempts
    retries = [r.headers["X-Pyrus-Retry"] for r in receiver.requests]
    assert retries == [f"{n}/3" for n in range(1, len(receiver.requests) + 1)]
    ids = {r.headers["X-Frontdesk-Delivery"] for r in receiver.requests}
    assert ids == {shown["delivery_id"]}
    assert not any(r.path == "/elsewhere" for r in receiver.requests)


async def test_retry_after_is_honoured(client, receiver, outbound):
    receiver.answer(Script(429, {"Retry-After": "30"}))
    row = await enqueue(client, receiver.url + "/hook")
    await make_worker(client, outbound).drain()
    shown = await show(client, row)
    assert shown["status"] == "pending"
    wait = shown["next_attempt_at"] - shown["attempt_log"][0]["started_at"]
    assert timedelta(seconds=29) < wait < timedelta(seconds=35)


async def test_receiver_down_is_retried_then_dead(client, outbound):
    row = await enqueue(client, "http://127.0.0.1:9/unreachable")
    await make_worker(client, outbound).drain()
    shown = await show(client, row)
    assert shown["status"] == "dead"
    assert len(shown["attempt_log"]) == 3
    assert all(a["status_code"] is None and a["error"] for a in shown["attempt_log"])


async def test_private_addresses_are_refused_by_default(client, receiver):
    guarded = Outbound(connect_timeout=1.0, read_timeout=1.0)
    try:
        row = await enqueue(client, receiver.url + "/hook")
        localhost = await enqueue(client, f"http://localhost:{receiver.port}/hook")
        await make_worker(client, guarded).drain()
    finally:
        await guarded.close()
    assert receiver.requests == []
    for delivery in (row, localhost):
        shown = await show(client, delivery)
        assert shown["status"] == "dead"
        [attempt] = shown["attempt_log"]  # a refusal is not retried
        assert "public" in attempt["error"]


async def test_one_channel_in_order_channels_in_parallel(client, receiver, outbound):
    # the first message of channel 1 fails once: the second must wait for it
    receiver.answer(Script(500))
    first = await enqueue(client, receiver.url + "/c1", b'{"n":1}', key="channel:1")
    await enqueue(client, receiver.url + "/c1", b'{"n":2}', key="channel:1")
    await enqueue(client, receiver.url + "/c2", b'{"n":3}', key="channel:2")
    await make_worker(client, outbound).drain()
    channel_1 = [json.loads(r.body)["n"] for r in receiver.requests if r.path == "/c1"]
    assert channel_1 == [1, 1, 2]
    assert (await show(client, first))["status"] == "sent"


async def test_slow_channel_does_not_hold_up_others(client, receiver, outbound):
    receiver.answer(Script(200, delay=1.5))
    await enqueue(client, receiver.url + "/slow", key="channel:slow")
    for n in range(5):
        await enqueue(client, receiver.url + "/fast", json.dumps({"n": n}).encode(), key=f"c:{n}")
    draining = asyncio.create_task(make_worker(client, outbound, delays=()).drain())
    # all six arrive while the slow one is still being answered
    arrived = await receiver.wait_for(6, timeout=1.0)
    assert sorted(r.path for r in arrived) == ["/fast"] * 5 + ["/slow"]
    await draining


async def test_redeliver_sends_a_dead_delivery_again_with_the_same_id(client, receiver, outbound):
    receiver.answer(Script(500), Script(500), Script(500))
    row = await enqueue(client, receiver.url + "/hook")
    worker = make_worker(client, outbound)
    await worker.drain()
    assert (await show(client, row))["status"] == "dead"
    # named twice, sent again once
    assert await db_of(client).write(outbox_admin.redeliver, [row, row]) == [row]
    await worker.drain()
    shown = await show(client, row)
    assert shown["status"] == "sent"
    assert len({r.headers["X-Frontdesk-Delivery"] for r in receiver.requests}) == 1
    # the log in the order the attempts were made, the redelivery's counted from 1 again
    log = [(a["attempt"], a["status_code"]) for a in shown["attempt_log"]]
    assert log == [(1, 500), (2, 500), (3, 500), (1, 200)]


async def test_an_expired_lease_is_claimed_again(client, receiver, outbound):
    row = await enqueue(client, receiver.url + "/hook")
    # a worker that claimed it and died: nothing sent, the lease runs out
    claimed = await db_of(client).write(outbox.claim_due, 10, timedelta(seconds=-1))
    assert [c.id for c in claimed] == [row]
    await make_worker(client, outbound).drain()
    assert len(receiver.requests) == 1
    shown = await show(client, row)
    assert shown["status"] == "sent" and shown["attempts"] == 2


async def test_two_workers_never_send_one_delivery_twice(client, receiver, outbound):
    receiver.answer(*[Script(200, delay=0.05) for _ in range(40)])
    for n in range(40):
        await enqueue(
            client, receiver.url + "/hook", json.dumps({"n": n}).encode(), key=f"k{n % 8}"
        )
    workers = [make_worker(client, outbound, concurrency=8) for _ in range(2)]
    await asyncio.gather(*(w.drain() for w in workers))
    arrived = [json.loads(r.body)["n"] for r in receiver.requests]
    assert sorted(arrived) == list(range(40))
    for key in range(8):  # each chat in order, whichever worker sent it
        of_key = [n for n in arrived if n % 8 == key]
        assert of_key == sorted(of_key)


async def test_a_late_outcome_of_an_expired_claim_changes_nothing(client, receiver, outbound):
    db = db_of(client)
    row = await enqueue(client, receiver.url + "/hook")
    [late] = await db.write(outbox.claim_due, 10, timedelta(seconds=-1))  # A, then its lease ends
    [current] = await db.write(outbox.claim_due, 10, timedelta(seconds=60))  # B took it
    assert (late.attempt, current.attempt) == (1, 2)
    failed = outbox_settle.Attempt(outbox.utcnow(), 5, status_code=500, error="HTTP 500")
    await db.write(outbox_settle.record_attempt, late, failed, retry_at=None, done=False)
    assert (await show(client, row))["status"] == "sending"  # still B's
    ok = outbox_settle.Attempt(outbox.utcnow(), 5, status_code=200)
    await db.write(outbox_settle.record_attempt, current, ok, retry_at=None, done=True)
    assert (await show(client, row))["status"] == "sent"


async def test_a_delivery_whose_worker_keeps_dying_ends_dead(client):
    db = db_of(client)
    row = await enqueue(client, "http://127.0.0.1:9/hook")
    for _ in range(3):  # claimed, and the worker dies before recording anything
        assert await db.write(outbox.claim_due, 10, timedelta(seconds=-1), 3)
    assert await db.write(outbox.claim_due, 10, timedelta(seconds=60), 3) == []
    shown = await show(client, row)
    assert shown["status"] == "dead" and "stopped" in shown["last_error"]


async def test_an_unsendable_url_costs_an_attempt_not_the_channel(client, receiver, outbound):
    bad = await enqueue(client, "http://[::1/broken", key="channel:1")
    after = await enqueue(client, receiver.url + "/hook", key="channel:1")
    await make_worker(client, outbound).drain()
    assert (await show(client, bad))["status"] == "dead"
    assert (await show(client, after))["status"] == "sent"


def test_retry_after_dates_without_a_zone_are_gmt():
    from frontdesk.delivery.worker import _retry_after

    assert _retry_after("Wed, 21 Oct 2015 07:28:00 -0000", 61.0) == 0.0
    assert 3500 < _retry_after("Wed, 21 Oct 2099 07:28:00 GMT", 61.0) <= 3600
    assert _retry_after("soon", 61.0) == 61.0


@pytest.mark.parametrize(
    "host",
    ["①②⑦.⓪.⓪.①", "１２７．０．０．１", "127。0。0。1", "127.0.0.𝟏", "[::ffff:127.0.0.1]",
     "[64:ff9b::7f00:1]", "[2002:7f00:1::]", "[::127.0.0.1]", "0.0.0.0", "[::1]", "10.1.2.3"],
)  # fmt: skip
async def test_the_guard_sees_the_address_aiohttp_would_use(receiver, host):
    from frontdesk.delivery.http import Refused

    guarded = Outbound(connect_timeout=1.0, read_timeout=1.0)
    try:
        with pytest.raises(Refused):
            await guarded.request("POST", f"http://{host}:{receiver.port}/hook", body=b"{}")
    finally:
        await guarded.close()
    assert receiver.requests == []


def test_public_addresses_stay_public():
    from frontdesk.delivery.http import is_public

    assert is_public("8.8.8.8") and is_public("2606:4700:4700::1111")
    assert not is_public("2001:0:4136:e378:8000:63bf:f5ff:fffe")  # Teredo of 10.0.0.1


async def test_an_answer_arriving_in_pieces_is_read_whole(outbound):
    from aiohttp import web

    async def slow_body(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b'{"account_id": "acc-9", ')
        await asyncio.sleep(0.05)
        await response.write(b'"account_name": "Shop"}')
        return response

    app = web.Application()
    app.router.add_post("/authorize", slow_body)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        answer = await outbound.request("POST", f"http://127.0.0.1:{port}/authorize")
    finally:
        await runner.cleanup()
    assert json.loads(answer.body) == {"account_id": "acc-9", "account_name": "Shop"}


async def test_a_stopped_worker_gives_back_what_it_claimed_and_did_not_send(
    client, receiver, outbound
):
    """It claims a round ahead of its free slots; stopping must not spend those attempts."""
    receiver.answer(*[Script(200, delay=0.5)] * 3)
    rows = [await enqueue(client, receiver.url + "/hook", key=f"chat:{n}") for n in range(3)]
    worker = make_worker(client, outbound, concurrency=1)
    running = asyncio.create_task(worker.run())
    while len(receiver.requests) < 1:
        await asyncio.sleep(0.01)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    shown = [await show(client, row) for row in rows]
    in_flight = [row for row, s in zip(rows, shown, strict=True) if s["attempts"] == 1]
    given_back = [row for row, s in zip(rows, shown, strict=True) if s["attempts"] == 0]
    assert len(in_flight) == 1  # the send under way ended within the stop's grace
    assert len(given_back) == 2
    assert {s["status"] for s in shown if s["attempts"] == 0} == {"pending"}
    await make_worker(client, outbound).drain()
    assert {(await show(client, row))["status"] for row in given_back} == {"sent"}


async def test_a_second_cancel_during_the_stop_grace_still_settles_and_gives_back(
    client, receiver, outbound
):
    """Stopping waits for the sends under way; cancelled again meanwhile (a second Ctrl-C),
    the worker still records what finished and gives back what it claimed ahead."""
    receiver.answer(Script(200, delay=0.3), Script(200, delay=3.0))
    rows = [await enqueue(client, receiver.url + "/hook", key=f"chat:{n}") for n in range(4)]
    worker = make_worker(client, outbound, concurrency=2)
    running = asyncio.create_task(worker.run())
    while len(receiver.requests) < 2:
        await asyncio.sleep(0.01)
    running.cancel()  # the grace begins
    await asyncio.sleep(0.6)  # the 0.3 s send ended meanwhile: an outcome to record
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    shown = sorted([(s["status"], s["attempts"]) for s in [await show(client, r) for r in rows]])
    # the 3 s send, cut off, is left to its lease; the one that ended is recorded as sent
    assert shown == [("pending", 0), ("pending", 0), ("sending", 1), ("sent", 1)]


async def test_a_claimed_row_that_waits_past_its_lease_margin_is_given_back_not_sent_twice(
    client, receiver
):
    """Rows are claimed ahead of their turn; one whose lease could no longer cover an attempt
    goes back instead of out (a lease ending mid-send let another claim send it again)."""
    receiver.answer(*[Script(200, delay=0.3)] * 12)
    rows = [await enqueue(client, receiver.url + "/hook", key=f"chat:{n}") for n in range(4)]
    slow = Outbound(connect_timeout=0.1, read_timeout=0.5, allow_private=True)
    try:
        # the lease covers one attempt (0.6 s) and 0.2 s of waiting, not three sends' 0.9 s
        worker = make_worker(client, slow, concurrency=1, lease=timedelta(seconds=0.8))
        await worker.drain(timeout=20)
    finally:
        await slow.close()
    sent = receiver.header_values(DELIVERY_ID_HEADER)
    assert len(sent) == len(set(sent)), f"a delivery went out twice: {sent}"
    shown = [await show(client, row) for row in rows]
    assert {s["status"] for s in shown} == {"sent"}
    assert len(sent) == 4


@pytest.mark.parametrize("encoding", [None, "gzip"])
async def test_an_answer_is_kept_to_its_cap_however_it_is_sent(receiver, outbound, encoding):
    from frontdesk.delivery.http import RESPONSE_CAP

    body = b"0" * (50 * 1024 * 1024)
    if encoding:  # a few dozen KB on the wire
        body = gzip.compress(body)
        assert len(body) < RESPONSE_CAP
    headers = {"Content-Encoding": encoding} if encoding else {}
    receiver.answer(Script(status=200, headers=headers, body=body))
    answer = await outbound.request("POST", f"{receiver.url}/sendmessage", body=b"{}")
    assert answer.status == 200
    assert answer.body == b"0" * RESPONSE_CAP
