"""The bearer token of a request, as both Pyrus APIs expect it."""

from __future__ import annotations

from frontdesk.errors import Unauthorized
from frontdesk.web.endpoints import Call


def bearer_token(call: Call) -> str:
    header = call.header(b"authorization").strip()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":  # lenient: a bare token is taken as is
        token = header if " " not in header else ""
    token = token.strip()
    if not token:
        raise Unauthorized(
            "token_not_specified", "Send the access token as 'Authorization: Bearer <token>'"
        )
    return token
