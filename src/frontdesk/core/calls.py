"""Telephony: a call registers as a task; its recording is attached when the call ends.

A call with an `external_id` is that call: repeating it updates the call and its task
instead of making a new one (PBXs report a call several times as it progresses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import tasks as task_store
from frontdesk.core.auth import ExtensionPrincipal, ensure_current
from frontdesk.core.channels import route
from frontdesk.core.clock import utcnow
from frontdesk.core.comments import Formatted, NewComment, add_comment, add_note
from frontdesk.core.extensions import Account, account_by_ref, active_account, ensure_enabled
from frontdesk.core.files import AUDIO_EXTENSIONS, extension_file
from frontdesk.core.forms import load_form, map_values
from frontdesk.core.intake import Outcome, account_and_form
from frontdesk.core.users import Person, find_by_work_phone
from frontdesk.errors import FrontdeskError, Problem, required
from frontdesk.storage.sql import Query, Tx
from frontdesk.storage.tables import calls, extension_accounts

Mappings = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class IncomingCall:
    account_id: str
    from_number: str
    to_number: str
    internal_number: str | None = None
    external_id: str | None = None
    mappings: Mappings = ()


@dataclass(frozen=True)
class CallRecord:
    record_file: str
    account_id: str | None = None
    task_id: int | None = None
    external_id: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    mappings: Mappings = ()


_CALL = (calls.c.id, calls.c.task_id, calls.c.account_ref)
CALL_BY_EXTERNAL_ID = Query(
    sa.select(*_CALL).where(
        calls.c.account_ref == p("account_ref"), calls.c.external_id == p("external_id")
    )
)
INSERT_CALL = Query(
    sa.insert(calls).values(
        account_ref=p("account_ref"),
        task_id=p("task_id"),
        external_id=p("external_id"),
        from_number=p("from_number"),
        to_number=p("to_number"),
        internal_number=p("internal_number"),
        created_at=p("now"),
        updated_at=p("now"),
    )
)
UPDATE_CALL = Query(
    sa.update(calls)
    .where(calls.c.id == p("id"))
    .values(
        from_number=p("from_number"),
        to_number=p("to_number"),
        internal_number=sa.func.coalesce(p("internal_number"), calls.c.internal_number),
        updated_at=p("now"),
    )
)
_EXTENSION_CALLS = (
    sa.select(*_CALL)
    .join(extension_accounts, extension_accounts.c.id == calls.c.account_ref)
    .where(
        extension_accounts.c.extension_id == p("extension_id"),
        sa.or_(
            sa.cast(p("account_ref"), sa.BigInteger).is_(None),
            calls.c.account_ref == p("account_ref"),
        ),
    )
    .order_by(calls.c.id.desc())
    .limit(1)
)
LATEST_CALL_IN_TASK = Query(_EXTENSION_CALLS.where(calls.c.task_id == p("task_id")))
LATEST_CALL_BY_EXTERNAL_ID = Query(_EXTENSION_CALLS.where(calls.c.external_id == p("external_id")))
LATEST_CALL_BETWEEN = Query(
    _EXTENSION_CALLS.where(
        calls.c.from_number == p("from_number"), calls.c.to_number == p("to_number")
    )
)
SET_RECORD = Query(
    sa.update(calls)
    .where(calls.c.id == p("id"))
    .values(record_file_id=p("file_id"), updated_at=p("now"))
)


def _call_text(call: IncomingCall) -> str:
    text = f"Call from {call.from_number} to {call.to_number}"
    return text + (f", internal number {call.internal_number}" if call.internal_number else "")


async def _assign_operator(tx: Tx, task_id: int, internal_number: str | None) -> None:
    """The user whose work phone is the internal number becomes responsible, with a note."""
    person = await find_by_work_phone(tx, internal_number)
    if person is None:
        return
    task = await task_store.get_task(tx, task_id)
    if task is not None and task.responsible_id == person.user_id:
        return
    await task_store.set_responsible(tx, task_id, person.user_id)
    await add_note(
        tx,
        task_id,
        f"{person.first_name} {person.last_name} is responsible: "
        f"took the call on internal number {internal_number}",
    )


async def _new_call(tx: Tx, account: Account, call: IncomingCall) -> tuple[int, bool]:
    # A PBX's call id and a caller's number are different conversations, even when equal.
    kind, key = ("call", call.external_id) if call.external_id else ("caller", call.from_number)
    routed = await route(tx, account, kind, key, subject=f"Call from {call.from_number}")
    await tx.run(
        INSERT_CALL,
        account_ref=account.id,
        task_id=routed.task_id,
        external_id=call.external_id,
        from_number=call.from_number,
        to_number=call.to_number,
        internal_number=call.internal_number,
        now=utcnow(),
    )
    await add_comment(
        tx, NewComment(routed.task_id, Formatted(_call_text(call)), channel_id=routed.channel_id)
    )
    return routed.task_id, routed.is_new_task


async def _reopen_if_routed_so(tx: Tx, account: Account, task_id: int) -> None:
    """A call reported again (same external_id) follows the account's routing like a new one:
    under reopen_closed its task, if closed meanwhile, is reopened."""
    if account.routing != "reopen_closed":
        return
    task = await task_store.get_task(tx, task_id)
    if task is not None and task.closed_at is not None:
        await task_store.reopen(tx, task_id)


async def register_call(tx: Tx, principal: ExtensionPrincipal, call: IncomingCall) -> Outcome:
    """POST /call and /v4/integrations/call."""
    account, form = await account_and_form(tx, principal, call.account_id)
    mapped = map_values(form, call.mappings)
    existing = None
    if call.external_id:
        key = {"account_ref": account.id, "external_id": call.external_id}
        existing = await tx.one(CALL_BY_EXTERNAL_ID, **key)
        # a PBX reporting one call twice at once must still make one call
        if existing is None and await tx.lock("call", account.id, call.external_id):
            existing = await tx.one(CALL_BY_EXTERNAL_ID, **key)
    if existing is not None:
        task_id, is_new = existing["task_id"], False
        await _reopen_if_routed_so(tx, account, task_id)
        await tx.run(
            UPDATE_CALL,
            id=existing["id"],
            from_number=call.from_number,
            to_number=call.to_number,
            internal_number=call.internal_number,
            now=utcnow(),
        )
    else:
        task_id, is_new = await _new_call(tx, account, call)
    await task_store.set_values(tx, task_id, mapped.values)
    await _assign_operator(tx, task_id, call.internal_number)
    responsible: Person | None = await task_store.responsible_of(tx, task_id)
    return Outcome(task_id, is_new, responsible, mapped.problems)


async def _find_call(
    tx: Tx, extension_id: int, account: Account | None, record: CallRecord
) -> dict[str, object]:
    scope = {"extension_id": extension_id, "account_ref": account.id if account else None}
    if record.task_id is not None:
        found = await tx.one(LATEST_CALL_IN_TASK, **scope, task_id=record.task_id)
        what = f"task {record.task_id}"
    elif record.external_id:
        found = await tx.one(LATEST_CALL_BY_EXTERNAL_ID, **scope, external_id=record.external_id)
        what = f"external_id {record.external_id!r}"
    elif record.from_number and record.to_number:
        found = await tx.one(
            LATEST_CALL_BETWEEN, **scope, from_number=record.from_number, to_number=record.to_number
        )
        what = f"a call from {record.from_number} to {record.to_number}"
    else:
        raise required("external_id, task_id or from_number and to_number")
    if found is None:
        raise FrontdeskError(
            "unrecognized_call_id", f"No call registered for {what}. Request not processed"
        )
    return found


async def _record_file(tx: Tx, extension_id: int, guid: str) -> int:
    stored = await extension_file(tx, extension_id, guid)
    if stored is None:
        raise FrontdeskError(
            "unrecognized_attachment_id", f"No uploaded file {guid!r}. Request not processed"
        )
    if stored.extension not in AUDIO_EXTENSIONS:
        raise FrontdeskError(
            "unsupported_record_file_format",
            f"{stored.name!r} is not a call recording; use one of " + ", ".join(AUDIO_EXTENSIONS),
        )
    return stored.id


async def attach_call_record(
    tx: Tx, principal: ExtensionPrincipal, record: CallRecord
) -> list[Problem]:
    """POST /attachcallrecord: the recording becomes a call comment in the call's task.

    `account_id` is optional (Pyrus' own v4 clients do not send it): the call knows its account.
    """
    if not record.record_file:
        raise required("record_file")
    account = None
    if record.account_id is not None:
        account = await active_account(tx, principal, record.account_id)
    else:
        await ensure_current(tx, principal)
    extension_id = principal.extension_id
    call = await _find_call(tx, extension_id, account, record)
    if account is None:
        account = ensure_enabled(await account_by_ref(tx, int(str(call["account_ref"]))))
    file_id = await _record_file(tx, extension_id, record.record_file)
    mapped = map_values(await load_form(tx, account.form_id), record.mappings)
    task_id = int(str(call["task_id"]))
    await task_store.set_values(tx, task_id, mapped.values)
    await tx.run(SET_RECORD, id=call["id"], file_id=file_id, now=utcnow())
    await add_comment(tx, NewComment(task_id, Formatted("Call recording"), file_ids=[file_id]))
    return mapped.problems
