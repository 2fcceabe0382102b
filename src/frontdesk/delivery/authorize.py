"""POST /authorize: connect an account of an extension to a form, the way Pyrus does.

Pyrus posts the credentials the user typed; the extension answers the account it found
(`account_id`, `account_name`) or says why not (`error_code`/`error`, or a non-2xx status:
receivers do both, spec.md §3.5). Nothing is created unless the extension said yes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from frontdesk.core import extensions
from frontdesk.core.forms import load_form
from frontdesk.core.replies import endpoint_url
from frontdesk.delivery.http import Outbound, OutboundError
from frontdesk.delivery.signing import DELIVERY_ID_HEADER, pyrus_signature
from frontdesk.errors import FrontdeskError, NotFound
from frontdesk.storage.database import Database

CODE_LIMIT, VALUE_LIMIT = 50, 500
#: an account's id and name (extension_accounts; the v1 document's 300 characters)
ACCOUNT_LENGTH = 300


class AuthorizeFailed(FrontdeskError):
    def __init__(self, message: str) -> None:
        super().__init__("authorization_error", message, 502)


@dataclass(frozen=True)
class Connected:
    account_id: str
    account_name: str
    form_id: int


def credentials_body(credentials: Sequence[tuple[str, str]]) -> bytes:
    for code, value in credentials:
        if not code or len(code) > CODE_LIMIT or len(value) > VALUE_LIMIT:
            raise FrontdeskError(
                "validation_error",
                f"credential {code!r}: codes are 1-{CODE_LIMIT} characters, values up to "
                f"{VALUE_LIMIT}",
            )
    return msgspec.json.encode(
        {"credentials": [{"code": code, "value": value} for code, value in credentials]}
    )


def _verdict(status: int, body: bytes) -> tuple[str, str | None]:
    """The account the extension answered, or AuthorizeFailed saying why not."""
    try:
        answer = msgspec.json.decode(body) if body.strip() else {}
    except msgspec.DecodeError:
        answer = None
    if not isinstance(answer, dict):
        raise AuthorizeFailed(f"The extension answered HTTP {status} with a body that is not JSON")
    error = answer.get("error_code") or answer.get("error")
    if error or not 200 <= status < 300:
        reason = " ".join(
            str(answer.get(key)) for key in ("error_code", "error") if answer.get(key)
        )
        raise AuthorizeFailed(f"The extension refused (HTTP {status}): {reason or 'no reason'}")
    return _account_id(answer.get("account_id")), _account_name(answer.get("account_name"))


def _text(value: object) -> str | None:
    # (bool is an int to Python: true would become the account "True")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if text.strip() else None


def _account_id(value: object) -> str:
    account_id = _text(value)
    if account_id is None:
        raise AuthorizeFailed("The extension answered no account_id")
    if len(account_id) > ACCOUNT_LENGTH:
        raise AuthorizeFailed(f"The extension's account_id is over {ACCOUNT_LENGTH} characters")
    return account_id


def _account_name(value: object) -> str | None:
    name = _text(value)
    return None if name is None else name[:ACCOUNT_LENGTH]  # a name is shown: cut to fit


async def connect_account(
    db: Database,
    outbound: Outbound,
    extension_id: int,
    form_id: int,
    credentials: Sequence[tuple[str, str]],
    routing: str = "reuse_open",
) -> Connected:
    extension = await db.read(extensions.get_extension, extension_id)
    if not extension["base_url"]:
        raise NotFound(f"Extension {extension_id} has no URL to authorize against")
    await db.read(load_form, form_id)  # before the extension is asked anything
    body = credentials_body(credentials)
    headers = {
        "Content-Type": "application/json",
        "X-Pyrus-Sig": pyrus_signature(str(extension["secret"]), body),
        "X-Pyrus-Retry": "1/1",
        DELIVERY_ID_HEADER: str(uuid.uuid4()),
    }
    url = endpoint_url(str(extension["base_url"]), "authorize")
    try:
        answer = await outbound.request("POST", url, body=body, headers=headers)
    except OutboundError as exc:
        raise AuthorizeFailed(f"Could not reach {url}: {exc}") from None
    account_id, name = _verdict(answer.status, answer.body)
    name = name or account_id
    await db.write(
        extensions.add_account, extension_id, account_id, form_id, name=name, routing=routing
    )
    return Connected(account_id, name, form_id)
