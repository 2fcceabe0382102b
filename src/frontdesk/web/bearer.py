"""The bearer token of a request, as both Pyrus APIs expect it."""

from __future__ import annotations

from frontdesk.errors import Unauthorized
from frontdesk.web.endpoints import Call


def bearer_token(call: Call) -> str:
    header = call.header(b"authorization").strip()
    if not header or header.lower() == "bearer":  # ("Bearer " with nothing after it)
        raise Unauthorized(
            "token_not_specified", "Send the access token as 'Authorization: Bearer <token>'"
        )
    scheme, _, token = header.partition(" ")
    if " " not in header:  # lenient: a bare token is taken as is
        return header
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("invalid_token", "Use 'Authorization: Bearer <token>'")
    return token.strip()
