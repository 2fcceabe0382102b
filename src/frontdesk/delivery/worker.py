"""The delivery worker: claims due outbox rows and sends them, up to N at a time.

Runs inside `frontdesk serve` by default and as `frontdesk worker` processes when scaled out;
several workers share one PostgreSQL safely (core.outbox claims with a conditional UPDATE).
Retries follow Pyrus' schedule by default (after 61 s and 122 s: three attempts): timeouts,
connection errors, 5xx and 429 (its Retry-After honoured) are retried; any other answer
outside 2xx fails at once. A delivery out of attempts is dead until redelivered.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from frontdesk.core import outbox, outbox_settle
from frontdesk.core.clock import utcnow
from frontdesk.core.outbox import Claimed
from frontdesk.core.outbox_settle import Attempt, Outcome
from frontdesk.delivery.http import Answer, Outbound, OutboundError, Refused
from frontdesk.delivery.signing import DELIVERY_ID_HEADER, pyrus_signature
from frontdesk.delivery.steps import run_steps
from frontdesk.storage.database import Database

log = logging.getLogger(__name__)

#: after a send finishes, how long the worker waits for others before settling them together
SETTLE_WINDOW_SECONDS = 0.002
#: rows in hand (sending or claimed to send next) per slot
AHEAD = 8
#: on stop, how long sends under way may take to end (a receiver answers within a second or
#: two; `serve --workers` allows for it, cli.workers.STOP_SECONDS)
STOP_GRACE_SECONDS = 5.0
#: a Retry-After longer than this is taken as this (a typo must not park a channel for days)
MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    #: seconds before the 2nd, 3rd... attempt
    delays: Sequence[float] = (61.0, 122.0)

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def retry_at(self, claimed: Claimed, answer: Answer | None) -> datetime | None:
        """When to try again after a failed attempt; None when not to."""
        if claimed.attempt >= claimed.max_attempts or not _retryable(answer):
            return None
        delay = self.delays[min(claimed.attempt, len(self.delays)) - 1]
        if answer is not None and answer.status == 429:
            delay = _retry_after(answer.headers.get("Retry-After"), delay)
        return utcnow() + timedelta(seconds=delay)


def _retryable(answer: Answer | None) -> bool:
    return answer is None or answer.status == 429 or answer.status >= 500


def _retry_after(value: str | None, default: float) -> float:
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:  # "-0000" or no zone: HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return min(max((when - utcnow()).total_seconds(), 0.0), MAX_RETRY_AFTER)


def request_headers(claimed: Claimed) -> dict[str, str]:
    headers = {
        "Content-Type": claimed.content_type,
        "X-Pyrus-Retry": f"{claimed.attempt}/{claimed.max_attempts}",
        DELIVERY_ID_HEADER: claimed.delivery_id,
    }
    if claimed.secret is not None:
        headers["X-Pyrus-Sig"] = pyrus_signature(claimed.secret, claimed.body)
    return headers


class DeliveryWorker:
    """Each step claims what is due and settles the sends that finished, in one statement
    (with no claim due, the settle runs alone, in the background), and hands the claimed rows
    to its sending slots.

    It claims up to seven rounds ahead of its free slots: a finished send is followed at once
    by one claimed before, instead of waiting for the next claim's round trip. A claim on a
    busy PostgreSQL took 21 ms (median; 29 ms p90) while a slot freed every 0.25 ms: with
    three rounds ahead a finished send found nothing ready 31% of the time, with seven 1%.
    What was claimed and not sent is given back on stop; what waited too long, before.
    """

    def __init__(
        self,
        db: Database,
        outbound: Outbound,
        *,
        policy: RetryPolicy,
        concurrency: int = 64,
        poll_seconds: float = 0.25,
        lease: timedelta = timedelta(seconds=90),
        stop_grace: float = STOP_GRACE_SECONDS,
    ) -> None:
        self.db = db
        self.stop_grace = stop_grace
        self.outbound = outbound
        self.policy = policy
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.lease = lease
        #: the sending slots: long-lived tasks, each sending one row after another (a task per
        #: send cost a task's creation, scheduling and callbacks every delivery)
        self._slots: list[asyncio.Task[None]] = []
        #: slots with nothing to send, each waiting on its future for a row to be ready
        self._idle_slots: collections.deque[asyncio.Future[None]] = collections.deque()
        #: sends under way
        self._sending = 0
        #: claimed, waiting for a free slot: (the row, the loop time by which it must start)
        self._ready: collections.deque[tuple[Claimed, float]] = collections.deque()
        #: claimed rows that waited too long to start: given back at the next step
        self._stale: list[Claimed] = []
        self._finished: list[Outcome] = []
        #: the settle under way: claims do not wait for it (on PostgreSQL its round trips and
        #: commit held each claim up, and the slots ran dry); one at a time
        self._settling: asyncio.Task[None] | None = None
        #: the last claim took all it asked for: more is probably due, no need to look first
        self._more_due = False
        self._refill_at = max(1, concurrency // 4)
        #: how long a claimed row may wait for a slot: the lease's margin over an attempt (a
        #: lease shorter than an attempt, as tests use, protects nothing by waiting less)
        margin = lease.total_seconds() - outbound.time_limit
        self._may_wait = margin if margin > 0 else math.inf
        #: set whenever a send finishes
        self._sent = asyncio.Event()

    async def run(self) -> None:
        """Send until cancelled; a failing database is logged and retried."""
        try:
            await run_steps(self.step, self._idle, log)
        finally:
            # (taken first: a cancelled send's callback would start the next one)
            unsent = self._stale + [claimed for claimed, _ in self._ready]
            self._ready, self._stale = collections.deque(), []
            try:
                await self._let_sends_finish()
            finally:  # (cancelled again meanwhile, a second Ctrl-C: the rest is done all the same)
                await self._stop_slots()
                await self._release(unsent)
                await self._settle_all()

    async def step(self) -> int:
        """Settle what finished and claim what is due, then start; returns how many sends
        started.

        While busy it claims only once a quarter of the slots is free: each claim is a
        statement, and claiming one row per finished send would cost one per delivery. A
        claim settles what finished in the same statement (the channels it frees have their
        next row claimed at once); without a claim to go with, a settle runs on its own, in
        the background."""
        if self._stale:
            stale, self._stale = self._stale, []
            await self._release(stale)
        in_hand = self._sending + len(self._ready)
        free = AHEAD * self.concurrency - in_hand
        if free <= 0 or (in_hand and free < self._refill_at):
            await self._settle()
            return 0
        settled: list[Outcome] = []
        if self._settling is None:  # (else the finished wait: settles go one at a time)
            settled, self._finished = self._finished, []
        # idle polls write nothing: a claim is a write (a transaction; SQLite's write lock)
        if not settled and not self._more_due and not await self.db.read(outbox.due_ids, 1):
            return 0
        claimed = await self._claim(free, settled)
        self._more_due = len(claimed) == free
        # A row waits its turn on its lease: it must start while the lease still covers a
        # whole attempt, or its lease could end mid-send and another claim send it again.
        start_by = asyncio.get_running_loop().time() + self._may_wait
        self._ready.extend((row, start_by) for row in claimed)
        self._wake_slots()
        return len(claimed)

    async def _claim(self, limit: int, settled: list[Outcome]) -> list[Claimed]:
        """Claim up to `limit` rows, settling `settled` in the same statement."""
        max_attempts = self.policy.max_attempts
        if settled:
            work = self.db.write(
                outbox_settle.settle_and_claim, settled, limit, self.lease, max_attempts
            )
        else:
            work = self.db.write(outbox.claim_due, limit, self.lease, max_attempts)
        claiming = asyncio.ensure_future(work)
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:
            # Stopped mid-claim: the claim (one statement, committed on its own) may have
            # taken rows all the same; they go back with the rest, and outcomes it did not
            # record are recorded on the way out (see run)
            try:
                self._stale.extend(await claiming)
            except BaseException:  # (cancelled again, too: the outcomes must not be lost)
                self._finished.extend(settled)
            raise
        except Exception:
            # The outcomes are settled alone, as any settle (a settle that fails is logged
            # and its rows go out again when their leases end): kept for the next step, one
            # the statement keeps refusing would stop every claim after it, and a database
            # that is down would be retried without a pause
            if settled:
                self._settling = asyncio.create_task(self._record(settled))
            raise

    def _wake_slots(self) -> None:
        """Hand the ready rows to idle slots (started on first use, on the running loop)."""
        if not self._slots:
            self._slots = [asyncio.create_task(self._slot()) for _ in range(self.concurrency)]
            return  # each looks at the ready rows as it starts
        for _ in range(min(len(self._ready), len(self._idle_slots))):
            waiting = self._idle_slots.popleft()
            if not waiting.done():
                waiting.set_result(None)

    async def _slot(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._ready:
                waiting = loop.create_future()
                self._idle_slots.append(waiting)
                await waiting
                continue
            claimed, start_by = self._ready.popleft()
            if loop.time() > start_by:
                self._stale.append(claimed)
                continue
            self._sending += 1
            try:
                await self._send(claimed)
            finally:
                self._sending -= 1
                self._sent.set()

    async def _let_sends_finish(self) -> None:
        """On stop, the sends under way are given STOP_GRACE_SECONDS to end. Cut off, a send
        the receiver had already taken went out again once its lease ran out, as its next
        attempt (a graceful stop of `serve` mid-send: ten answers, ten repeats ~100 s later)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_grace
        while self._sending and loop.time() < deadline:
            self._sent.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    await self._sent.wait()

    async def _stop_slots(self) -> None:
        """Cancel the slots; a send cut off leaves its row to its lease (sent again later)."""
        slots, self._slots = self._slots, []
        self._idle_slots.clear()
        for slot in slots:
            slot.cancel()
        await asyncio.gather(*slots, return_exceptions=True)

    async def drain(self, timeout: float = 10.0, horizon: float = 1.0) -> None:
        """Send until nothing is in flight and nothing falls due within `horizon` seconds
        (tests, benchmarks; a retry scheduled further out is left pending)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    busy = self._busy()  # (taken now: what it looks at empties while stepping)
                    if await self.step() or busy:
                        await self._idle()
                        continue
                    due = await self.db.read(outbox.next_due)
                    if due is None or due > utcnow() + timedelta(seconds=horizon):
                        return
                    await asyncio.sleep(min(self.poll_seconds, 0.05))
        finally:
            await self._stop_slots()

    def _busy(self) -> bool:
        return bool(self._sending or self._finished or self._ready or self._settling or self._stale)

    async def _idle(self) -> None:
        """Until a send finishes (it may free a chat's next message) or the poll interval
        passes. (One event, not asyncio.wait on every task in flight: that adds and removes
        a callback on each of them per wake-up.)"""
        if self._finished and self._settling is None and not self._sent.is_set():
            return  # outcomes to settle now
        try:
            # (not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as
            # the event is set, and the worker would then never stop)
            async with asyncio.timeout(self.poll_seconds):
                await self._sent.wait()
        except TimeoutError:
            return
        self._sent.clear()
        if self._sending:
            # let the sends finishing about now finish too: one settle for all of them
            await asyncio.sleep(SETTLE_WINDOW_SECONDS)

    async def _settle(self) -> None:
        """Start recording what finished; what finishes meanwhile waits for the next settle."""
        if not self._finished or self._settling is not None:
            return
        batch, self._finished = self._finished, []
        self._settling = asyncio.create_task(self._record(batch))

    async def _record(self, batch: list[Outcome]) -> None:
        try:
            await self.db.write(outbox_settle.record_outcomes, batch)
        except Exception:  # their leases run out and they are sent again: at least once
            log.exception("Recording %d delivery outcomes failed", len(batch))
        finally:
            self._settling = None
            self._sent.set()  # the loop may go on: these channels may have their next due

    async def _settle_all(self) -> None:
        """On stop: the settle under way, then what finished since."""
        if self._settling is not None:
            await asyncio.wait([self._settling])
        if self._finished:
            batch, self._finished = self._finished, []
            await self._record(batch)

    async def _send(self, claimed: Claimed) -> None:
        try:
            outcome = await self._attempt(claimed)
        except Exception as exc:  # a bug must cost one attempt, not the row and its channel
            log.exception("Sending delivery %s failed unexpectedly", claimed.delivery_id)
            attempt = Attempt(utcnow(), 0, error=f"{type(exc).__name__}: {exc}")
            outcome = Outcome(claimed, attempt, self.policy.retry_at(claimed, None), False)
        self._finished.append(outcome)

    async def _attempt(self, claimed: Claimed) -> Outcome:
        started_at = utcnow()
        answer: Answer | None = None
        refused = False
        try:
            answer = await self.outbound.request(
                "POST", claimed.url, body=claimed.body, headers=request_headers(claimed)
            )
            attempt = Attempt(
                started_at,
                answer.latency_ms,
                answer.status,
                None if 200 <= answer.status < 300 else f"HTTP {answer.status}",
                answer.body.decode("utf-8", "replace"),
            )
        except OutboundError as exc:
            elapsed = int((utcnow() - started_at).total_seconds() * 1000)
            attempt = Attempt(started_at, elapsed, error=str(exc))
            refused = isinstance(exc, Refused)
        done = answer is not None and 200 <= answer.status < 300
        retry_at = None if done or refused else self.policy.retry_at(claimed, answer)
        return Outcome(claimed, attempt, retry_at, done)

    async def _release(self, unsent: list[Claimed]) -> None:
        if not unsent:
            return
        try:
            await self.db.write(outbox.release, unsent)
        except Exception:  # their leases run out and they are sent then, an attempt used
            log.exception("Giving back %d claimed deliveries failed", len(unsent))
