"""Pyrus Extensions API v1: the eight methods a connector calls (seeds/pyrus-extensions-api-v1)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from frontdesk.core import auth, calls, files, messages
from frontdesk.core.auth import ExtensionPrincipal
from frontdesk.core.intake import Outcome
from frontdesk.core.users import Person
from frontdesk.errors import FrontdeskError, Unauthorized
from frontdesk.protocols.pyrus_ext_v1.errors import render_error
from frontdesk.protocols.pyrus_ext_v1.schemas import (
    AttachCallRecordIn,
    CallIn,
    CommentIn,
    GetMessageIn,
    TaskIn,
    TokenIn,
)
from frontdesk.web.bearer import bearer_token
from frontdesk.web.downloads import file_reply, parse_file_id
from frontdesk.web.endpoints import Call, Endpoint, Handler, Reply
from frontdesk.web.json_body import Body, decode_body, decode_fields
from frontdesk.web.responses import ok, ok_with_problems
from frontdesk.web.uploads import store_upload

B = TypeVar("B", bound=Body)
#: JSON bodies are small (10,000-character messages, 100 guids); anything far larger is refused
MAX_JSON_BODY = 4 * 1024 * 1024
TAGS = ("Pyrus Extensions API v1",)


def person_json(person: Person | None) -> dict[str, Any] | None:
    if person is None:
        return None
    return {
        "user_id": person.user_id,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "work_phone": person.work_phone,
    }


def task_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "task_id": outcome.task_id,
        "is_new_task": outcome.is_new_task,
        "responsible_person": person_json(outcome.responsible),
    }


async def authenticate(call: Call) -> ExtensionPrincipal:
    """The calling extension; counts the request against its quota.

    A token that is not one costs a database read: those count against the caller's address.
    """
    try:
        principal = await auth.authenticate_extension(call.ctx.db, bearer_token(call))
    except Unauthorized:
        call.quota = call.ctx.limiter.hit(("address", call.client_ip))  # (shown on the 401)
        raise
    call.quota = call.ctx.limiter.hit(("extension", principal.extension_id))
    return principal


def json_method(
    body_type: type[B], run: Callable[[Call, ExtensionPrincipal, B], Awaitable[Reply]]
) -> Handler:
    """An authenticated method taking a JSON body."""

    async def handle(call: Call) -> Reply:
        principal = await authenticate(call)
        try:
            body = decode_body(await call.body(MAX_JSON_BODY), body_type)
            return await run(call, principal, body)
        except FrontdeskError as exc:
            if exc.status == 400:  # a revoked token is told so first (read on this path alone)
                await call.ctx.db.read(auth.ensure_current, principal)
            raise

    return handle


async def _issue_token(call: Call, body: TokenIn) -> Reply:
    ttl = call.ctx.settings.token_ttl_seconds
    issued = await call.ctx.db.write(
        auth.issue_extension_token, str(body.client_id), str(body.secret), timedelta(seconds=ttl)
    )
    return ok({"access_token": issued.token, "expires_in": ttl})


async def token(call: Call) -> Reply:
    """POST with a JSON body; GET with query parameters, as an old Pyrus page described it."""
    # Counted per address, before the body (a bad one counts too): counting per client_id
    # would let anyone who knows one (it is no secret) lock the connector out of new tokens.
    call.quota = call.ctx.limiter.hit(("address", call.client_ip))
    if call.method == "GET":
        body = decode_fields(call.query(), TokenIn)
    else:
        body = decode_body(await call.body(MAX_JSON_BODY), TokenIn)
    return await _issue_token(call, body)


async def task(call: Call, principal: ExtensionPrincipal, body: TaskIn) -> Reply:
    outcome = await call.ctx.db.write(messages.create_task, principal, body.to_core())
    payload = {"task_ids": [outcome.task_id], "tasks": [task_json(outcome)]}
    return ok_with_problems(payload, outcome.problems)


async def comment(call: Call, principal: ExtensionPrincipal, body: CommentIn) -> Reply:
    problems = await call.ctx.db.write(messages.comment, principal, body.to_core())
    return ok_with_problems({}, problems)


async def getmessage(call: Call, principal: ExtensionPrincipal, body: GetMessageIn) -> Reply:
    outcome = await call.ctx.db.write(messages.receive_message, principal, body.to_core())
    return ok_with_problems({"tasks": [task_json(outcome)]}, outcome.problems)


async def register_call(call: Call, principal: ExtensionPrincipal, body: CallIn) -> Reply:
    outcome = await call.ctx.db.write(calls.register_call, principal, body.to_core())
    return ok_with_problems({"tasks": [task_json(outcome)]}, outcome.problems)


async def attachcallrecord(
    call: Call, principal: ExtensionPrincipal, body: AttachCallRecordIn
) -> Reply:
    problems = await call.ctx.db.write(calls.attach_call_record, principal, body.to_core())
    return ok_with_problems({}, problems)


async def upload(call: Call) -> Reply:
    """One file, the first file part whatever its name, streamed to disk with its MD5."""
    principal = await authenticate(call)
    await call.ctx.db.read(auth.ensure_current, principal)
    return await store_upload(call, principal)


async def download(call: Call) -> Reply:
    principal = await authenticate(call)
    file_id = parse_file_id(call.path_param("file_id"))
    db = call.ctx.db
    await db.read(auth.ensure_current, principal)
    stored = await db.read(files.file_for_extension, principal.extension_id, file_id)
    return file_reply(call.ctx.blobs, stored)


def _endpoint(
    path: str,
    handler: Handler,
    summary: str,
    body: type[Any] | None = None,
    methods: tuple[str, ...] = ("POST",),
    *,
    head: bool = True,
) -> Endpoint:
    return Endpoint(f"/v1{path}", methods, handler, render_error, summary, body, TAGS, head=head)


ENDPOINTS = (
    _endpoint(
        "/token",
        token,
        "Exchange client_id and secret for an access token",
        TokenIn,
        ("POST", "GET"),
        head=False,  # (its GET makes a token)
    ),
    _endpoint("/task", json_method(TaskIn, task), "Create a task in the account's form", TaskIn),
    _endpoint(
        "/comment",
        json_method(CommentIn, comment),
        "Comment on a task (and fill its fields)",
        CommentIn,
    ),
    _endpoint(
        "/getmessage",
        json_method(GetMessageIn, getmessage),
        "A message from the external channel (online chat)",
        GetMessageIn,
    ),
    _endpoint(
        "/call",
        json_method(CallIn, register_call),
        "Register a call from the telephony system",
        CallIn,
    ),
    _endpoint(
        "/attachcallrecord",
        json_method(AttachCallRecordIn, attachcallrecord),
        "Attach a call's recording to its task",
        AttachCallRecordIn,
    ),
    _endpoint("/files/upload", upload, "Upload one file (multipart/form-data)"),
    _endpoint(
        "/files/download/{file_id:path}",
        download,
        "Download a file by its numeric id",
        methods=("GET",),
    ),
)
