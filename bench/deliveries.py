"""Delivery throughput: how fast the worker empties a full outbox, beside a bare client.

    python -m bench.deliveries [--count 20000] [--repeats 3] [--engines sqlite,postgresql]

For each engine: a fresh database with N `sendmessage` rows over 1,000 channels; a receiver in
its own process (aiohttp, answers 200 at once); the real DeliveryWorker with 64 in flight
sends them all (rows claimed, signed, sent, recorded). The ceiling, in the same run: one
aiohttp session posting the same bodies to the same receiver, 64 in flight, nothing else.
Then latency when not backlogged: 200 deliveries written one by one at ~100/s while the
worker runs; commit-to-receipt p99 (the receiver notes arrival; the body carries commit time).

Target (the issue): ≥ 50% of the ceiling; p99 commit-to-receipt under 1 s.
Prints `bench deliveries ENGINE rps=… ceiling_rps=… ratio=… p99_commit_to_receipt_ms=…`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import queue
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import aiohttp
import asyncpg
import msgspec
import uvloop
from aiohttp import web

from frontdesk.app import tune_garbage_collector
from frontdesk.core import extensions, forms, outbox, outbox_admin
from frontdesk.delivery.http import Outbound
from frontdesk.delivery.worker import DeliveryWorker, RetryPolicy
from frontdesk.storage import migrate
from frontdesk.storage.database import Database, open_database
from frontdesk.storage.sql import Tx

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
PG_DATABASE = "frontdesk_bench_deliveries"
IN_FLIGHT = 64
CHANNELS = 1000


# --- the receiver, in a process of its own ------------------------------------------------


def _receiver_main(
    port: int, ready: multiprocessing.Event, latencies: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if b'"committed_at"' in body:
            sent = msgspec.json.decode(body)["committed_at"]
            latencies.put(time.time() - sent)
        return web.Response(body=b"{}", content_type="application/json")

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(serve())


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- databases ------------------------------------------------------------------------------


async def _fresh_database(engine: str, workdir: Path) -> str:
    if engine == "sqlite":
        url = f"sqlite:///{workdir / f'deliveries-{time.monotonic_ns()}.db'}"
    else:
        conn = await asyncpg.connect(PG_SERVER + "/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
        finally:
            await conn.close()
        url = f"{PG_SERVER}/{PG_DATABASE}"
    await migrate.upgrade(url)
    return url


async def _extension(db: Database, base_url: str) -> int:
    form_id = await db.write(forms.add_form, "Bench", ())
    extension = await db.write(extensions.add_extension, "Bench receiver", base_url)
    await db.write(extensions.add_account, extension.extension_id, "bench", form_id)
    return extension.extension_id


def _body(n: int) -> bytes:
    return msgspec.json.encode(
        {
            "account_id": "bench",
            "channel_id": f"chat-{n % CHANNELS}",
            "message_text": f"Your order #{n} has shipped; the courier will call ahead.",
            "attachment_ids": [],
            "task_id": n,
            "comment_id": n,
        }
    )


async def _fill(db: Database, url: str, extension_id: int, count: int) -> None:
    async def batch(tx, start: int, end: int) -> None:  # type: ignore[no-untyped-def]
        for n in range(start, end):
            await outbox.enqueue(
                tx,
                kind="sendmessage",
                url=url,
                body=_body(n),
                ordering_key=f"chat:1:chat-{n % CHANNELS}",
                extension_id=extension_id,
            )

    for start in range(0, count, 1000):
        await db.write(batch, start, min(start + 1000, count))


# --- the runs -------------------------------------------------------------------------------


async def _worker_run(db: Database, count: int) -> float:
    outbound = Outbound(connect_timeout=5, read_timeout=30, allow_private=True)
    worker = DeliveryWorker(
        db, outbound, policy=RetryPolicy(()), concurrency=IN_FLIGHT, poll_seconds=0.01,
        lease=timedelta(seconds=60),
    )  # fmt: skip
    started = time.perf_counter()
    try:
        await worker.drain(timeout=600, horizon=0)
    finally:
        await outbound.close()
    elapsed = time.perf_counter() - started
    sent = await db.read(outbox_admin.list_deliveries, "sent", count + 1)
    if len(sent) != count:
        raise SystemExit(f"!!! RUN FAILED: {len(sent)} of {count} deliveries sent")
    return count / elapsed


async def _ceiling_run(url: str, count: int) -> float:
    bodies = [_body(n) for n in range(count)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def sender() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                headers = {"Content-Type": "application/json"}
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    assert response.status == 200

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(IN_FLIGHT)))
        return count / (time.perf_counter() - started)


async def _timed_delivery(tx: Tx, url: str, extension_id: int, n: int) -> None:
    # stamped inside the unit, before its commit: the figure includes the commit itself
    body = msgspec.json.encode({"committed_at": time.time(), "n": n})
    await outbox.enqueue(
        tx, kind="sendmessage", url=url, body=body, ordering_key=f"latency:{n % 16}",
        extension_id=extension_id,
    )  # fmt: skip


async def _latency_run(
    db: Database, url: str, extension_id: int, latencies: multiprocessing.Queue
) -> float:  # type: ignore[type-arg]
    outbound = Outbound(connect_timeout=5, read_timeout=30, allow_private=True)
    worker = DeliveryWorker(
        db, outbound, policy=RetryPolicy(()), concurrency=IN_FLIGHT, poll_seconds=0.25,
        lease=timedelta(seconds=60),
    )  # fmt: skip
    running = asyncio.create_task(worker.run())
    try:
        for n in range(200):
            await db.write(_timed_delivery, url, extension_id, n)
            await asyncio.sleep(0.01)
        seen: list[float] = []
        deadline = time.monotonic() + 30
        while len(seen) < 200 and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):  # the queue blocks: off the loop
                seen.append(await asyncio.to_thread(latencies.get, True, 0.5))
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await outbound.close()
    if len(seen) < 200:
        raise SystemExit(f"!!! RUN FAILED: {len(seen)} of 200 latency deliveries arrived")
    return statistics.quantiles(seen, n=100)[98] * 1000


async def _engine(
    engine: str,
    count: int,
    repeats: int,
    port: int,
    latencies: multiprocessing.Queue,
    workdir: Path,
) -> str:  # type: ignore[type-arg]
    url = f"http://127.0.0.1:{port}/sendmessage"
    app_rates: list[float] = []
    ceiling_rates: list[float] = []
    p99 = 0.0
    for repeat in range(repeats):
        database_url = await _fresh_database(engine, workdir)
        db = await open_database(database_url)
        try:
            extension_id = await _extension(db, f"http://127.0.0.1:{port}")
            await _fill(db, url, extension_id, count)
            app_rates.append(await _worker_run(db, count))
            ceiling_rates.append(await _ceiling_run(url, count))
            if repeat == 0:
                p99 = await _latency_run(db, url, extension_id, latencies)
        finally:
            await db.close()
        print(
            f"[{engine} #{repeat + 1}] worker {app_rates[-1]:,.0f}/s  "
            f"ceiling {ceiling_rates[-1]:,.0f}/s",
            flush=True,
        )
    rps, ceiling = statistics.median(app_rates), statistics.median(ceiling_rates)
    return (
        f"bench deliveries {engine} rps={rps:.0f} ceiling_rps={ceiling:.0f} "
        f"ratio={rps / ceiling:.3f} p99_commit_to_receipt_ms={p99:.0f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--results", type=Path, help="append the figures to this Markdown file")
    args = parser.parse_args(argv)
    port = _free_port()
    ready = multiprocessing.Event()
    latencies: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    receiver = multiprocessing.Process(
        target=_receiver_main, args=(port, ready, latencies), daemon=True
    )
    receiver.start()
    ready.wait(10)
    tune_garbage_collector()  # the collector as `frontdesk worker` runs it (the ceiling's too)
    lines = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-deliveries-") as workdir:
            for engine in args.engines.split(","):
                # on the loop `frontdesk serve` and `frontdesk worker` run (uvloop), the
                # ceiling's client too
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    lines.append(
                        runner.run(
                            _engine(
                                engine, args.count, args.repeats, port, latencies, Path(workdir)
                            )
                        )
                    )
    finally:
        receiver.terminate()
    print("\n".join(lines))
    if args.results is not None:
        _append_results(args.results, args, lines)
    return 0


def _append_results(path: Path, args: argparse.Namespace, lines: list[str]) -> None:
    section = [
        "",
        "## deliveries (targets: ratio ≥ 0.50 of a bare client, p99 commit-to-receipt < 1 s)",
        "",
        f"`python -m bench.deliveries`: {args.count:,} `sendmessage` rows over {CHANNELS:,} "
        f"channels, {IN_FLIGHT} in flight, medians of {args.repeats} repeats; the ceiling is one "
        "aiohttp session posting the same bodies to the same receiver (its own process). "
        "Latency: 200 deliveries written one by one at ~100/s while the worker runs.",
        "",
        "```",
        *lines,
        "```",
        "",
    ]
    with path.open("a", encoding="utf-8") as results:
        results.write("\n".join(section))


if __name__ == "__main__":
    sys.exit(main())
