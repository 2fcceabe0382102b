"""X-Pyrus-Sig: HMAC-SHA1 of the exact body bytes, keyed with the extension secret.

Pyrus' own samples (PHP, Ruby, C#) build UPPERCASE hex and compare it as is, so that is what
we send (spec.md §3.2; test vectors there).
"""

from __future__ import annotations

import hashlib
import hmac

#: the id of one delivery, the same on every attempt, so a receiver can drop repeats
DELIVERY_ID_HEADER = "X-Frontdesk-Delivery"


def pyrus_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest().upper()
