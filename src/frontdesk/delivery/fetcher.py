"""The attachment fetcher: downloads the files chat messages name by URL, in the background.

Claims due jobs (core.attachment_fetches) up to N at a time and streams each download into
the file store through the one outbound HTTP module (its guard refuses private addresses; its
size cap and time limit end a file that is too large or never finishes). A fetched file is
attached to its comment; a transient failure (no answer, 5xx, 429) is tried again later; any
other leaves the file's name and URL in the comment's text. Runs beside the delivery worker
(delivery.service), in `frontdesk serve` or `frontdesk worker`.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from frontdesk.core import attachment_fetches
from frontdesk.core.attachment_fetches import Fetch
from frontdesk.core.clock import utcnow
from frontdesk.delivery.http import (
    Download,
    Outbound,
    OutboundError,
    OverLimit,
    Refused,
    TooSlow,
)
from frontdesk.delivery.steps import run_steps
from frontdesk.errors import TooLarge
from frontdesk.storage.blobs import BlobStore, BlobWriter
from frontdesk.storage.database import Database

log = logging.getLogger(__name__)

MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")


class _GiveUp(Exception):
    """This file will not be fetched: trying again would fail the same way."""


class _TryAgain(Exception):
    """This attempt failed for a reason that may pass (no answer, 5xx, 429)."""


def content_type_of(declared: str, name: str) -> str:
    """The answer's media type if it is a plausible one, else one guessed from the name."""
    media = declared.split(";", 1)[0].strip().lower()
    if media and media != "application/octet-stream" and MEDIA_TYPE.fullmatch(media):
        return media
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _judge(download: Download) -> None:
    """Raise what a non-2xx answer means for the job."""
    if 200 <= download.status < 300:
        return
    if download.status == 429 or download.status >= 500:
        raise _TryAgain(f"HTTP {download.status}")
    raise _GiveUp(f"HTTP {download.status}")


class AttachmentFetcher:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        outbound: Outbound,
        *,
        max_bytes: int,
        time_limit: float,
        retry_delays: Sequence[float] = (30.0, 300.0),
        concurrency: int = 4,
        poll_seconds: float = 0.25,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.outbound = outbound
        self.max_bytes = max_bytes
        self.time_limit = time_limit
        self.retry_delays = tuple(retry_delays)
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        # a job whose fetcher died is taken again once its download could not still be running
        self.lease = timedelta(seconds=time_limit + 60)
        self._in_flight: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Fetch until cancelled; a failing database is logged and retried."""
        try:
            await run_steps(self.step, self._idle, log)
        finally:
            for task in list(self._in_flight):
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def step(self) -> int:
        """Claim what is due into the free slots and start fetching it; returns how many."""
        free = self.concurrency - len(self._in_flight)
        if free <= 0 or not await self.db.read(attachment_fetches.due_ids, 1):
            return 0
        claimed = await self.db.write(attachment_fetches.claim_due, free, self.lease)
        for fetch in claimed:
            task = asyncio.create_task(self._settle(fetch))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(claimed)

    async def drain(self, timeout: float = 10.0, horizon: float = 1.0) -> None:
        """Fetch until nothing runs and nothing falls due within `horizon` seconds (tests)."""
        async with asyncio.timeout(timeout):
            while True:
                if await self.step() or self._in_flight:
                    await self._idle()
                    continue
                due = await self.db.read(attachment_fetches.next_due)
                if due is None or due > utcnow() + timedelta(seconds=horizon):
                    return
                await asyncio.sleep(min(self.poll_seconds, 0.05))

    async def _idle(self) -> None:
        if self._in_flight:
            await asyncio.wait(
                self._in_flight, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        else:
            await asyncio.sleep(self.poll_seconds)

    async def _settle(self, fetch: Fetch) -> None:
        """Fetch one file and record what came of it."""
        try:
            await self._fetch(fetch)
        except _GiveUp as failure:
            await self._record(attachment_fetches.give_up, fetch, str(failure))
        except _TryAgain as failure:
            await self._again_or_give_up(fetch, str(failure))
        except Exception as exc:  # a bug or the disk: log it, and let the lease bring it back
            log.exception("Fetching attachment %d failed", fetch.id)
            await self._again_or_give_up(fetch, f"{type(exc).__name__}: {exc}")

    async def _again_or_give_up(self, fetch: Fetch, reason: str) -> None:
        if fetch.attempt > len(self.retry_delays):
            await self._record(attachment_fetches.give_up, fetch, reason)
            return
        at = utcnow() + timedelta(seconds=self.retry_delays[fetch.attempt - 1])
        await self._record(attachment_fetches.retry_later, fetch, reason, at)

    async def _record(
        self, work: Callable[..., Awaitable[None]], fetch: Fetch, *args: object
    ) -> None:
        try:
            await self.db.write(work, fetch, *args)
        except Exception:  # the lease runs out and the job is taken again
            log.exception("Recording attachment fetch %d failed", fetch.id)

    async def _fetch(self, fetch: Fetch) -> None:
        writer = self.blobs.writer(self.max_bytes)
        try:
            download = await self._download(fetch, writer)
            _judge(download)
            blob = await writer.finish()
        except BaseException:
            await writer.discard()
            raise
        content_type = content_type_of(download.content_type, fetch.name)
        try:
            await self.db.write(attachment_fetches.complete, fetch, blob, content_type)
        except BaseException:
            self.blobs.delete(blob.key)  # no row points at them: never keep orphan bytes
            raise

    async def _download(self, fetch: Fetch, writer: BlobWriter) -> Download:
        try:
            return await self.outbound.download(
                fetch.url, writer.write, limit=self.max_bytes, time_limit=self.time_limit
            )
        except (Refused, OverLimit, TooSlow, TooLarge) as exc:
            raise _GiveUp(getattr(exc, "message", None) or str(exc)) from None
        except OutboundError as exc:
            raise _TryAgain(str(exc)) from None
