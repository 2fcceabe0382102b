"""Operations endpoints: liveness, readiness, the OpenAPI document and its viewer."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from frontdesk.web.context import context
from frontdesk.web.endpoints import JSON


def _json(payload: Any, status: int = 200) -> Response[Any]:
    return Response(payload, status_code=status, media_type=JSON.decode())


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> Response[Any]:
    """Alive: the process answers."""
    return _json({"status": "ok"})


@get("/readyz", include_in_schema=False)
async def readyz(request: Request[Any, Any, Any]) -> Response[Any]:
    """Ready: the database answers."""
    try:
        await context(request).db.ping()
    except Exception as exc:
        return _json({"status": "unavailable", "error": type(exc).__name__}, status=503)
    return _json({"status": "ok"})


@get("/openapi.json", include_in_schema=False, sync_to_thread=False)
def openapi_json(request: Request[Any, Any, Any]) -> Response[Any]:
    return _json(request.app.state.openapi)


@get("/docs", include_in_schema=False, sync_to_thread=False)
def docs(request: Request[Any, Any, Any]) -> Response[str]:
    return Response(request.app.state.docs_page, media_type="text/html")
