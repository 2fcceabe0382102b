"""A real HTTP receiver for webhook tests: records every request, answers as scripted."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Script:
    """One scripted answer: a status, headers, a body, and a delay before answering."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"{}"
    delay: float = 0.0


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.scripts: deque[Script] = deque()
        self.arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, *scripts: Script) -> None:
        self.scripts.extend(scripts)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = Received(
            request.method, request.path_qs, dict(request.headers), await request.read()
        )
        script = self.scripts.popleft() if self.scripts else Script()
        async with self.arrived:
            self.requests.append(received)
            self.arrived.notify_all()
        if script.delay:
            await asyncio.sleep(script.delay)
        return web.Response(status=script.status, headers=script.headers, body=script.body)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        async with asyncio.timeout(timeout), self.arrived:
            await self.arrived.wait_for(lambda: len(self.requests) >= count)
        return self.requests

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
