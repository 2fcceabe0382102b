"""Fallback load generator for machines without wrk: `python -m bench.pyload '<json config>'`.

It does what bench/requests.lua does for wrk: N keep-alive connections, each sending one
request and waiting for its answer before the next (closed loop, like wrk), for a fixed time.
Raw asyncio streams on uvloop, not an HTTP client library: httpx collapses at 64 concurrent
requests (performance.md §3.6) and even aiohttp costs more CPU than the server we measure.
Prints one "BENCH_JSON {...}" line with the same keys as the Lua script.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Totals:
    latencies_ns: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("connect", "read", "write", "timeout", "status", "non2xx", "problems", "new_tasks"), 0
        )
    )


class Requests:
    """The request bytes, in the same order of channels as the Lua script."""

    def __init__(self, config: dict[str, Any], host: str) -> None:
        self.config = config
        authorization = f"Authorization: Bearer {config['token']}\r\n" if config["token"] else ""
        self.head = (
            f"POST {config['path']} HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: {config['content_type']}\r\n{authorization}"
        ).encode()
        self.new_marker = config["new_marker"].encode()
        self.problem_marker = config["problem_marker"].encode()
        self.counter = 0
        self.cache: list[bytes] = []
        if config["mode"] == "existing":
            self.cache = [self._build(f"{config['prefix']}{i}") for i in range(config["channels"])]

    def _build(self, channel: str) -> bytes:
        body = f"{self.config['head']}{channel}{self.config['tail']}".encode()
        return self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body

    def next(self) -> bytes:
        self.counter += 1
        if self.cache:
            return self.cache[self.counter % len(self.cache)]
        return self._build(f"{self.config['prefix']}1-{self.counter}")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        return status, await reader.readexactly(length)
    parts = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        parts.append(await reader.readexactly(size + 2))
        if size == 0:
            return status, b"".join(part[:-2] for part in parts)


async def _connection(
    host: str, port: int, requests: Requests, totals: Totals, deadline: float, timeout: float
) -> None:
    counts = totals.counts
    writer = None
    while time.monotonic() < deadline:
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                counts["connect"] += 1
                await asyncio.sleep(0.01)
                continue
        started = time.perf_counter_ns()
        try:
            writer.write(requests.next())
            status, body = await asyncio.wait_for(_read_response(reader), timeout)
        except TimeoutError:
            counts["timeout"] += 1
            writer.close()
            writer = None
            continue
        except (OSError, asyncio.IncompleteReadError, ValueError):
            counts["read"] += 1
            writer.close()
            writer = None
            continue
        totals.latencies_ns.append(time.perf_counter_ns() - started)
        if not 200 <= status <= 299:
            counts["non2xx"] += 1
        if status >= 400:
            counts["status"] += 1
        if requests.problem_marker in body:
            counts["problems"] += 1
        if requests.new_marker in body:
            counts["new_tasks"] += 1
    if writer is not None:
        writer.close()


def _percentile(sorted_values: list[int], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, int(len(sorted_values) * pct / 100))
    return sorted_values[index] / 1000  # ns -> us


async def run(config: dict[str, Any]) -> dict[str, float]:
    url = urlsplit(config["url"])
    host, port = url.hostname or "127.0.0.1", url.port or 80
    requests = Requests(config, f"{host}:{port}")
    totals = Totals()
    started = time.monotonic()
    deadline = started + config["seconds"]
    await asyncio.gather(
        *(
            _connection(host, port, requests, totals, deadline, timeout=5.0)
            for _ in range(config["connections"])
        )
    )
    elapsed = time.monotonic() - started
    latencies = sorted(totals.latencies_ns)
    return {
        "requests": len(latencies),
        "duration_us": elapsed * 1e6,
        "p50_us": _percentile(latencies, 50),
        "p99_us": _percentile(latencies, 99),
        "max_us": latencies[-1] / 1000 if latencies else 0.0,
        **totals.counts,
    }


def main() -> None:
    config = json.loads(sys.argv[1])
    try:
        import uvloop

        result = uvloop.run(run(config))
    except ImportError:
        result = asyncio.run(run(config))
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
