"""JSON answers as Pyrus sends them: always a body, UTF-8, empty fields left out."""

from __future__ import annotations

from typing import Any

from frontdesk.errors import Busy, FrontdeskError, Problem, RateLimited, clip
from frontdesk.web.endpoints import Reply
from frontdesk.web.ratelimit import Quota


def without_empty(payload: Any) -> Any:
    """Drop None values (recursively): Pyrus omits empty fields instead of sending null."""
    if isinstance(payload, dict):
        return {k: without_empty(v) for k, v in payload.items() if v is not None}
    if isinstance(payload, list):
        return [without_empty(item) for item in payload]
    return payload


def ok(payload: dict[str, Any]) -> Reply:
    return Reply(without_empty(payload))


def pyrus_error(exc: FrontdeskError) -> Reply:
    """{"error_code", "error"} with the status of the code; 429 says when to come back."""
    headers: dict[str, str] = {}
    quota = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
        quota = Quota(exc.limit, 0, exc.retry_after)
    elif isinstance(exc, Busy):
        headers = {"Retry-After": str(exc.retry_after)}
    return Reply({"error_code": exc.code, "error": exc.message}, exc.status, headers, quota=quota)


#: `error_message` is bounded: a request of 20,000 bad mappings must not be answered in
#: hundreds of megabytes (each names the field's choices)
MAX_ERROR_MESSAGE = 10_000


def ok_with_problems(payload: dict[str, Any], problems: list[Problem]) -> Reply:
    """Processed with a warning (both Pyrus APIs): the normal answer plus what was ignored,
    as `error_code`, `error` (clipped to 300 characters) and a `warnings` list
    (ARCHITECTURE.md §2), and the whole list in `error_message`, where the Extensions API
    document says ignored field codes and file guids are named."""
    if problems:
        whole = "; ".join(problem.message for problem in problems)
        payload["error_code"] = problems[0].code
        payload["error"] = clip(whole)
        payload["error_message"] = clip(whole, MAX_ERROR_MESSAGE)
        payload["warnings"] = [{"error_code": p.code, "error": clip(p.message)} for p in problems]
    return ok(payload)
