"""Planfix chat API (seeds/planfix-webchat-api.txt): what a chat system integrated with Planfix
calls, and the file links our answers give it.

    POST /webchat/api, POST /chat/api (the 2019 path)   cmd=newMessage | cmd=getTask
    GET  /files/signed/{id}?expires=…&sig=…             a file of an answer (core.file_links)

The key is the `planfix_token` field (or `token`), checked against the integration that the
`providerId` names, in the unit of work that does the command's work.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from frontdesk.core import file_links, planfix, planfix_chat
from frontdesk.errors import Forbidden, FrontdeskError, Unauthorized
from frontdesk.protocols.planfix_chat import schemas
from frontdesk.protocols.planfix_chat.errors import invalid_parameters, render_error
from frontdesk.protocols.planfix_chat.schemas import Fields
from frontdesk.web.downloads import file_reply, parse_file_id
from frontdesk.web.endpoints import Call, Endpoint, Handler, Reply
from frontdesk.web.ratelimit import wrong_keys_of

T = TypeVar("T")
TAGS = ("Planfix chat API",)
SIGNATURE = re.compile(r"[0-9a-fA-F]{64}")
EXPIRES = re.compile(r"[0-9]{1,12}")


async def _authenticated(call: Call, work: Awaitable[T]) -> T:
    """The command's result; a wrong key counts against the caller's address (guessing keys
    runs into the quota), never against the provider, whose id is no secret."""
    try:
        return await work
    except Unauthorized:
        call.ctx.limiter.hit(wrong_keys_of(call.client_ip))
        raise


async def new_message(call: Call, fields: Fields) -> Reply:
    message = schemas.new_message(fields, call.public_base_url())
    received = await _authenticated(call, call.ctx.db.write(planfix_chat.receive_message, message))
    # The documents leave this answer open (spec.md §7.18): the task, as getTask names it.
    answer: dict[str, Any] = {"number": received.task_id, "isNewTask": received.is_new_task}
    if received.warnings:
        answer["warnings"] = received.warnings
    return Reply(answer)


async def get_task(call: Call, fields: Fields) -> Reply:
    provider_id, chat_id = fields.provider_id(), fields.required("chatId")
    task_id = await _authenticated(
        call,
        call.ctx.db.read(planfix_chat.task_of_chat, provider_id, fields.token(), chat_id),
    )
    return Reply({"number": task_id})


COMMANDS: dict[str, Callable[[Call, Fields], Awaitable[Reply]]] = {
    "newMessage": new_message,
    "getTask": get_task,
}


async def chat_api(call: Call) -> Reply:
    # an address over its quota of wrong keys is refused before any key is checked: a right
    # guess answers as a wrong one
    call.ctx.limiter.check(wrong_keys_of(call.client_ip))
    raw = await call.body(schemas.MAX_BODY)
    fields = Fields(schemas.form_pairs(raw, call.header(b"content-type")))
    try:
        schemas.check_no_nul(fields.pairs)
        cmd = fields.values.get("cmd", "")
        command = COMMANDS.get(cmd)
        if command is None:
            raise invalid_parameters(
                f"Unknown cmd {cmd[:50]!r}; this server takes newMessage, getTask"
            )
        return await command(call, fields)
    except FrontdeskError as exc:
        if exc.status == 400:
            await _refuse_without_key(call, fields)
        raise


async def _refuse_without_key(call: Call, fields: Fields) -> None:
    """A refused request is told so only once its key is right (401 first, as for any
    API): a caller without the key learns nothing of what the server takes. Parameters are
    checked before the command's query checks the key, so the key is read here, on the
    error path alone. A body naming neither an integration nor a key (empty, JSON) is
    malformed, and told so."""
    provider_id, token = fields.values.get("providerId", ""), fields.token()
    if not (provider_id or token):
        return
    await _authenticated(call, call.ctx.db.read(planfix.check_key, provider_id, token))


async def signed_file(call: Call) -> Reply:
    file_id = parse_file_id(call.path_param("file_id"))
    query = call.query()
    expires, sig = query.get("expires", ""), query.get("sig", "")
    if not (EXPIRES.fullmatch(expires) and SIGNATURE.fullmatch(sig)):
        raise Forbidden("access_denied_file", "This link is not valid or has expired")
    stored = await call.ctx.db.read(file_links.file_for_link, file_id, int(expires), sig)
    return file_reply(call.ctx.blobs, stored)


def _endpoint(path: str, handler: Handler, summary: str, methods: tuple[str, ...]) -> Endpoint:
    return Endpoint(path, methods, handler, render_error, summary, None, TAGS)


_CHAT_SUMMARY = "A chat system's command (form-urlencoded): cmd=newMessage or cmd=getTask"
ENDPOINTS = (
    _endpoint("/webchat/api", chat_api, _CHAT_SUMMARY, ("POST",)),
    _endpoint("/chat/api", chat_api, _CHAT_SUMMARY + " (the 2019 path)", ("POST",)),
    _endpoint(
        "/files/signed/{file_id}",
        signed_file,
        "A file of an answer, by the signed link sent to the chat system",
        ("GET",),
    ),
)
