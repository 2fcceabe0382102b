"""Operations endpoints: liveness and readiness."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from frontdesk.web.context import context
from frontdesk.web.responses import json_response


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> Response[bytes]:
    """Alive: the process answers."""
    return json_response({"status": "ok"})


@get("/readyz", include_in_schema=False)
async def readyz(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Ready: the database answers."""
    try:
        await context(request).db.ping()
    except Exception as exc:
        return json_response({"status": "unavailable", "error": type(exc).__name__}, status=503)
    return json_response({"status": "ok"})
