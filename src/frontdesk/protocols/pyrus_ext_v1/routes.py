"""Pyrus Extensions API v1: the eight methods a connector calls (seeds/pyrus-extensions-api-v1)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath
from litestar.response import File

from frontdesk.core import auth, calls, files, messages
from frontdesk.core.intake import Outcome
from frontdesk.core.users import Person
from frontdesk.errors import Problem, TooLarge
from frontdesk.protocols.pyrus_ext_v1.errors import EXCEPTION_HANDLERS
from frontdesk.protocols.pyrus_ext_v1.schemas import (
    AttachCallRecordIn,
    CallIn,
    CommentIn,
    GetMessageIn,
    TaskIn,
    TokenIn,
)
from frontdesk.web.bearer import bearer_token
from frontdesk.web.context import AppContext, context
from frontdesk.web.downloads import file_response, parse_file_id
from frontdesk.web.json_body import Body, decode_body
from frontdesk.web.openapi import documented
from frontdesk.web.responses import json_response, quota_headers, remember_quota
from frontdesk.web.uploads import receive_file

AnyRequest = Request[Any, Any, Any]
B = TypeVar("B", bound=Body)
#: slack over the file cap for the multipart envelope, before the stream is even read
MULTIPART_OVERHEAD = 1024 * 1024


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


def with_problems(payload: dict[str, Any], problems: list[Problem]) -> dict[str, Any]:
    """Processed with a warning: the normal answer plus what was ignored (ARCHITECTURE §2)."""
    if problems:
        payload["error_code"] = problems[0].code
        payload["error"] = "; ".join(problem.message for problem in problems)[:300]
        payload["warnings"] = [{"error_code": p.code, "error": p.message} for p in problems]
    return payload


async def authenticate(request: AnyRequest) -> int:
    """The calling extension's id; counts the request against its quota."""
    token = bearer_token(request)
    ctx = context(request)
    principal = await ctx.db.read(auth.check_extension_token, token)
    remember_quota(request, ctx.limiter.hit(("extension", principal.extension_id)))
    return principal.extension_id


async def _call(
    request: AnyRequest,
    body_type: type[B],
    run: Callable[[AppContext, int, B], Awaitable[dict[str, Any]]],
) -> Response[bytes]:
    extension_id = await authenticate(request)
    body = decode_body(await request.body(), body_type)
    payload = await run(context(request), extension_id, body)
    return json_response(payload, headers=quota_headers(request))


async def _issue_token(request: AnyRequest, body: TokenIn) -> Response[bytes]:
    ctx = context(request)
    remember_quota(request, ctx.limiter.hit(("client", body.client_id)))
    ttl = timedelta(seconds=ctx.settings.token_ttl_seconds)
    issued = await ctx.db.write(
        auth.issue_extension_token, str(body.client_id), str(body.secret), ttl
    )
    return json_response(
        {"access_token": issued.token, "expires_in": ctx.settings.token_ttl_seconds},
        headers=quota_headers(request),
    )


@post(
    "/token",
    status_code=200,
    operation_class=documented(TokenIn),
    summary="Exchange client_id and secret for an access token",
)
async def token(request: AnyRequest) -> Response[bytes]:
    return await _issue_token(request, decode_body(await request.body(), TokenIn))


@get(
    "/token",
    summary="The same, with client_id and secret in the query (old Pyrus pages)",
    include_in_schema=False,
)
async def token_by_query(request: AnyRequest) -> Response[bytes]:
    query = request.query_params
    body = TokenIn(client_id=query.get("client_id"), secret=query.get("secret"))
    if not body.client_id or not body.secret:
        decode_body(b"{}", TokenIn)  # raises the missing-parameters error
    return await _issue_token(request, body)


@post(
    "/task",
    status_code=200,
    operation_class=documented(TaskIn),
    summary="Create a task in the account's form",
)
async def task(request: AnyRequest) -> Response[bytes]:
    async def run(ctx: AppContext, extension_id: int, body: TaskIn) -> dict[str, Any]:
        outcome = await ctx.db.write(messages.create_task, extension_id, body.to_core())
        payload = {"task_ids": [outcome.task_id], "tasks": [task_json(outcome)]}
        return with_problems(payload, outcome.problems)

    return await _call(request, TaskIn, run)


@post(
    "/comment",
    status_code=200,
    operation_class=documented(CommentIn),
    summary="Comment on a task (and fill its fields)",
)
async def comment(request: AnyRequest) -> Response[bytes]:
    async def run(ctx: AppContext, extension_id: int, body: CommentIn) -> dict[str, Any]:
        problems = await ctx.db.write(messages.comment, extension_id, body.to_core())
        return with_problems({}, problems)

    return await _call(request, CommentIn, run)


@post(
    "/getmessage",
    status_code=200,
    operation_class=documented(GetMessageIn),
    summary="A message from the external channel (online chat)",
)
async def getmessage(request: AnyRequest) -> Response[bytes]:
    async def run(ctx: AppContext, extension_id: int, body: GetMessageIn) -> dict[str, Any]:
        outcome = await ctx.db.write(messages.receive_message, extension_id, body.to_core())
        return with_problems({"tasks": [task_json(outcome)]}, outcome.problems)

    return await _call(request, GetMessageIn, run)


@post(
    "/call",
    status_code=200,
    operation_class=documented(CallIn),
    summary="Register a call from the telephony system",
)
async def call(request: AnyRequest) -> Response[bytes]:
    async def run(ctx: AppContext, extension_id: int, body: CallIn) -> dict[str, Any]:
        outcome = await ctx.db.write(calls.register_call, extension_id, body.to_core())
        return with_problems({"tasks": [task_json(outcome)]}, outcome.problems)

    return await _call(request, CallIn, run)


@post(
    "/attachcallrecord",
    status_code=200,
    operation_class=documented(AttachCallRecordIn),
    summary="Attach a call's recording to its task",
)
async def attachcallrecord(request: AnyRequest) -> Response[bytes]:
    async def run(ctx: AppContext, extension_id: int, body: AttachCallRecordIn) -> dict[str, Any]:
        problems = await ctx.db.write(calls.attach_call_record, extension_id, body.to_core())
        return with_problems({}, problems)

    return await _call(request, AttachCallRecordIn, run)


@post(
    "/files/upload",
    status_code=200,
    request_max_body_size=None,
    summary="Upload one file (multipart)",
)
async def upload(request: AnyRequest) -> Response[bytes]:
    extension_id = await authenticate(request)
    ctx = context(request)
    cap = ctx.settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap + MULTIPART_OVERHEAD:
        raise TooLarge(f"The file is larger than the {cap} byte limit")
    received = await receive_file(
        request.stream(), request.headers.get("content-type", ""), ctx.blobs, cap
    )
    blob = received.blob
    try:
        await ctx.db.write(
            files.register_file,
            guid=blob.key,
            name=received.name,
            size=blob.size,
            md5=blob.md5,
            content_type=received.content_type,
            extension_id=extension_id,
        )
    except BaseException:
        ctx.blobs.delete(blob.key)
        raise
    return json_response({"guid": blob.key, "md5_hash": blob.md5}, headers=quota_headers(request))


@get("/files/download/{file_id:str}", summary="Download a file by its numeric id")
async def download(request: AnyRequest, file_id: FromPath[str]) -> File:
    extension_id = await authenticate(request)
    ctx = context(request)
    stored = await ctx.db.read(files.file_for_extension, extension_id, parse_file_id(file_id))
    response = file_response(ctx.blobs, stored)
    response.headers.update(quota_headers(request))
    return response


router = Router(
    path="/v1",
    route_handlers=[
        token,
        token_by_query,
        task,
        comment,
        getmessage,
        call,
        attachcallrecord,
        upload,
        download,
    ],
    exception_handlers=EXCEPTION_HANDLERS,
    tags=["Pyrus Extensions API v1"],
)
