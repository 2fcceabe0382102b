"""The clean-up loop: unattached uploads and long-expired tokens go, attached files stay."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import auth, files, history, outbox, outbox_admin, outbox_settle
from frontdesk.core.clock import utcnow
from frontdesk.core.maintenance import sweep
from frontdesk.errors import NotFound
from frontdesk.settings import Settings
from frontdesk.storage.sql import Query
from frontdesk.storage.tables import attachment_fetches, deliveries, delivery_attempts

from factories import (
    WatchedDatabase,
    app_client,
    db_of,
    fetches_of,
    make_connector,
    make_planfix,
    upload,
)


async def test_unattached_files_are_deleted_after_the_ttl_and_attached_ones_kept(client):
    connector = await make_connector(client)
    ctx = client.app.state.ctx
    kept_guid = await upload(client, connector, "kept.jpg")
    lost_guid = await upload(client, connector, "lost.jpg")
    response = await client.post(
        "/v1/getmessage",
        headers=connector.headers,
        json={
            "account_id": "acc-1",
            "channel_id": "c",
            "message_text": "see",
            "attachments": [kept_guid],
        },
    )
    assert response.status_code == 200

    young = await sweep(ctx.db, ctx.blobs, timedelta(hours=1))
    assert young.files == 0

    swept = await sweep(ctx.db, ctx.blobs, timedelta(seconds=0))
    assert swept.files == 1
    db = db_of(client)
    assert await db.read(files.extension_file, connector.extension_id, lost_guid) is None
    assert not ctx.blobs.path(lost_guid).exists()
    assert await db.read(files.extension_file, connector.extension_id, kept_guid) is not None
    assert ctx.blobs.path(kept_guid).exists()


async def test_long_expired_tokens_are_forgotten(client):
    connector = await make_connector(client)
    db = db_of(client)
    old = await db.write(
        auth.issue_extension_token, connector.client_id, connector.secret, timedelta(days=-8)
    )
    recent = await db.write(
        auth.issue_extension_token, connector.client_id, connector.secret, timedelta(days=-1)
    )
    ctx = client.app.state.ctx
    swept = await sweep(ctx.db, ctx.blobs, timedelta(days=1))
    assert swept.tokens == 1
    body = {"account_id": "acc-1", "channel_id": "c", "message_text": "x"}
    gone = await client.post(
        "/v1/getmessage", json=body, headers={"Authorization": f"Bearer {old.token}"}
    )
    assert gone.json()["error_code"] == "invalid_token"
    expired = await client.post(
        "/v1/getmessage", json=body, headers={"Authorization": f"Bearer {recent.token}"}
    )
    assert expired.json()["error_code"] == "expired_token"


async def test_stale_partial_uploads_are_removed(client):
    ctx = client.app.state.ctx
    incoming = ctx.blobs.root / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    stale, fresh = incoming / "stale", incoming / "fresh"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (two_days_ago, two_days_ago))
    await sweep(ctx.db, ctx.blobs, timedelta(days=1))
    assert not stale.exists()
    assert fresh.exists()


async def _delivery(db, status, finished_days_ago=None, key="chat:1", made_days_ago=None):
    """A delivery that reached `status` (one attempt logged), finished that many days ago and
    made then too, or `made_days_ago`."""
    row = await db.write(
        outbox.enqueue, kind="sendmessage", url="http://127.0.0.1:9/x", body=b"{}", ordering_key=key
    )
    if status == "pending":
        return row
    [claimed] = await db.write(outbox.claim, [row], timedelta(seconds=60))
    attempt = outbox_settle.Attempt(utcnow(), 3, 200 if status == "sent" else 500)
    await db.write(
        outbox_settle.record_attempt, claimed, attempt, retry_at=None, done=status == "sent"
    )
    finished = utcnow() - timedelta(days=finished_days_ago or 0)
    made = utcnow() - timedelta(days=made_days_ago) if made_days_ago else finished

    async def backdate(tx):
        await tx.run(BACKDATE, id=row, made=made, finished=finished)

    await db.write(backdate)
    return row


ATTEMPTS_OF = Query(
    sa.select(delivery_attempts.c.id).where(delivery_attempts.c.delivery_ref == p("id"))
)


async def _attempts_of(tx, row):
    return await tx.all(ATTEMPTS_OF, id=row)


BACKDATE = Query(
    sa.update(deliveries)
    .where(deliveries.c.id == p("id"))
    .values(created_at=p("made"), finished_at=p("finished"))
)


async def test_sent_deliveries_are_deleted_after_their_history_and_nothing_else(client):
    db = db_of(client)
    old_sent = await _delivery(db, "sent", 31, key="a")
    recent_sent = await _delivery(db, "sent", 29, key="b")
    old_dead = await _delivery(db, "dead", 60, key="c")
    pending = await _delivery(db, "pending", key="d")
    # made long ago, sent again recently (redelivered): its history starts again
    redelivered = await _delivery(db, "sent", 1, key="e", made_days_ago=40)
    ctx = client.app.state.ctx
    assert len(await db.read(_attempts_of, old_sent)) == 1

    kept_for_ever = await sweep(ctx.db, ctx.blobs, timedelta(days=1))
    assert kept_for_ever.deliveries == 0
    swept = await _sweep_history(client)

    assert swept.deliveries == 1
    with pytest.raises(NotFound):
        await db.read(outbox_admin.show_delivery, old_sent)
    assert await db.read(_attempts_of, old_sent) == []  # gone with it
    kept = (recent_sent, "sent"), (old_dead, "dead"), (pending, "pending"), (redelivered, "sent")
    for row, status in kept:
        assert (await db.read(outbox_admin.show_delivery, row))["status"] == status


async def test_a_long_history_is_deleted_in_batches(client, monkeypatch):
    monkeypatch.setattr(history, "BATCH", 2)
    db = db_of(client)
    rows = [await _delivery(db, "sent", 40, key=f"k{n}") for n in range(5)]
    swept = await _sweep_history(client)
    assert swept.deliveries == 5
    assert await db.read(outbox_admin.list_deliveries, None, 10) == []
    assert len(rows) == 5


async def test_a_sweep_with_no_old_history_writes_nothing_for_it(client, monkeypatch):
    # a write would take SQLite's write lock every few minutes for nothing
    monkeypatch.setattr(history, "BATCH", 2)
    db = db_of(client)
    await _deliveries(db, "dead", 40, count=3, prefix="old")
    await _deliveries(db, "sent", 1, count=3, prefix="new")
    watched = WatchedDatabase(db)
    swept = await _sweep_history(client, watched)
    assert swept.deliveries == 0 and watched.count(watched.writes, history.prune) == 0
    assert len(await db.read(outbox_admin.list_deliveries, None, 10)) == 6


@pytest.mark.parametrize("days, kept", [(30, False), (0, True)])
async def test_the_server_sweeps_sent_history_on_its_own_unless_told_to_keep_it(
    settings, days, kept
):
    """The wiring: the app's maintenance loop passes FRONTDESK_DELIVERY_HISTORY_DAYS on."""
    live = settings.model_copy(
        update={"maintenance_interval_seconds": 0.05, "delivery_history_days": days}
    )
    async with app_client(live) as c:
        db = db_of(c)
        old = await _delivery(db, "sent", 40)
        for _ in range(40):
            await asyncio.sleep(0.05)
            if not await db.read(outbox_admin.list_deliveries, None, 10):
                break
        remaining = [row["id"] for row in await db.read(outbox_admin.list_deliveries, None, 10)]
    assert remaining == ([old] if kept else [])


async def test_a_sweep_reads_no_further_than_the_history_it_deletes(client, monkeypatch):
    monkeypatch.setattr(history, "BATCH", 2)
    db = db_of(client)
    await _deliveries(db, "sent", 40, count=2, prefix="old")
    await _deliveries(db, "sent", 1, count=6, prefix="new")
    watched = WatchedDatabase(db)
    swept = await _sweep_history(client, watched)
    steps = [args for work, args in watched.reads if work is history.next_step]
    # the old pair, then a batch of young rows, and no further
    assert swept.deliveries == 2
    assert sum(1 for args in steps if args[0] is history.SENT_DELIVERIES) == 2


@pytest.mark.parametrize("days", [0.5, -1, 40000])
def test_the_history_is_none_or_at_least_a_day(days):
    with pytest.raises(ValueError, match="delivery_history_days"):
        Settings(delivery_history_days=days)


FINISH_FETCH = Query(
    sa.update(attachment_fetches)
    .where(attachment_fetches.c.id == p("id"))
    .values(status=p("status"), created_at=p("at"), finished_at=p("at"))
)


async def test_finished_downloads_go_with_the_history_and_failed_ones_stay(client):
    from test_planfix_fetch import message_with

    await make_planfix(client)
    await message_with(client, ("a.jpg", "http://127.0.0.1:9/a"), ("b.jpg", "http://127.0.0.1:9/b"))
    await message_with(client, ("c.jpg", "http://127.0.0.1:9/c"), chat_id="chat-2")
    done, failed, pending = [row["id"] for row in await fetches_of(client)]
    long_ago = utcnow() - timedelta(days=40)

    async def finish(tx):
        await tx.run(FINISH_FETCH, id=done, status="done", at=long_ago)
        await tx.run(FINISH_FETCH, id=failed, status="failed", at=long_ago)

    await db_of(client).write(finish)
    swept = await _sweep_history(client)
    assert swept.downloads == 1
    assert [row["id"] for row in await fetches_of(client)] == [failed, pending]


async def _sweep_history(client, db=None):
    """A sweep that keeps 30 days of delivery history (uploads kept a day), on `db` if given."""
    ctx = client.app.state.ctx
    return await sweep(db or ctx.db, ctx.blobs, timedelta(days=1), timedelta(days=30))


async def _deliveries(db, status, days_ago, *, count, prefix):
    """`count` deliveries of one status, finished `days_ago`, keys prefix0, prefix1, …"""
    for n in range(count):
        await _delivery(db, status, days_ago, key=f"{prefix}{n}")
