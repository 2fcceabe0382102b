"""Request quotas per caller, in the Pyrus manner: N requests per fixed window.

Counts are kept in this process. With several `serve` workers each keeps its own count, so
the effective quota is N per worker.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from frontdesk.errors import RateLimited


@dataclass(slots=True)  # made per request (docs/decisions.md)
class Quota:
    limit: int
    remaining: int
    reset_seconds: int

    def header_list(self) -> list[tuple[bytes, bytes]]:
        """X-RateLimit-Limit, -Remaining and -Reset, as an ASGI answer carries them."""
        return [
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % self.remaining),
            (b"x-ratelimit-reset", b"%d" % self.reset_seconds),
        ]


def wrong_keys_of(address: str) -> tuple[str, str]:
    """The quota key of an address's wrong keys (a Planfix key, the admin token): counted
    apart from its other requests (a connector fetching tokens), so that only guessing locks
    the address out. Bearer tokens are not checked against it: they are random 256-bit
    values, and a bot with an expired token would lock out every client behind its NAT."""
    return ("wrong key", address)


class RateLimiter:
    """A fixed window per key, starting at the key's first request."""

    #: keys kept at the most; past it expired windows are dropped, and if that is not enough
    #: (keys chosen by an attacker) all counts start afresh
    MAX_KEYS = 100_000

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self._windows: dict[object, tuple[float, int]] = {}
        self._last_cleanup = 0.0

    def hit(self, key: object) -> Quota | None:
        """Count one request; raise RateLimited when over quota. None when limiting is off."""
        if self.limit <= 0:
            return None
        now = time.monotonic()
        started, count = self._windows.get(key, (now, 0))
        if now - started >= self.window:
            started, count = now, 0
        reset = max(1, math.ceil(started + self.window - now))
        if count >= self.limit:
            raise RateLimited(reset, self.limit)
        self._windows[key] = (started, count + 1)
        if len(self._windows) > self.MAX_KEYS:
            self._make_room(now)
        return Quota(self.limit, self.limit - count - 1, reset)

    def check(self, key: object) -> None:
        """Raise RateLimited if `key` is over quota, without counting a request.

        For a key that counts only failures (an address's wrong tokens): checked before the
        secret, so that once over quota a right guess is refused like a wrong one.
        """
        if self.limit <= 0:
            return
        found = self._windows.get(key)
        if found is None:
            return
        started, count = found
        now = time.monotonic()
        if count >= self.limit and now - started < self.window:
            raise RateLimited(max(1, math.ceil(started + self.window - now)), self.limit)

    def _make_room(self, now: float) -> None:
        """Drop expired windows (a scan, at most once a second); if still full, drop all.

        Clearing costs as much as MAX_KEYS new keys took to make, so the work stays
        proportional to the requests even when an attacker picks the keys.
        """
        if now - self._last_cleanup >= 1.0:
            self._last_cleanup = now
            for key, (started, _count) in list(self._windows.items()):
                if now - started >= self.window:
                    del self._windows[key]
        if len(self._windows) > self.MAX_KEYS:
            self._windows.clear()
