"""uvicorn's httptools protocol, with a response's writes handed to the socket together, and
deadlines for a client that sends a request too slowly.

uvicorn writes a response's status line and headers when the app starts the response, and its
body when the app sends it: two send() system calls for every small JSON answer, and on this
kind of machine a loopback send() is one of the dearest things a request does (the two writes
were 19% of the server's samples under the getmessage benchmark). Here the writes made during
one step of the event loop are kept and written as one, right after that step (`call_soon`); a
response larger than FLUSH_AT bytes goes out as it is written, and closing writes what is kept
first. Measured, servers side by side and driven in turns: server CPU per getmessage 174-199
-> 139-173 us on SQLite, 396-431 -> 357-418 us on PostgreSQL.

uvicorn times out a connection only while it is idle between requests: one that sent half a
request head, or a body's first byte of a thousand, was kept for ever (an audit held 21,000
such connections and the server, out of file descriptors, refused everyone else). So a
request's head must arrive within HEAD_SECONDS of the connection (or of its first byte), and
its body may not pause for more than BODY_IDLE_SECONDS (a 2 GB upload on a slow line keeps
going; nginx's client_header_timeout and client_body_timeout are the same two rules), nor come
slower than BODY_MIN_RATE on average once BODY_GRACE_SECONDS have passed (Apache's
mod_reqtimeout, `body=20,MinRate=500`: without it a body trickled a byte a minute held its
connection for ever). A pause that is the server's own (it stopped reading while the app
catches up) counts for neither.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: kept bytes past which a write goes out at once (a streamed download's chunks)
FLUSH_AT = 64 * 1024


class CoalescingTransport(asyncio.Transport):
    """A transport that joins the writes of one loop step into one write of `transport`."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._kept: list[bytes] = []
        self._kept_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._kept:
            self._loop.call_soon(self.flush)
        self._kept.append(bytes(data))
        self._kept_bytes += len(data)
        if self._kept_bytes >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if not self._kept:
            return
        kept, self._kept = self._kept, []
        size, self._kept_bytes = self._kept_bytes, 0
        if self._transport.is_closing():  # dropped, as the transport itself drops them
            return
        if size < FLUSH_AT:  # a small answer: one buffer takes uvloop's quickest path
            self._transport.write(b"".join(kept))
        else:  # one writev under uvloop, without copying a large body into one buffer
            self._transport.writelines(kept)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._kept.clear()
        self._kept_bytes = 0
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._kept_bytes + self._transport.get_write_buffer_size()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)


def _json_error(status: bytes, code: str, message: str) -> bytes:
    """A whole response that closes the connection, for errors the app never sees."""
    body = json.dumps({"error_code": code, "error": message}).encode()
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a CoalescingTransport (`uvicorn.Config(http=...)`),
    with the deadlines above and JSON bodies for the errors it answers itself.

    The deadlines are checked by one timer per connection, every quarter of the shorter
    one, against times the parser's callbacks note, rather than by timers armed and cancelled
    twice per request. Server CPU per getmessage into an existing chat, SQLite, runs in
    turns: 110-120 us with the deadlines, 106-109 without, the ceiling's own moving 50-54.
    """

    HEAD_SECONDS = 30.0
    BODY_IDLE_SECONDS = 60.0
    BODY_GRACE_SECONDS = 20.0
    BODY_MIN_RATE = 500  # bytes per second, on average over the whole body
    _watch: asyncio.TimerHandle | None = None
    #: when the request head being read began (None between requests)
    _head_since: float | None = None
    _in_request = False
    _reading_body = False
    _last_data = 0.0
    #: when the body began, moved on by the server's own pauses; what came since
    _body_since = 0.0
    _body_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))
        self._head_since = self.loop.time()  # (the first head's deadline runs from here)
        self._watch = self.loop.call_later(self._check_every, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._last_data = self.loop.time()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_request = True
        if self._head_since is None:
            self._head_since = self.loop.time()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._reading_body = True
        self._body_since, self._body_bytes = self.loop.time(), 0

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._body_bytes += len(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_request = self._reading_body = False
        self._head_since = None

    def send_400_response(self, msg: str) -> None:
        # a request that does not parse as HTTP: JSON like every other error
        self.transport.write(_json_error(b"400 Bad Request", "invalid_request", msg))
        self.transport.close()

    @property
    def _check_every(self) -> float:
        return min(self.HEAD_SECONDS, self.BODY_IDLE_SECONDS) / 4

    def _server_pauses(self) -> bool:
        """The body stops because of the server: it stopped reading while the app catches up
        (flow control), or the client waits for the 100 Continue uvicorn sends only when
        the app first reads (after the app checked the token against the database)."""
        waiting = self.cycle is not None and self.cycle.waiting_for_100_continue
        return bool(self.flow.read_paused or waiting)

    def _body_too_slow(self, now: float) -> bool:
        allowed = self.BODY_GRACE_SECONDS + self._body_bytes / self.BODY_MIN_RATE
        return now - self._body_since > allowed

    def _check(self) -> None:
        self._watch = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self._reading_body:
            if self._server_pauses():  # the app is behind, not the client
                self._last_data = now
                self._body_since += self._check_every
            elif now - self._last_data > self.BODY_IDLE_SECONDS or self._body_too_slow(now):
                # the app reading the body is told that the client went away
                self.transport.close()
                return
        elif self._head_since is not None and now - self._head_since > self.HEAD_SECONDS:
            # no app has the request yet, nor is an earlier answer still going out (a
            # pipelined request): it can be answered
            if self._in_request and (self.cycle is None or self.cycle.response_complete):
                late = "The request's head did not arrive in time"
                self.transport.write(_json_error(b"408 Request Timeout", "request_timeout", late))
            self.transport.close()  # (a connection that sent nothing: without a word)
            return
        self._watch = self.loop.call_later(self._check_every, self._check)
