"""Periodic clean-up: files nobody attached, tokens long expired, uploads cut short, and the
history of deliveries sent long ago."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from frontdesk.core import auth, files, history
from frontdesk.core.clock import utcnow
from frontdesk.storage.blobs import BlobStore
from frontdesk.storage.database import Database

log = logging.getLogger(__name__)

#: expired tokens still answer `expired_token` (not `invalid_token`) for this long
EXPIRED_TOKEN_MEMORY = timedelta(days=7)
#: a partial upload older than this belongs to no live request
STALE_INCOMING_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Swept:
    files: int
    tokens: int
    deliveries: int = 0
    downloads: int = 0


async def _sweep_files(db: Database, blobs: BlobStore, cutoff: datetime) -> int:
    deleted = 0
    while candidates := await db.read(files.unreferenced_files, cutoff):
        for file_id in candidates:
            try:  # one unit per file: a file attached meanwhile fails alone
                guid = await db.write(files.delete_if_unreferenced, file_id)
            except Exception:
                log.info("File %d is in use after all; kept", file_id, exc_info=True)
                continue
            if guid is not None:
                blobs.delete(guid)  # after the row is gone: a row never points at no bytes
                deleted += 1
        if len(candidates) < 500:
            break
    return deleted


async def _sweep_history(db: Database, kind: history.History, before: datetime) -> int:
    """Oldest first, a batch of rows at a time (core.history). Between batches the loop
    serves requests: on SQLite a read holds it, and the rows kept (dead deliveries) are read
    again at every sweep (about 16 ms a batch with 8 KB bodies)."""
    deleted, after = 0, 0
    while step := await db.read(history.next_step, kind, after, before, history.BATCH):
        if step.found:
            deleted += await db.write(history.prune, kind, after, step.upto, before)
        if not step.more:
            break
        after = step.upto
        await asyncio.sleep(0)
    return deleted


async def sweep(
    db: Database,
    blobs: BlobStore,
    unattached_file_ttl: timedelta,
    delivery_history: timedelta | None = None,
) -> Swept:
    """Delete unattached files older than the TTL (rows first, then bytes), dead tokens, and
    deliveries sent and attachments downloaded longer than `delivery_history` ago (None: kept
    for ever)."""
    deleted = await _sweep_files(db, blobs, utcnow() - unattached_file_ttl)
    tokens = await db.write(auth.delete_expired_tokens, EXPIRED_TOKEN_MEMORY)
    blobs.clear_incoming(older_than=time.time() - STALE_INCOMING_SECONDS)
    sent = downloads = 0
    if delivery_history is not None:
        before = utcnow() - delivery_history
        sent = await _sweep_history(db, history.SENT_DELIVERIES, before)
        downloads = await _sweep_history(db, history.FINISHED_DOWNLOADS, before)
    if deleted or tokens or sent or downloads:
        log.info(
            "Swept %d unattached files, %d expired tokens, %d sent deliveries and %d "
            "finished downloads",
            deleted,
            tokens,
            sent,
            downloads,
        )
    return Swept(deleted, tokens, sent, downloads)
