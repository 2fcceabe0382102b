"""What every API v4 method shares: the user behind the bearer token, bodies, the endpoint table.

Errors are rendered as in the Extensions API (`{"error_code", "error"}` with Pyrus' statuses).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from frontdesk.core import auth
from frontdesk.core.auth import UserPrincipal
from frontdesk.errors import FrontdeskError, Unauthorized
from frontdesk.web.bearer import bearer_token
from frontdesk.web.endpoints import Call, Endpoint, ErrorRenderer, Handler, Reply
from frontdesk.web.json_body import Body, decode_body
from frontdesk.web.responses import pyrus_error

B = TypeVar("B", bound=Body)
#: JSON bodies are small (10,000-character comments, field updates); far larger is refused
MAX_JSON_BODY = 4 * 1024 * 1024
TAGS = ("Pyrus API v4",)
#: API v4's code for a body that is not JSON (the official client's ErrorCodeType)
MALFORMED = "invalid_json"


#: the code API v4 names a missing parameter with (spec.md §1.2, §7.6); its telephony
#: document keeps the Extensions API's `required_parameters_not_specified`
REQUIRED_PARAMETER_MISSING = "required_parameter_missing"


def render_error(exc: FrontdeskError) -> Reply:
    if exc.code == "required_parameters_not_specified":
        exc = FrontdeskError(REQUIRED_PARAMETER_MISSING, exc.message, exc.status)
    return pyrus_error(exc)


async def authenticate(call: Call) -> UserPrincipal:
    """The calling user; counts the request against their quota (Pyrus: per user).

    A token that is not one costs a database read: those count against the caller's address.
    Revocation (a new security key) is checked by `auth.ensure_current_user`, in the unit of
    work that does the call's work.
    """
    try:
        principal = await auth.authenticate_user(call.ctx.db, bearer_token(call))
    except Unauthorized:
        call.quota = call.ctx.limiter.hit(("address", call.client_ip))  # (shown on the 401)
        raise
    call.quota = call.ctx.limiter.hit(("user", principal.user_id))
    return principal


def user_method(run: Callable[[Call, UserPrincipal], Awaitable[Reply]]) -> Handler:
    """An authenticated method without a body (GET)."""

    async def handle(call: Call) -> Reply:
        return await run(call, await authenticate(call))

    return handle


def json_method(
    body_type: type[B], run: Callable[[Call, UserPrincipal, B], Awaitable[Reply]]
) -> Handler:
    """An authenticated method taking a JSON body."""

    async def handle(call: Call) -> Reply:
        principal = await authenticate(call)
        try:
            body = decode_body(await call.body(MAX_JSON_BODY), body_type, MALFORMED)
            return await run(call, principal, body)
        except FrontdeskError as exc:
            if exc.status == 400:  # a revoked token is told so first (read on this path alone)
                await call.ctx.db.read(auth.ensure_current_user, principal)
            raise

    return handle


def endpoint(
    path: str,
    handler: Handler,
    summary: str,
    body: type[Any] | None = None,
    methods: Sequence[str] = ("POST",),
    render: ErrorRenderer = render_error,
    *,
    head: bool = True,
) -> Endpoint:
    """`path` is the whole path: v4 serves some routes outside /v4 (/services/attachment)."""
    return Endpoint(path, tuple(methods), handler, render, summary, body, TAGS, head=head)
