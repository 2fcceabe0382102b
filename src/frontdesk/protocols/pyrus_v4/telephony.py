"""POST /v4/integrations/call and /v4/integrations/attachcallrecord (seeds/pyrus-v4-telephony).

The same calls, recordings and field values as `/v1/call` and `/v1/attachcallrecord` (one
implementation, `core.calls`), sent by a user instead of an extension. What v4 answers
differently: `/call` gives the single object `{task_id, is_new_task, responsible_person}`
with `user_id` as a string (the document's example, ARCHITECTURE.md §2), and a `task_id`
naming no task is `unrecognized_task_id`.
"""

from __future__ import annotations

from typing import Any

from frontdesk.core import calls
from frontdesk.core.auth import UserPrincipal
from frontdesk.core.users import Person
from frontdesk.protocols.pyrus_v4.common import endpoint, json_method
from frontdesk.web.endpoints import Call, Reply
from frontdesk.web.pyrus_bodies import AttachCallRecordIn, CallIn
from frontdesk.web.responses import ok_with_problems, pyrus_error


def responsible_json(person: Person | None) -> dict[str, Any] | None:
    if person is None:
        return None
    return {
        "user_id": str(person.user_id),
        "first_name": person.first_name,
        "last_name": person.last_name,
        "work_phone": person.work_phone,
    }


async def register_call(call: Call, principal: UserPrincipal, body: CallIn) -> Reply:
    outcome = await call.ctx.db.write(calls.register_call, principal, body.to_core())
    payload = {
        "task_id": outcome.task_id,
        "is_new_task": outcome.is_new_task,
        "responsible_person": responsible_json(outcome.responsible),
    }
    return ok_with_problems(payload, outcome.problems)


async def attach_call_record(
    call: Call, principal: UserPrincipal, body: AttachCallRecordIn
) -> Reply:
    problems = await call.ctx.db.write(
        calls.attach_call_record,
        principal,
        body.to_core(),
        unknown_task_code="unrecognized_task_id",
    )
    return ok_with_problems({}, problems)


ENDPOINTS = (
    endpoint(
        "/v4/integrations/call",
        json_method(CallIn, register_call),
        "Register a call from the telephony system",
        CallIn,
        render=pyrus_error,  # (the telephony document's own error codes)
    ),
    endpoint(
        "/v4/integrations/attachcallrecord",
        json_method(AttachCallRecordIn, attach_call_record),
        "Attach a call's recording to its task",
        AttachCallRecordIn,
        render=pyrus_error,
    ),
)
