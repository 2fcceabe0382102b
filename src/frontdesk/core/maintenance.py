"""Periodic clean-up: files nobody attached, tokens long expired, uploads cut short."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from frontdesk.core import auth, files
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


async def sweep(db: Database, blobs: BlobStore, unattached_file_ttl: timedelta) -> Swept:
    """Delete unattached files older than the TTL (rows first, then bytes) and dead tokens."""
    deleted = await _sweep_files(db, blobs, utcnow() - unattached_file_ttl)
    tokens = await db.write(auth.delete_expired_tokens, EXPIRED_TOKEN_MEMORY)
    blobs.clear_incoming(older_than=time.time() - STALE_INCOMING_SECONDS)
    if deleted or tokens:
        log.info("Swept %d unattached files and %d expired tokens", deleted, tokens)
    return Swept(deleted, tokens)
