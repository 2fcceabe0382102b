"""The HTTP protocol `serve` runs: a response's writes reach the socket as one write."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from frontdesk.app import create_app
from frontdesk.cli import server
from frontdesk.settings import Settings
from frontdesk.web.http_protocol import FLUSH_AT, CoalescingTransport, HttpProtocol

from factories import served


class Pair:
    """A real TCP connection: our transport on one end, a plain socket on the other."""

    def __init__(self, transport: asyncio.Transport, peer: socket.socket) -> None:
        self.transport = transport
        self.peer = peer
        self.writes: list[bytes] = []
        real_write = transport.write

        def counted(data: bytes) -> None:  # the socket transport's own write, counted
            self.writes.append(bytes(data))
            real_write(data)

        transport.write = counted  # type: ignore[method-assign]
        transport.writelines = lambda parts: counted(b"".join(parts))  # type: ignore[method-assign]

    async def received(self, size: int) -> bytes:
        loop = asyncio.get_running_loop()
        data = b""
        while len(data) < size:
            chunk = await loop.sock_recv(self.peer, size - len(data))
            if not chunk:
                break
            data += chunk
        return data


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    connecting = loop.create_connection(asyncio.Protocol, *listener.getsockname())
    (transport, _), (peer, _) = await asyncio.gather(connecting, loop.sock_accept(listener))
    listener.close()
    peer.setblocking(False)
    yield Pair(transport, peer)
    transport.close()
    peer.close()


async def test_the_writes_of_one_step_reach_the_socket_as_one(pair: Pair) -> None:
    coalescing = CoalescingTransport(pair.transport, asyncio.get_running_loop())
    coalescing.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    coalescing.write(b"{}")
    assert pair.writes == []  # kept until the step ends
    assert await pair.received(40) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
    assert pair.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


async def test_closing_writes_what_was_kept_first(pair: Pair) -> None:
    coalescing = CoalescingTransport(pair.transport, asyncio.get_running_loop())
    coalescing.write(b"last words")
    coalescing.close()
    assert await pair.received(100) == b"last words"  # then EOF


async def test_a_large_write_goes_out_at_once(pair: Pair) -> None:
    coalescing = CoalescingTransport(pair.transport, asyncio.get_running_loop())
    chunk = os.urandom(FLUSH_AT)
    coalescing.write(b"head")
    coalescing.write(chunk)
    assert pair.writes == [b"head" + chunk]  # without waiting for the step to end
    assert await pair.received(FLUSH_AT + 4) == b"head" + chunk


def test_the_served_app_answers_on_a_kept_alive_connection_and_streams_large_files(
    database_url: str, tmp_path: Path
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    with served(database_url, tmp_path, "--demo") as base, httpx.Client(base_url=base) as http:
        token = http.post(
            "/v1/token", json={"client_id": "unique12345@login.edu", "secret": "czWhgtoLnm****"}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for n in range(20):  # one connection, kept alive: every answer whole, in order
            answer = http.post(
                "/v1/getmessage",
                headers=headers,
                json={"account_id": "uniqueID12345", "channel_id": "c", "message_text": f"#{n}"},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["tasks"][0]["is_new_task"] is (n == 0)
        guid = http.post("/v1/files/upload", headers=headers, files={"file": ("big.bin", data)})
        attached = {
            "account_id": "uniqueID12345",
            "channel_id": "c",
            "attachments": [guid.json()["guid"]],
        }
        answer = http.post("/v1/getmessage", headers=headers, json=attached)
        task_id = answer.json()["tasks"][0]["task_id"]
        file_id = _attachment_id(http, task_id)
        download = http.get(f"/v1/files/download/{file_id}", headers=headers)
        assert download.status_code == 200
        assert hashlib.md5(download.content).hexdigest() == hashlib.md5(data).hexdigest()


def _attachment_id(http: httpx.Client, task_id: int) -> int:
    """The id of the file attached to the task's last comment, read as the demo agent."""
    agent = {"login": "agent@frontdesk.local", "security_key": "demo-security-key-0000000000000000"}
    token = http.post("/v4/auth", json=agent).json()["access_token"]
    task = http.get(f"/v4/tasks/{task_id}", headers={"Authorization": f"Bearer {token}"})
    attachment_id: int = task.json()["task"]["comments"][-1]["attachments"][0]["id"]
    return attachment_id


async def test_every_answer_of_the_app_is_one_write_on_the_socket(settings: Settings) -> None:
    """The real app under uvicorn with HttpProtocol, in this test: head and body leave together."""
    writes: list[int] = []

    class Counted(HttpProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            real_write = transport.write

            def counted(data: bytes) -> None:
                writes.append(len(data))
                real_write(data)

            transport.write = counted  # type: ignore[method-assign]
            super().connection_made(transport)

    listener = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(settings), http=Counted, log_level="warning")
    serving = uvicorn.Server(config)
    task = asyncio.create_task(serving.serve(sockets=[listener]))
    try:
        while not serving.started:
            await asyncio.sleep(0.01)
        base = f"http://127.0.0.1:{listener.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/healthz")).status_code == 200
            refused = await http.post("/v1/token", json={"client_id": "x", "secret": "y"})
            assert refused.json()["error_code"] == "authorization_error"
    finally:
        serving.should_exit = True
        await task
        listener.close()
    assert len(writes) == 2  # one per answer, its head and body together


def test_serve_runs_uvicorn_with_that_protocol(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FRONTDESK_DATA_DIR", str(tmp_path))
    ran: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda **options: ran.update(options))
    args = argparse.Namespace(host="127.0.0.1", port=8000, workers=1, demo=False, access_log=False)
    server.run_serve(args)
    assert ran["http"] is HttpProtocol


class Quick(HttpProtocol):
    """The deadlines of `serve`, short enough for a test."""

    HEAD_SECONDS = 0.3
    BODY_IDLE_SECONDS = 0.3
    BODY_GRACE_SECONDS = 0.3
    BODY_MIN_RATE = 20


@contextlib.asynccontextmanager
async def _serving(
    protocol: type[HttpProtocol], app: Any, **options: Any
) -> AsyncIterator[tuple[str, int]]:
    """`app` under uvicorn with `protocol`, in this test's loop; yields its address."""
    listener = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=protocol, log_level="warning", **options)
    serving = uvicorn.Server(config)
    task = asyncio.create_task(serving.serve(sockets=[listener]))
    try:
        while not serving.started:
            await asyncio.sleep(0.01)
        yield listener.getsockname()
    finally:
        serving.should_exit = True
        await task
        listener.close()


@pytest.fixture
async def quick_server(settings: Settings) -> AsyncIterator[tuple[str, int]]:
    """The real app under uvicorn with the Quick protocol."""
    async with _serving(Quick, create_app(settings), timeout_graceful_shutdown=1) as address:
        yield address


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (3 s at the most)."""
    return await asyncio.wait_for(reader.read(), timeout=3)


async def test_a_request_head_that_stops_coming_is_answered_408_and_closed(quick_server):
    reader, writer = await asyncio.open_connection(*quick_server)
    writer.write(b"POST /v1/getmessage HTTP/1.1\r\nHost: x\r\n")  # (the head never ends)
    answer = await _until_closed(reader)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body)["error_code"] == "request_timeout"


async def test_a_connection_that_sends_nothing_is_closed_without_a_word(quick_server):
    reader, writer = await asyncio.open_connection(*quick_server)
    assert await _until_closed(reader) == b""
    writer.close()


async def test_a_body_that_stops_coming_closes_the_connection(quick_server):
    reader, writer = await asyncio.open_connection(*quick_server)
    head = b"POST /v1/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    writer.write(head + b"Content-Length: 1000\r\n\r\n{")
    assert await _until_closed(reader) == b""  # (the app had the request: no answer of ours)
    writer.close()


async def test_a_slow_body_that_keeps_coming_is_served(quick_server):
    """Each pause is shorter than the limit, the whole body takes longer than it."""
    reader, writer = await asyncio.open_connection(*quick_server)
    body = json.dumps({"client_id": "nobody", "secret": "wrong"}).encode()
    head = b"POST /v1/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body))
    for start in range(0, len(body), 6):
        writer.write(body[start : start + 6])
        await asyncio.sleep(0.1)
    answer = await asyncio.wait_for(reader.readuntil(b"}"), timeout=3)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401")
    assert b'"authorization_error"' in answer


class RateOnly(Quick):
    """Quick's rate rule with the idle rule out of the way: only the rate can close."""

    BODY_IDLE_SECONDS = 100.0
    BODY_GRACE_SECONDS = 0.3

    @property
    def _check_every(self) -> float:
        return 0.075


def _reading_late(delay: float) -> Any:
    """An app that reads the body `delay` seconds late (as one checking a token first) and
    answers how many bytes it got."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await asyncio.sleep(delay)
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        answer = str(size).encode()
        length = [(b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": length})
        await send({"type": "http.response.body", "body": answer})

    return app


def _post_head(length: int, *extra: bytes) -> bytes:
    lines = [b"POST / HTTP/1.1", b"Host: x", b"Connection: close", *extra]
    return b"\r\n".join([*lines, b"Content-Length: %d" % length]) + b"\r\n\r\n"


async def test_a_body_trickled_below_the_minimum_rate_is_dropped() -> None:
    """No pause is long enough for the idle rule, but the body would take 100 s at 10 bytes
    a second, where 20 a second is the least (Quick's rate)."""
    async with _serving(RateOnly, _reading_late(0), lifespan="off") as address:
        reader, writer = await asyncio.open_connection(*address)
        writer.write(_post_head(1000))
        started = asyncio.get_running_loop().time()

        async def trickle() -> None:
            while not writer.is_closing():
                writer.write(b" ")
                await asyncio.sleep(0.1)

        trickling = asyncio.create_task(trickle())
        try:
            with contextlib.suppress(ConnectionResetError):  # (closed with bytes unread)
                assert await _until_closed(reader) == b""
        finally:
            trickling.cancel()
            writer.close()
    assert asyncio.get_running_loop().time() - started < 2  # (0.3 s of grace, then ~0.3 more)


#: a body past the transport's buffer: the server stops reading while the app is late
LARGE_BODY = b"x" * (512 * 1024)


async def test_the_servers_own_pause_in_reading_a_body_is_not_the_clients() -> None:
    """The server stops reading the socket while the app is late (flow control): neither
    the idle rule nor the rate counts that time against the client."""
    late = _reading_late(1.5)  # (five times Quick's deadlines)
    async with _serving(Quick, late, lifespan="off") as address:
        reader, writer = await asyncio.open_connection(*address)
        writer.write(_post_head(len(LARGE_BODY)) + LARGE_BODY)
        answer = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(str(len(LARGE_BODY)).encode())


class Demanding(RateOnly):
    """A rate no pause of 1.5 s fits in unless the pause is left out."""

    BODY_MIN_RATE = 10**6


async def test_a_body_that_goes_on_after_the_servers_pause_is_not_charged_for_it() -> None:
    async with _serving(Demanding, _reading_late(1.5), lifespan="off") as address:
        reader, writer = await asyncio.open_connection(*address)
        writer.write(_post_head(len(LARGE_BODY) + 10) + LARGE_BODY)
        await asyncio.sleep(1.8)  # (the app's 1.5 s, then 0.3 s of the client's own)
        writer.write(b"0123456789")
        answer = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert answer.endswith(str(len(LARGE_BODY) + 10).encode())


async def test_a_client_waiting_for_100_continue_is_not_charged_for_the_wait() -> None:
    """uvicorn sends 100 Continue when the app first reads the body, after the app checked
    the token: a client that waits for it, as RFC 9110 asks, is not sending slowly."""
    async with _serving(Quick, _reading_late(1.5), lifespan="off") as address:
        reader, writer = await asyncio.open_connection(*address)
        writer.write(_post_head(10, b"Expect: 100-continue"))
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        writer.write(b"0123456789")
        answer = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
    assert interim.startswith(b"HTTP/1.1 100")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"10")


async def test_a_request_that_is_not_http_gets_a_json_error(quick_server):
    reader, writer = await asyncio.open_connection(*quick_server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad\x00Header: 1\r\n\r\n")
    answer = await _until_closed(reader)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head
    assert json.loads(body)["error_code"] == "invalid_request"


async def test_head_is_answered_with_the_get_headers_and_no_body_on_the_wire(quick_server):
    """Pipelined HEAD then GET: the HEAD's answer ends at its head (a body there would be read
    as the start of the next answer), with the Content-Length the GET's body has."""
    reader, writer = await asyncio.open_connection(*quick_server)
    writer.write(
        b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    head_answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=3)
    get_answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=3)
    get_body = await asyncio.wait_for(reader.readuntil(b"}"), timeout=3)
    writer.close()
    assert head_answer.startswith(b"HTTP/1.1 200")
    assert get_answer.startswith(b"HTTP/1.1 200")  # (a HEAD body would stand here)
    assert json.loads(get_body) == {"status": "ok"}
    assert b"content-length: %d\r\n" % len(get_body) in head_answer.lower()
