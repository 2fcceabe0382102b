"""GET /v4/profile (who the token belongs to) and /v4/members (everyone an agent can assign).

Frontdesk is one organisation and every user is an agent, so every member sees every member.
The shapes are Pyrus' (pyrus.com/en/help/api/members; the Person, ProfileResponse and
Organization models of Pyrus' Python client); fields Frontdesk does not keep are left out,
as Pyrus leaves out empty fields.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from frontdesk.core import auth, users
from frontdesk.core.auth import UserPrincipal
from frontdesk.core.numbers import small_number
from frontdesk.errors import NotFound, invalid
from frontdesk.protocols.pyrus_v4.common import endpoint, user_method
from frontdesk.storage.sql import Tx
from frontdesk.web.endpoints import Call, Reply
from frontdesk.web.responses import ok

ORGANIZATION_ID = 1
ORGANIZATION_NAME = "Frontdesk"
LOCALE = "en-US"


def person_json(member: users.Member) -> dict[str, Any]:
    """A Pyrus Person: `phone` is the work phone (the one a PBX's internal_number matches)."""
    return {
        "id": member.user_id,
        "first_name": member.first_name,
        "last_name": member.last_name,
        "email": member.email,
        "type": "user",
        "banned": False,
        "phone": member.work_phone or None,
    }


def parse_member_id(raw: str) -> int:
    """A member id from the path: ASCII digits; other text is a malformed request."""
    if raw == raw.strip() and (member_id := small_number(raw)) is not None:
        return member_id
    if raw.isascii() and raw.isdigit():  # (a longer run of digits names nobody)
        raise NotFound(f"No member {raw[:40]}")
    raise invalid(f"A member id is a number, not {raw[:40]!r}")


async def _profile(tx: Tx, principal: UserPrincipal) -> tuple[users.Member, list[users.Member]]:
    await auth.ensure_current_user(tx, principal)
    return await users.get_member(tx, principal.user_id), await users.list_members(tx)


async def profile(call: Call, principal: UserPrincipal) -> Reply:
    me, everyone = await call.ctx.db.read(_profile, principal)
    return ok(
        {
            "person_id": me.user_id,
            "first_name": me.first_name,
            "last_name": me.last_name,
            "email": me.email,
            "locale": LOCALE,
            "organization_id": ORGANIZATION_ID,
            "organization": {
                "organization_id": ORGANIZATION_ID,
                "name": ORGANIZATION_NAME,
                # Pyrus' clients ask for these (`withinactive`) and read them as Persons
                "persons": [person_json(member) for member in everyone],
            },
        }
    )


async def _members(tx: Tx, principal: UserPrincipal) -> list[users.Member]:
    await auth.ensure_current_user(tx, principal)
    return await users.list_members(tx)


async def members(call: Call, principal: UserPrincipal) -> Reply:
    everyone = await call.ctx.db.read(_members, principal)
    return ok({"members": [person_json(member) for member in everyone]})


async def _member(tx: Tx, principal: UserPrincipal, member_id: int) -> users.Member:
    await auth.ensure_current_user(tx, principal)
    return await users.get_member(tx, member_id)


async def member(call: Call, principal: UserPrincipal) -> Reply:
    """One member; an unknown id is 404, which aiopyrus' find_member reads as "nobody"."""
    member_id = parse_member_id(call.path_param("member_id"))
    found = await call.ctx.db.read(_member, principal, member_id)
    return ok(person_json(found))


GET = ("GET",)
MEMBERS = endpoint("/v4/members", user_method(members), "Every member", methods=GET)
ENDPOINTS = (
    endpoint("/v4/profile", user_method(profile), "The signed-in user", methods=GET),
    MEMBERS,
    # the members page's own curl example asks for /v4/members/ (a trailing slash)
    replace(MEMBERS, path="/v4/members/", in_schema=False),
    endpoint("/v4/members/{member_id}", user_method(member), "One member by id", methods=GET),
)
