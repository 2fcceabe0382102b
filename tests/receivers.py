"""A real HTTP receiver for webhook tests: records every request, answers as scripted."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterator
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
    def __init__(self, port: int = 0) -> None:
        self.requests: list[Received] = []
        self.scripts: deque[Script] = deque()
        self.arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        #: 0: any free port, known once started
        self.port = port

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
        """Until `count` requests have arrived."""
        return await self.wait_until(lambda: len(self.requests) >= count, timeout)

    async def wait_until(self, done: Callable[[], bool], timeout: float = 10.0) -> list[Received]:
        async with asyncio.timeout(timeout), self.arrived:
            await self.arrived.wait_for(done)
        return self.requests

    def header_values(self, name: str) -> list[str]:
        return [request.headers[name] for request in self.requests if name in request.headers]

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server: Any = site._server
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@contextlib.contextmanager
def receiver_in_thread(*scripts: Script) -> Iterator[Receiver]:
    """A Receiver on a loop of its own thread, for synchronous tests (the CLI runs its own
    event loop). Read `requests` after the block, or once the command has returned."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    receiver = asyncio.run_coroutine_threadsafe(Receiver().start(), loop).result(10)
    receiver.answer(*scripts)
    try:
        yield receiver
    finally:
        asyncio.run_coroutine_threadsafe(receiver.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
