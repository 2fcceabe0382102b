"""JSON responses as Pyrus sends them: always a body, UTF-8, empty fields left out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request, Response

from frontdesk.errors import FrontdeskError, RateLimited
from frontdesk.web.ratelimit import Quota

JSON = "application/json; charset=utf-8"
_encoder = msgspec.json.Encoder()

#: where a handler leaves the caller's quota, so that errors carry the headers too
QUOTA_KEY = "frontdesk_quota"


def without_empty(payload: Any) -> Any:
    """Drop None values (recursively): Pyrus omits empty fields instead of sending null."""
    if isinstance(payload, dict):
        return {k: without_empty(v) for k, v in payload.items() if v is not None}
    if isinstance(payload, list):
        return [without_empty(item) for item in payload]
    return payload


def json_response(
    payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response[bytes]:
    return Response(
        content=_encoder.encode(without_empty(payload)),
        status_code=status,
        media_type=JSON,
        headers=dict(headers or {}),
    )


def quota_headers(request: Request[Any, Any, Any]) -> dict[str, str]:
    quota: Quota | None = request.scope.get("state", {}).get(QUOTA_KEY)
    return quota.headers() if quota else {}


def remember_quota(request: Request[Any, Any, Any], quota: Quota | None) -> None:
    request.scope.setdefault("state", {})[QUOTA_KEY] = quota


def error_headers(request: Request[Any, Any, Any], exc: FrontdeskError) -> dict[str, str]:
    if isinstance(exc, RateLimited):
        return {
            "Retry-After": str(exc.retry_after),
            **Quota(exc.limit, 0, exc.retry_after).headers(),
        }
    return quota_headers(request)
