"""How the Planfix chat API answers an error: `{"error": "..."}` with the documented texts.

The documents give three answers (spec.md §5): 400 `Invalid parameters`, 401 `Invalid token`,
and getTask's 400 `task not found`. Every refusal is one of them; what exactly was wrong goes
in `detail` beside the documented text, for the developer reading the answer. What the
documents do not cover keeps its own status in the same shape: 429 with Retry-After (the
quota, a busy store), 403/404 for a file link, 500 without internals.
"""

from __future__ import annotations

from frontdesk.errors import Busy, FrontdeskError, RateLimited
from frontdesk.web.endpoints import Reply

INVALID_PARAMETERS = "Invalid parameters"
INVALID_TOKEN = "Invalid token"
TASK_NOT_FOUND = "task not found"


def invalid_parameters(detail: str) -> FrontdeskError:
    return FrontdeskError("invalid_parameters", detail)


def _retry_headers(exc: FrontdeskError) -> dict[str, str]:
    if isinstance(exc, RateLimited | Busy):
        return {"Retry-After": str(exc.retry_after)}
    return {}


def render_error(exc: FrontdeskError) -> Reply:
    if exc.status == 401:
        return Reply({"error": INVALID_TOKEN}, 401)
    if exc.code == "task_not_found":
        return Reply({"error": TASK_NOT_FOUND}, 400)
    if exc.status == 400:
        return Reply({"error": INVALID_PARAMETERS, "detail": exc.message}, 400)
    if exc.status >= 500:
        return Reply({"error": "Internal server error; please retry later"}, exc.status)
    return Reply({"error": exc.message}, exc.status, _retry_headers(exc))
