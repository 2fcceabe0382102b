"""Protocol endpoints as plain ASGI: the request path that every connector call takes.

The protocols decode and validate their own bodies (every failure must get the protocol's own
error code) and answer JSON or a file, so a framework's per-request machinery buys them
nothing (measured: getmessage on SQLite 2,505 -> 3,552 req/s without it). An `Endpoint` is a
path, its methods, an async handler `(Call) -> Reply`, and the protocol's error renderer;
`asgi_app` serves it; `app.FrontdeskApp` dispatches to it before Litestar, which serves the
rest (health, docs, later the UI).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import msgspec

from frontdesk.errors import FrontdeskError
from frontdesk.web.context import AppContext
from frontdesk.web.ratelimit import Quota

log = logging.getLogger(__name__)

#: a Host header's name or address and port (RFC 3986 reg-name, IP literal)
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9._-]{1,253})(:[0-9]{1,5})?")

JSON = b"application/json; charset=utf-8"
FILE_CHUNK = 256 * 1024
_encoder = msgspec.json.Encoder()

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: set in the scope of a HEAD request, which is served as a GET without its body
HEAD_ONLY = "frontdesk.head_only"


def head_as_get(scope: Scope, send: Send) -> tuple[Scope, Send]:
    """A HEAD request is its GET's headers without the body (RFC 9110 §9.3.2: every server
    MUST serve HEAD where it serves GET): the same Content-Length, no bytes after it.
    Monitors and download managers ask with HEAD, and a 405 there looked like an outage."""
    sent_body = False

    async def send_head(message: dict[str, Any]) -> None:
        nonlocal sent_body
        if message["type"] != "http.response.body":
            await send(message)
        elif not sent_body:
            sent_body = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return {**scope, "method": "GET", HEAD_ONLY: True}, send_head


class Call:
    """One request as a protocol handler sees it."""

    def __init__(self, scope: Scope, receive: Receive, ctx: AppContext) -> None:
        self.scope = scope
        self.ctx = ctx
        self.quota: Quota | None = None
        self._receive = receive

    @property
    def method(self) -> str:
        return str(self.scope["method"])

    def header(self, name: bytes) -> str:
        """A request header's value ('' when absent); `name` in lower case."""
        for key, value in self.scope["headers"]:
            if key == name:
                return bytes(value).decode("latin-1")
        return ""

    @property
    def client_ip(self) -> str:
        client = self.scope.get("client")
        return str(client[0]) if client else "unknown"

    def public_base_url(self) -> str:
        """Where clients reach this server, for the URLs it hands out (no trailing slash):
        FRONTDESK_PUBLIC_URL, else the scheme and Host of this request."""
        configured = self.ctx.settings.public_url.rstrip("/")
        if configured:
            return configured
        host = self.header(b"host")
        if not _HOST.fullmatch(host):  # absent, or not a host: links would not work with it
            server = self.scope.get("server")
            if server and server[1]:
                address = f"[{server[0]}]" if ":" in server[0] else server[0]  # IPv6: [::1]
                host = f"{address}:{server[1]}"
            else:
                host = "127.0.0.1"
        return f"{self.scope.get('scheme', 'http')}://{host}"

    def path_param(self, name: str) -> str:
        return str(self.scope.get("path_params", {}).get(name, ""))

    def query(self) -> dict[str, str]:
        raw = self.scope.get("query_string", b"").decode("latin-1")
        return {key: values[0] for key, values in parse_qs(raw).items()}

    async def stream(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ConnectionAbortedError("the client went away mid-request")
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def body(self, limit: int) -> bytes:
        """The whole body, refused past `limit` bytes (400 too_large_request_length)."""
        parts: list[bytes] = []
        size = 0
        async for chunk in self.stream():
            size += len(chunk)
            if size > limit:
                raise FrontdeskError(
                    "too_large_request_length", f"The request body is over {limit} bytes"
                )
            parts.append(chunk)
        return b"".join(parts)


@dataclass
class Reply:
    """A JSON answer, or a file streamed from disk when `file` is set."""

    payload: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None
    #: the caller's quota, sent as X-RateLimit-* headers
    quota: Quota | None = None


Handler = Callable[[Call], Awaitable[Reply]]
ErrorRenderer = Callable[[FrontdeskError], Reply]


@dataclass(frozen=True)
class Endpoint:
    path: str
    methods: Sequence[str]
    handler: Handler
    render_error: ErrorRenderer
    summary: str = ""
    #: the msgspec Struct of the JSON body, for the OpenAPI document
    body_type: type[Any] | None = None
    tags: Sequence[str] = ()
    in_schema: bool = True
    #: HEAD is served as a GET without the body; not where a GET writes (a token's)
    head: bool = True

    def serves(self, call: Call) -> bool:
        if call.scope.get(HEAD_ONLY) and not self.head:
            return False
        return call.method in self.methods

    @property
    def allowed(self) -> list[str]:
        """The methods served, for a 405's Allow header."""
        return with_head(self.methods) if self.head else list(self.methods)


def with_head(methods: Sequence[str]) -> list[str]:
    """`methods` with HEAD beside GET: FrontdeskApp serves HEAD wherever GET is."""
    served = list(methods)
    if "GET" in served and "HEAD" not in served:
        served.insert(served.index("GET") + 1, "HEAD")
    return served


def method_refused(method: str, served: Sequence[str]) -> FrontdeskError:
    """A 405 naming the methods that are served (RFC 9110; they go in Allow too)."""
    return FrontdeskError(
        "invalid_request", f"{method} is not served here; use {' or '.join(served)}", 405
    )


def _header_list(reply: Reply, content_type: bytes, length: int) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", content_type), (b"content-length", str(length).encode())]
    if reply.quota is not None:
        headers += reply.quota.header_list()
    headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()
    ]
    return headers


async def _send_json(send: Send, reply: Reply) -> None:
    body = _encoder.encode(reply.payload)
    await send(
        {
            "type": "http.response.start",
            "status": reply.status,
            "headers": _header_list(reply, JSON, len(body)),
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _start_file(send: Send, reply: Reply, size: int) -> None:
    headers = _header_list(reply, b"application/octet-stream", size)
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})


async def _send_file(send: Send, reply: Reply) -> None:
    assert reply.file is not None
    loop = asyncio.get_running_loop()
    with open(reply.file, "rb") as source:
        await _start_file(send, reply, source.seek(0, 2))
        source.seek(0)
        while True:  # reads off the loop: a cold disk must not stall other requests
            chunk = await loop.run_in_executor(None, source.read, FILE_CHUNK)
            more = len(chunk) == FILE_CHUNK
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
            if not more:
                return


async def _send_file_head(send: Send, reply: Reply) -> None:
    """A file's headers for HEAD, without reading it (it may be 2 GB)."""
    assert reply.file is not None
    await _start_file(send, reply, reply.file.stat().st_size)
    await send({"type": "http.response.body", "body": b""})


def _with_quota(call: Call, reply: Reply) -> Reply:
    reply.quota = reply.quota or call.quota  # (a 429 carries the quota it ran out of)
    return reply


def _refuse_method(endpoint: Endpoint, call: Call) -> None:
    # every answer carries quota headers: one that reaches no handler counts on its address
    call.quota = call.ctx.limiter.hit(("address", call.client_ip))
    raise method_refused("HEAD" if call.scope.get(HEAD_ONLY) else call.method, endpoint.methods)


async def _reply_to(endpoint: Endpoint, call: Call) -> Reply:
    try:
        if not endpoint.serves(call):
            _refuse_method(endpoint, call)
        return _with_quota(call, await endpoint.handler(call))
    except FrontdeskError as exc:
        reply = _with_quota(call, endpoint.render_error(exc))
        if exc.status == 405:  # (RFC 9110: a 405 names the methods that are served)
            reply.headers["Allow"] = ", ".join(endpoint.allowed)
        return reply
    except ConnectionAbortedError:
        raise
    except Exception:
        log.exception("Unhandled error in %s %s", call.method, call.scope.get("path"))
        failed = FrontdeskError("server_error", "Internal server error; please retry later")
        return _with_quota(call, endpoint.render_error(failed))


def asgi_app(endpoint: Endpoint) -> ASGIApp:
    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        call = Call(scope, receive, scope["app"].state.ctx)
        try:
            reply = await _reply_to(endpoint, call)
        except ConnectionAbortedError:
            return  # nobody to answer
        if reply.file is not None and scope.get(HEAD_ONLY):
            await _send_file_head(send, reply)
        elif reply.file is not None:
            await _send_file(send, reply)
        else:
            await _send_json(send, reply)

    return serve
