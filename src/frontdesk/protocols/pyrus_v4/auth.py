"""POST /v4/auth (and /api/v4/auth, where clients that default to accounts.pyrus.com land).

`api_url` and `files_url` point back at this server, so every client adopts routes we serve
(spec.md §4.1). The legacy `GET /v4/auth?login=&security_key=` answers the same.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from frontdesk.core import auth
from frontdesk.core.numbers import small_number
from frontdesk.errors import invalid
from frontdesk.protocols.pyrus_v4.common import MALFORMED, MAX_JSON_BODY, endpoint
from frontdesk.web.endpoints import Call, Reply
from frontdesk.web.json_body import Body, Scalar, decode_body, decode_fields, text
from frontdesk.web.responses import ok


class AuthIn(Body):
    required: ClassVar = ("login", "security_key")
    limits: ClassVar = {"login": 254, "security_key": 200}
    login: str | None = None
    security_key: str | None = None
    #: only when one e-mail owns several Pyrus accounts; here it must be the user's own id
    person_id: Scalar | None = None

    def person(self) -> int | None:
        value = text(self.person_id)
        if not value:
            return None
        if (person_id := small_number(value)) is None:
            raise invalid(f"person_id must be a user id, not {value[:40]!r}")
        return person_id


async def authorize(call: Call) -> Reply:
    # per address, before the body (a bad one counts too): per login would let anyone who
    # knows an e-mail lock its owner out
    call.quota = call.ctx.limiter.hit(("address", call.client_ip))
    if call.method == "GET":
        body = decode_fields(call.query(), AuthIn)
    else:
        body = decode_body(await call.body(MAX_JSON_BODY), AuthIn, MALFORMED)
    ttl = call.ctx.settings.token_ttl_seconds
    issued = await call.ctx.db.write(
        auth.issue_user_token,
        str(body.login),
        str(body.security_key),
        timedelta(seconds=ttl),
        body.person(),
    )
    base = call.public_base_url()
    return ok({"access_token": issued.token, "api_url": f"{base}/v4/", "files_url": f"{base}/"})


SUMMARY = "Exchange login and security key for an access token"
ENDPOINTS = (
    endpoint("/v4/auth", authorize, SUMMARY, AuthIn, ("POST", "GET"), head=False),
    endpoint("/api/v4/auth", authorize, SUMMARY, AuthIn, ("POST", "GET"), head=False),
)
