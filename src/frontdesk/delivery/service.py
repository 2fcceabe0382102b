"""The delivery side of a process: the worker, the attachment fetcher and the pulse, built
from settings.

`frontdesk serve` runs it in its own event loop by default; `frontdesk worker` runs only this.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from frontdesk.delivery.fetcher import AttachmentFetcher
from frontdesk.delivery.http import Outbound
from frontdesk.delivery.pulse import pulse_forever
from frontdesk.delivery.worker import DeliveryWorker, RetryPolicy
from frontdesk.settings import Settings
from frontdesk.storage.blobs import BlobStore
from frontdesk.storage.database import Database


def outbound_from(settings: Settings) -> Outbound:
    return Outbound(
        connect_timeout=settings.delivery_connect_timeout,
        read_timeout=settings.delivery_read_timeout,
        allow_private=settings.delivery_allow_private,
    )


def worker_from(settings: Settings, db: Database, outbound: Outbound) -> DeliveryWorker:
    lease = (
        settings.delivery_connect_timeout
        + settings.delivery_read_timeout
        + settings.delivery_lease_margin_seconds
    )
    return DeliveryWorker(
        db,
        outbound,
        policy=RetryPolicy(settings.delivery_retry_delays),
        concurrency=settings.delivery_concurrency,
        poll_seconds=settings.delivery_poll_seconds,
        lease=timedelta(seconds=lease),
    )


def fetcher_from(settings: Settings, db: Database, outbound: Outbound) -> AttachmentFetcher:
    return AttachmentFetcher(
        db,
        BlobStore(settings.effective_files_dir),
        outbound,
        max_bytes=settings.max_upload_bytes,
        time_limit=settings.attachment_fetch_seconds,
        retry_delays=settings.attachment_fetch_retry_delays,
        concurrency=settings.attachment_fetch_concurrency,
        poll_seconds=settings.delivery_poll_seconds,
    )


@contextlib.asynccontextmanager
async def delivering(settings: Settings, db: Database) -> AsyncIterator[DeliveryWorker]:
    """Send the outbox, fetch attachments and pulse the extensions until the block ends."""
    outbound = outbound_from(settings)
    worker = worker_from(settings, db, outbound)
    tasks = [
        asyncio.create_task(worker.run(), name="delivery-worker"),
        asyncio.create_task(fetcher_from(settings, db, outbound).run(), name="attachment-fetcher"),
    ]
    if settings.pulse_interval_seconds:
        tasks.append(
            asyncio.create_task(
                pulse_forever(db, outbound, settings.pulse_interval_seconds), name="pulse"
            )
        )
    try:
        yield worker
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await outbound.close()
