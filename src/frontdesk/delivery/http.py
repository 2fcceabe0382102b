"""Every HTTP request Frontdesk makes goes through here.

One aiohttp session per process (measured: 10k deliveries/s at 64 in flight against httpx's
0.4k, performance.md). This module owns what every outbound call must have: connect and read
timeouts, our User-Agent, no redirects followed, a cap on how much of an answer is read, and a
guard that refuses private, loopback, link-local and other non-public addresses (no SSRF
through a URL an extension or a chat provider gave us) unless configuration allows them.
Downloads (files a chat message names by URL) are streamed to a sink, under a size cap and a
time limit.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

USER_AGENT = "Pyrus-Extensions-1"
#: how much of an answer is kept (authorize replies are small; the rest is for the log)
RESPONSE_CAP = 64 * 1024


#: URLs remembered as checked (a literal address stays what it is; names are checked again
#: by the resolver at every connection)
CHECKED_URLS_LIMIT = 10_000
#: the answer's headers anything reads (copying all of them cost more than sending)
KEPT_HEADERS = ("Retry-After", "Content-Type", "Location")


class OutboundError(Exception):
    """No HTTP answer: refused by the guard, unreachable, timed out."""


class Refused(OutboundError):
    """Never sent: the URL is not one we send to (the guard, a bad scheme). Retrying is futile."""


class OverLimit(OutboundError):
    """A download larger than it may be. Retrying is futile."""


class TooSlow(OutboundError):
    """A download not finished within its time limit. Retrying would only wait as long again."""


#: IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64, IPv4-compatible)
_IPV4_IN_LAST_32_BITS = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::/96"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one wraps (mapped, 6to4, Teredo, NAT64, compatible)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in network for network in _IPV4_IN_LAST_32_BITS) and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(address: str) -> bool:
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0]
    )
    if isinstance(ip, ipaddress.IPv6Address):
        ip = _embedded_ipv4(ip) or ip
    return ip.is_global and not ip.is_multicast


class _PublicOnlyResolver(AbstractResolver):
    """Resolves as usual, then drops every address that is not public."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        public = [entry for entry in found if is_public(entry["host"])]
        if not public:
            raise Refused(f"{host} resolves to no public address; refused")
        return public

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True)
class Download:
    status: int
    #: the answer's Content-Type ('' when not 2xx)
    content_type: str
    #: bytes handed to the sink (0 when not 2xx)
    size: int


#: receives a download's body, chunk by chunk
Sink = Callable[[bytes], Awaitable[None]]
REDIRECTS = frozenset({301, 302, 303, 307, 308})
DOWNLOAD_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    #: at most RESPONSE_CAP bytes of the body
    body: bytes
    latency_ms: int


class Outbound:
    def __init__(
        self, *, connect_timeout: float, read_timeout: float, allow_private: bool = False
    ) -> None:
        self.allow_private = allow_private
        self._timeout = aiohttp.ClientTimeout(
            total=connect_timeout + read_timeout,
            sock_connect=connect_timeout,
            sock_read=read_timeout,
        )
        self._session: aiohttp.ClientSession | None = None
        self._checked: set[str] = set()

    @property
    def time_limit(self) -> float:
        """The longest a request may take, connecting included (seconds)."""
        return float(self._timeout.total or 0)

    def _session_now(self) -> aiohttp.ClientSession:
        # made lazily, on the loop that uses it
        if self._session is None:
            resolver = None if self.allow_private else _PublicOnlyResolver()
            connector = aiohttp.TCPConnector(limit=0, resolver=resolver, ttl_dns_cache=60)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                headers={"User-Agent": USER_AGENT},
                auto_decompress=True,
            )
        return self._session

    def _check_url(self, url: str) -> None:
        # webhook URLs repeat (one per extension and method): each is checked once
        if url in self._checked:
            return
        self._check_new_url(url)
        if len(self._checked) >= CHECKED_URLS_LIMIT:
            self._checked.clear()
        self._checked.add(url)

    def _check_new_url(self, url: str) -> None:
        try:
            # the host as aiohttp will use it: yarl folds full-width and other Unicode digits
            # ("１２７．０．０．１") into an address literal, which then skips the resolver
            parsed = yarl.URL(url)
            host = parsed.host
        except (ValueError, UnicodeError):
            raise Refused(f"Not an http(s) URL: {url!r}") from None
        if parsed.scheme not in ("http", "https") or not host:
            raise Refused(f"Not an http(s) URL: {url!r}")
        if self.allow_private:
            return
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return  # a name: the resolver checks what it resolves to
        if not is_public(str(literal)):
            raise Refused(f"{host} is not a public address; refused")

    async def request(
        self, method: str, url: str, *, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> Answer:
        self._check_url(url)
        started = time.perf_counter()
        try:
            async with self._session_now().request(
                method, url, data=body or None, headers=headers, allow_redirects=False
            ) as response:
                content = await _read_capped(response, RESPONSE_CAP)
                return Answer(
                    response.status,
                    {
                        name: response.headers[name]
                        for name in KEPT_HEADERS
                        if name in response.headers
                    },
                    content,
                    _elapsed_ms(started),
                )
        except OutboundError:
            raise
        except TimeoutError:
            raise OutboundError(f"No answer within {self._timeout.total:g} s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            refused = _refusal_in(exc)
            if refused is not None:
                raise refused from None
            raise OutboundError(_describe(exc)) from None

    async def download(
        self, url: str, sink: Sink, *, limit: int, time_limit: float, max_redirects: int = 5
    ) -> Download:
        """GET `url`, handing the body to `sink` chunk by chunk as it arrives (never whole).

        More than `limit` bytes (declared or received) raise OverLimit; the whole download,
        redirects included, must end within `time_limit` seconds. Redirects are followed
        here, each hop checked by the guard (aiohttp's own following would skip the check
        of an address given literally).
        """
        deadline = asyncio.timeout(time_limit)
        try:
            async with deadline:
                for _hop in range(max_redirects + 1):
                    self._check_url(url)
                    found = await self._download_once(url, sink, limit)
                    if isinstance(found, Download):
                        return found
                    url = found
        except OutboundError:
            raise
        except TimeoutError as exc:
            if deadline.expired():
                raise TooSlow(f"Not downloaded within {time_limit:g} s") from None
            # a connection or a read that took too long: the server may answer next time
            raise OutboundError(self._timed_out(exc)) from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise _refusal_in(exc) or OutboundError(_describe(exc)) from None
        raise OutboundError(f"More than {max_redirects} redirects")

    def _timed_out(self, exc: TimeoutError) -> str:
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return f"Not connected within {self._timeout.sock_connect:g} s"
        return f"No answer within {self._timeout.sock_read:g} s"

    async def _download_once(self, url: str, sink: Sink, limit: int) -> Download | str:
        """The download, or the URL a redirect points to."""
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._timeout.sock_connect, sock_read=self._timeout.sock_read
        )
        session = self._session_now()
        async with session.get(url, allow_redirects=False, timeout=timeout) as response:
            location = response.headers.get("Location")
            if response.status in REDIRECTS and location:
                return urljoin(url, location)
            if not 200 <= response.status < 300:
                return Download(response.status, "", 0)
            if (response.content_length or 0) > limit:
                raise OverLimit(f"The file is larger than {limit} bytes")
            size = 0
            async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise OverLimit(f"The file is larger than {limit} bytes")
                await sink(chunk)
            return Download(response.status, response.headers.get("Content-Type", ""), size)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """The answer's body up to `cap` bytes (one read() returns only what has arrived).

    A compressed answer is read piece by piece like a long one: its Content-Length counts
    compressed bytes, and 61 KB of gzip decompress to 63 MB.
    """
    short = response.content_length is not None and response.content_length <= cap
    if short and "Content-Encoding" not in response.headers:
        return await response.read()  # the usual short answer: one call
    parts: list[bytes] = []
    size = 0
    while size < cap:
        chunk = await response.content.read(cap - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _refusal_in(exc: BaseException) -> Refused | None:
    """The guard's refusal, which aiohttp hands back wrapped in a connector error; or a URL
    aiohttp will never use ("http://2130706433/" is not a canonical IPv4 address), which
    would otherwise be tried again as if the server might answer next time."""
    if isinstance(exc, aiohttp.InvalidURL):
        return Refused(f"Not a URL that can be fetched: {_describe(exc)}")
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, Refused):
        cause = cause.__cause__ or cause.__context__
    return cause


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]
