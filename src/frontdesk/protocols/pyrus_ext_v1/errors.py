"""How the Extensions API v1 answers an error: {"error_code", "error"} with its HTTP status.

`render_error` serves the endpoints; the handlers below answer the same way for what the
framework refuses before any endpoint runs (an unknown path, a wrong method on a
Litestar-served path) and for anything that escapes it.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from frontdesk.errors import FrontdeskError
from frontdesk.web.endpoints import Reply, method_refused, with_head
from frontdesk.web.responses import pyrus_error

log = logging.getLogger(__name__)

_HTTP_CODES = {404: "not_found", 405: "invalid_request"}


def render_error(exc: FrontdeskError) -> Reply:
    return pyrus_error(exc)


def _as_response(reply: Reply) -> Response[bytes]:
    return Response(
        content=msgspec.json.encode(reply.payload),
        status_code=reply.status,
        media_type="application/json; charset=utf-8",
        headers=reply.headers,
    )


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    code = _HTTP_CODES.get(exc.status_code, "invalid_request")
    if exc.status_code == 405:  # (RFC 9110: a 405 names the methods that are served)
        return _method_refused(request, exc)
    return _as_response(render_error(FrontdeskError(code, exc.detail, exc.status_code)))


def _method_refused(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    allow = (exc.headers or {}).get("allow", "")
    served = with_head([method.strip() for method in allow.split(",") if method.strip()])
    reply = render_error(method_refused(request.method, served))
    reply.headers["Allow"] = ", ".join(served)
    return _as_response(reply)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.error("Unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    failure = FrontdeskError("server_error", "Internal server error; please retry later")
    return _as_response(render_error(failure))


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HTTPException: _http_error,
    Exception: _unexpected,
}
