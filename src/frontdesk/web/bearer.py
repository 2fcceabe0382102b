"""The bearer token of a request, as both Pyrus APIs expect it."""

from __future__ import annotations

from typing import Any

from litestar import Request

from frontdesk.errors import Unauthorized


def bearer_token(request: Request[Any, Any, Any]) -> str:
    header = request.headers.get("authorization", "").strip()
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":  # lenient: a bare token is taken as is
        token = header if " " not in header else ""
    token = token.strip()
    if not token:
        raise Unauthorized(
            "token_not_specified", "Send the access token as 'Authorization: Bearer <token>'"
        )
    return token
