"""How the Extensions API v1 answers an error: {"error_code", "error"} with its HTTP status."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap

from frontdesk.errors import FrontdeskError
from frontdesk.web.responses import error_headers, json_response

log = logging.getLogger(__name__)

_HTTP_CODES = {404: "not_found", 405: "invalid_request", 413: "too_large_request_length"}


def render_error(request: Request[Any, Any, Any], exc: FrontdeskError) -> Response[bytes]:
    return json_response(
        {"error_code": exc.code, "error": exc.message},
        status=exc.status,
        headers=error_headers(request, exc),
    )


def render_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Errors the framework raises itself (unknown path, wrong method, body too large)."""
    code = _HTTP_CODES.get(exc.status_code, "invalid_request")
    return render_error(request, FrontdeskError(code, exc.detail, exc.status_code))


def render_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("Unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return render_error(
        request, FrontdeskError("server_error", "Internal server error; please retry later")
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    FrontdeskError: render_error,
    HTTPException: render_http_error,
    Exception: render_unexpected,
}
