"""GET /v4/profile (who the token belongs to) and /v4/members (everyone an agent can assign)."""

from __future__ import annotations

from frontdesk.core import auth, users
from frontdesk.core.auth import UserPrincipal
from frontdesk.protocols.pyrus_v4.common import endpoint, user_method
from frontdesk.storage.sql import Tx
from frontdesk.web.endpoints import Call, Reply
from frontdesk.web.responses import ok


async def _profile(tx: Tx, principal: UserPrincipal) -> users.Person:
    await auth.ensure_current_user(tx, principal)
    return await users.get_person(tx, principal.user_id)


async def profile(call: Call, principal: UserPrincipal) -> Reply:
    person = await call.ctx.db.read(_profile, principal)
    return ok(
        {
            "person_id": person.user_id,
            "first_name": person.first_name,
            "last_name": person.last_name,
        }
    )


ENDPOINTS = (endpoint("/v4/profile", user_method(profile), "The signed-in user", methods=("GET",)),)
