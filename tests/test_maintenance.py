"""The clean-up loop: unattached uploads and long-expired tokens go, attached files stay."""

from __future__ import annotations

import os
import time
from datetime import timedelta

from frontdesk.core import auth, files
from frontdesk.core.maintenance import sweep

from factories import db_of, make_connector, upload


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
