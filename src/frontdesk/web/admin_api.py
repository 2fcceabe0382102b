"""The admin JSON API: what `frontdesk deliveries` does, over HTTP, for dashboards and scripts.

    GET  /admin/api/deliveries?status=dead&limit=50
    GET  /admin/api/deliveries/{id}            the request and every attempt
    POST /admin/api/deliveries/redeliver       {"ids": [1, 2]}

Authenticated with `Authorization: Bearer $FRONTDESK_ADMIN_TOKEN`, compared in constant time;
without that setting the API answers 401 to everyone.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import msgspec

from frontdesk.core import outbox_admin
from frontdesk.core.credentials import same, token_hash
from frontdesk.core.numbers import small_number
from frontdesk.errors import FrontdeskError, Unauthorized, invalid
from frontdesk.web.bearer import bearer_token
from frontdesk.web.endpoints import Call, Endpoint, Handler, Reply
from frontdesk.web.json_body import Body, decode_body
from frontdesk.web.ratelimit import wrong_keys_of
from frontdesk.web.responses import pyrus_error

TAGS = ("Admin",)
MAX_LIMIT = 1000


DeliveryRef = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


class RedeliverIn(Body):
    required: ClassVar = ("ids",)
    ids: list[DeliveryRef] = msgspec.field(default_factory=list)


def _check_admin(call: Call) -> None:
    """The admin token, which the operator chooses (it may be a weak one): a wrong one counts
    against the caller's address, and an address over quota is refused before the check."""
    configured = call.ctx.settings.admin_token
    presented = bearer_token(call)
    wrong_keys = wrong_keys_of(call.client_ip)
    call.ctx.limiter.check(wrong_keys)
    # hashed first: compare_digest is constant-time only for inputs of one length
    if not configured or not same(token_hash(presented), token_hash(configured)):
        call.ctx.limiter.hit(wrong_keys)
        raise Unauthorized("invalid_token", "Not the admin token (FRONTDESK_ADMIN_TOKEN)")


def _admin(run: Any) -> Handler:
    async def handle(call: Call) -> Reply:
        _check_admin(call)
        return Reply(await run(call))

    return handle


def _limit(call: Call) -> int:
    limit = small_number(call.query().get("limit", "100"))
    if limit is None or not 0 < limit <= MAX_LIMIT:
        raise invalid(f"limit must be a number from 1 to {MAX_LIMIT}")
    return limit


async def _list(call: Call) -> dict[str, Any]:
    status = call.query().get("status") or None
    rows = await call.ctx.db.read(outbox_admin.list_deliveries, status, _limit(call))
    return {"deliveries": rows}


async def _show(call: Call) -> dict[str, Any]:
    raw = call.path_param("delivery")
    if (delivery_id := small_number(raw)) is None:
        raise FrontdeskError("not_found", f"No delivery {raw[:40]!r}", 404)
    return await call.ctx.db.read(outbox_admin.show_delivery, delivery_id)


async def _redeliver(call: Call) -> dict[str, Any]:
    body = decode_body(await call.body(64 * 1024), RedeliverIn)
    return {"redelivered": await call.ctx.db.write(outbox_admin.redeliver, body.ids)}


def _endpoint(path: str, run: Any, summary: str, method: str, body: Any = None) -> Endpoint:
    return Endpoint(path, (method,), _admin(run), pyrus_error, summary, body, TAGS)


ENDPOINTS = (
    _endpoint("/admin/api/deliveries", _list, "Outbound webhooks, newest first", "GET"),
    _endpoint("/admin/api/deliveries/{delivery}", _show, "A delivery and every attempt", "GET"),
    _endpoint(
        "/admin/api/deliveries/redeliver",
        _redeliver,
        "Send finished deliveries again",
        "POST",
        RedeliverIn,
    ),
)
