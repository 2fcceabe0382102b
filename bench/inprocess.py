"""The app's own CPU per request, without an HTTP server or a load generator: for A/B tests.

    python -m bench.inprocess getmessage_new [--requests 20000] [--database-url URL]

Calls the ASGI app directly with the scenario's requests, 64 at a time (as the benchmark's
connections), on uvloop, after the same garbage-collector tuning `serve` does, and prints the
process CPU time per request. Sampling profilers were misleading on this kind of machine
(py-spy pauses the process and lands in system calls: it put 4% of a request in `getpid`,
which costs 0.12 us); comparing this figure before and after a change, run two or three
times in turns, is what found the wins of docs/decisions.md to within a microsecond.
A fresh SQLite database under a temporary directory unless --database-url names one (a
PostgreSQL database is used as it is: give it a scratch one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from typing import Any

import httpx
import uvloop

from frontdesk.app import FrontdeskApp, create_app, tune_garbage_collector
from frontdesk.cli import main as frontdesk
from frontdesk.settings import Settings

from bench.engines import DEMO_AGENT, DEMO_LOGIN
from bench.workloads import EXISTING_PREFIX, SCENARIOS, Workload

CONCURRENCY = 64
EXISTING_KEYS = 1000


async def _tokens(app: FrontdeskApp) -> dict[str, str]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        client_id, secret = DEMO_LOGIN
        login, security_key = DEMO_AGENT
        v1 = await client.post("/v1/token", json={"client_id": client_id, "secret": secret})
        v4 = await client.post("/v4/auth", json={"login": login, "security_key": security_key})
    return {"v1": v1.json()["access_token"], "v4": v4.json()["access_token"]}


def _scope(workload: Workload, headers: list[tuple[bytes, bytes]], length: int) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": workload.path,
        "raw_path": workload.path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(length).encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def _call(app: FrontdeskApp, scope: dict[str, Any], body: bytes) -> int:
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:  # the answer is complete before a disconnect would be asked for
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _run(app: FrontdeskApp, scenario: str, requests: int) -> tuple[float, set[int]]:
    workload, kind = SCENARIOS[scenario]
    token = (await _tokens(app)).get(workload.api)
    headers = [(b"content-type", workload.content_type.encode()), (b"host", b"bench")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    stamp = time.time_ns()
    keys = [
        f"{EXISTING_PREFIX}{n % EXISTING_KEYS}" if kind == "existing" else f"new-{stamp}-{n}"
        for n in range(requests)
    ]
    bodies = [workload.body_for(key) for key in keys]
    gate = asyncio.Semaphore(CONCURRENCY)
    statuses: set[int] = set()

    async def one(body: bytes) -> None:
        async with gate:
            statuses.add(await _call(app, _scope(workload, headers, len(body)), body))

    warm = requests // 10  # (the existing keys are made by the warm-up's first pass)
    await asyncio.gather(*(one(body) for body in bodies[:warm]))
    tune_garbage_collector()
    started = time.process_time()
    await asyncio.gather(*(one(body) for body in bodies[warm:]))
    return (time.process_time() - started) / (requests - warm), statuses


async def _measure(settings: Settings, scenario: str, requests: int) -> None:
    app = create_app(settings)
    async with app.lifespan():
        per_request, statuses = await _run(app, scenario, requests)
    print(f"{scenario}: {per_request * 1e6:.1f} us CPU per request, answers {sorted(statuses)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", choices=tuple(SCENARIOS))
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="frontdesk-inprocess-") as data_dir:
        os.environ["FRONTDESK_DATA_DIR"] = data_dir
        os.environ["FRONTDESK_RATE_LIMIT_REQUESTS"] = str(10**12)  # as the benchmark's server
        if args.database_url:
            os.environ["FRONTDESK_DATABASE_URL"] = args.database_url
        if frontdesk(["migrate"]) or frontdesk(["demo"]):
            raise SystemExit("frontdesk migrate/demo failed")
        uvloop.run(_measure(Settings.from_env(), args.scenario, args.requests))


if __name__ == "__main__":
    main()
