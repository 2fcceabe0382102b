"""Telephony: a call registers as a task; its recording is attached when the call ends.

One implementation for both doors a call comes in by: an extension (API v1 `/v1/call`) and
a user (API v4 `/v4/integrations/call`); `core.intake` says what each may reach.

A call with an `external_id` is that call: repeating it updates the call and its task
instead of making a new one (PBXs report a call several times as it progresses).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import access
from frontdesk.core import tasks as task_store
from frontdesk.core.auth import UserPrincipal, ensure_token_current
from frontdesk.core.call_context import call_context
from frontdesk.core.channels import Routed, new_conversation, route
from frontdesk.core.comments import INTERNAL, Formatted, NewComment, add_comment, add_comment_later
from frontdesk.core.extensions import Account, account_by_ref, ensure_enabled
from frontdesk.core.files import AUDIO_EXTENSIONS, StoredFile
from frontdesk.core.forms import load_form, map_values
from frontdesk.core.intake import (
    Outcome,
    Principal,
    account_of,
    check_user_may_use,
    extension_scope,
    open_to_extension,
    uploader_id,
)
from frontdesk.core.task_views import visible_task
from frontdesk.core.users import Person
from frontdesk.errors import Forbidden, FrontdeskError, Problem, required
from frontdesk.storage.sql import Deferred, Query, Row, Tx, id_of
from frontdesk.storage.tables import calls, channels, extension_accounts, files

Mappings = Sequence[tuple[str, str]]


@dataclass(slots=True)  # made per request (docs/decisions.md)
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
# A first report that finds its external_id taken lost a race with another report of the same
# call: the unit runs again (a claim, see Tx.defer) and finds that call.
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
#: the newest call the caller may reach: of one extension's accounts, or of every extension's
#: (extension_id NULL); of one account when it was named (account_ref not NULL); and in a form
#: the user may see when a user named none (viewer_id not NULL). Filtered here, before the
#: LIMIT: a newer call in a hidden form must not hide an older one the user may see.
_REACHABLE_CALLS = (
    sa.select(*_CALL)
    .join(extension_accounts, extension_accounts.c.id == calls.c.account_ref)
    .where(
        sa.or_(
            sa.cast(p("extension_id"), sa.BigInteger).is_(None),
            extension_accounts.c.extension_id == p("extension_id"),
        ),
        sa.or_(
            sa.cast(p("account_ref"), sa.BigInteger).is_(None),
            calls.c.account_ref == p("account_ref"),
        ),
        sa.or_(
            sa.cast(p("viewer_id"), sa.BigInteger).is_(None),
            access.form_open_to(extension_accounts.c.form_id, p("viewer_id")),
        ),
    )
    .order_by(calls.c.id.desc())
    .limit(1)
)
LATEST_CALL_IN_TASK = Query(_REACHABLE_CALLS.where(calls.c.task_id == p("task_id")))
LATEST_CALL_BY_EXTERNAL_ID = Query(_REACHABLE_CALLS.where(calls.c.external_id == p("external_id")))
LATEST_CALL_BETWEEN = Query(
    _REACHABLE_CALLS.where(
        calls.c.from_number == p("from_number"), calls.c.to_number == p("to_number")
    )
)
#: the conversation a call came in by (its id's, or its caller's number's): its recording is
#: shown in it too, as Pyrus marks the record "as the telephone call channel"
CALL_CHANNEL = Query(
    sa.select(channels.c.id)
    .select_from(
        calls.join(
            channels,
            sa.and_(
                channels.c.task_id == calls.c.task_id,
                channels.c.account_ref == calls.c.account_ref,
            ),
        )
    )
    .where(
        calls.c.id == p("call_id"),
        sa.or_(
            sa.and_(channels.c.kind == "call", channels.c.key == calls.c.external_id),
            sa.and_(channels.c.kind == "caller", channels.c.key == calls.c.from_number),
        ),
    )
    .order_by(channels.c.id.desc())
    .limit(1)
)
SET_RECORD = Query(
    sa.update(calls)
    .where(calls.c.id == p("id"))
    .values(record_file_id=p("file_id"), updated_at=p("now"))
)
#: an upload the caller may attach: the account's extension's, or the calling user's own
RECORD_FILE = Query(
    sa.select(
        files.c.id, files.c.guid, files.c.name, files.c.size, files.c.md5, files.c.content_type
    ).where(
        files.c.guid == p("guid"),
        sa.or_(files.c.extension_id == p("extension_id"), files.c.user_id == p("user_id")),
    )
)


def _call_text(call: IncomingCall, operator: Person | None) -> str:
    """The call's comment; it notes the operator who became responsible (as Pyrus notes that
    "in the comment", spec.md §2: one comment, not a second one beside it)."""
    text = f"Call from {call.from_number} to {call.to_number}"
    if call.internal_number:
        text += f", internal number {call.internal_number}"
    if operator is not None:
        text += f"; {operator.first_name} {operator.last_name} took it and is responsible"
    return text


@dataclass(slots=True)  # made per request (docs/decisions.md)
class _Landing:
    """The task a call landed in, and who is responsible for it before the operator."""

    task_id: int | Deferred
    is_new_task: bool
    responsible: Person | None
    #: a report of a call registered before (no call comment of its own)
    is_repeat: bool = False


def _hand_to_operator(
    tx: Tx, landing: _Landing, operator: Person | None, internal_number: str | None
) -> Person | None:
    """The operator (the user whose work phone is the internal number) becomes responsible;
    returns who is responsible now. A new call's comment notes it (`_call_text`); a repeated
    report, which has no comment of its own, gets a note when the task changes hands."""
    if operator is None:
        return landing.responsible
    if landing.is_new_task:  # it was created with the operator responsible
        return operator
    if landing.responsible is not None and landing.responsible.user_id == operator.user_id:
        return operator
    if not landing.is_repeat:
        tx.defer(task_store.SET_RESPONSIBLE, id=landing.task_id, user_id=operator.user_id)
        return operator
    # Two reports of the call at once both read the task in other hands: the one whose
    # hand-over finds it already handed runs again and writes no second note (PostgreSQL)
    handed = tx.defer(
        task_store.HAND_OVER, confirms=True, id=landing.task_id, user_id=operator.user_id
    )
    note = (
        f"{operator.first_name} {operator.last_name} is responsible: "
        f"took the call on internal number {internal_number}"
    )
    add_comment_later(tx, NewComment(handed, Formatted(note), direction=INTERNAL))
    return operator


async def _conversation(
    tx: Tx, account: Account, call: IncomingCall, operator: Person | None
) -> Routed:
    subject = f"Call from {call.from_number}"
    if call.external_id:
        # A PBX's call id is a conversation of its own, so its first report always opens a
        # task (whatever the routing): no call had this id (`call_context`; a report
        # racing this one is caught by INSERT_CALL), and its channel is only ever made
        # together with its call, here.
        return new_conversation(
            tx,
            account,
            "call",
            call.external_id,
            generation=1,
            subject=subject,
            responsible=operator,
        )
    # A caller's number is another kind of conversation, even when equal to some call id.
    return await route(
        tx, account, "caller", call.from_number, subject=subject, responsible=operator
    )


async def _new_call(
    tx: Tx, account: Account, call: IncomingCall, operator: Person | None
) -> _Landing:
    routed = await _conversation(tx, account, call, operator)
    tx.defer(
        INSERT_CALL,
        claim=True,
        account_ref=account.id,
        task_id=routed.task_id,
        external_id=call.external_id,
        from_number=call.from_number,
        to_number=call.to_number,
        internal_number=call.internal_number,
        now=tx.now,
    )
    text = _call_text(call, operator)
    add_comment_later(tx, NewComment(routed.task_id, Formatted(text), channel_id=routed.channel_id))
    return _Landing(routed.task_id, routed.is_new_task, routed.responsible)


def _responsible_in(row: Row) -> Person | None:
    if row["responsible_id"] is None:
        return None
    return Person(row["responsible_id"], row["first_name"], row["last_name"], row["work_phone"])


async def _update_call(tx: Tx, account: Account, existing: Row, call: IncomingCall) -> _Landing:
    """A call reported again: new numbers (an internal number is kept when none is sent).

    It follows the account's routing like a new report would: under reopen_closed its task,
    if closed meanwhile, is reopened."""
    task_id: int | Deferred = int(existing["task_id"])
    if account.routing == "reopen_closed":
        if existing["closed_at"] is not None:
            await task_store.reopen(tx, existing["task_id"])
        else:  # (closed before the writes: the rerun reopens it)
            task_id = task_store.still_open(tx, existing["task_id"])
    tx.defer(
        UPDATE_CALL,
        id=existing["id"],
        from_number=call.from_number,
        to_number=call.to_number,
        internal_number=call.internal_number,
        now=tx.now,
    )
    return _Landing(task_id, False, _responsible_in(existing), is_repeat=True)


async def register_call(tx: Tx, principal: Principal, call: IncomingCall) -> Outcome:
    """POST /v1/call and /v4/integrations/call."""
    context = await call_context(
        tx, principal, call.account_id, call.external_id, call.internal_number
    )
    account, operator, existing = context.account, context.operator, context.reported_before
    mapped = map_values(context.form, call.mappings)
    if existing is not None:
        landing = await _update_call(tx, account, existing, call)
    else:
        landing = await _new_call(tx, account, call, operator)
    task_store.set_values_later(tx, landing.task_id, mapped.values)
    responsible = _hand_to_operator(tx, landing, operator, call.internal_number)
    # every write deferred: on PostgreSQL the call is one statement, without BEGIN/COMMIT
    await tx.flush(last=True)
    return Outcome(id_of(landing.task_id), landing.is_new_task, responsible, mapped.problems)


async def _find_call(
    tx: Tx,
    principal: Principal,
    account: Account | None,
    record: CallRecord,
    unknown_task_code: str,
) -> Row:
    # A user naming no account finds calls of every account, but only in forms they may see:
    # a hidden call answers as one that does not exist (a 403 would tell it from none)
    viewer = principal.user_id if account is None and isinstance(principal, UserPrincipal) else None
    scope = {
        "extension_id": extension_scope(principal),
        "account_ref": account.id if account else None,
        "viewer_id": viewer,
    }
    if record.task_id is not None:
        key: dict[str, object] = {"task_id": record.task_id}
        query = LATEST_CALL_IN_TASK
        what = f"task {record.task_id}"
    elif record.external_id:
        query, key = LATEST_CALL_BY_EXTERNAL_ID, {"external_id": record.external_id}
        what = f"external_id {record.external_id!r}"
    elif record.from_number and record.to_number:
        query, key = (
            LATEST_CALL_BETWEEN,
            {"from_number": record.from_number, "to_number": record.to_number},
        )
        what = f"a call from {record.from_number} to {record.to_number}"
    else:
        raise required("external_id, task_id or from_number and to_number")
    found = await tx.one(query, **scope, **key)
    if found is not None:
        return found
    if record.task_id is not None and not await _task_seen_by(
        tx, principal, account, record.task_id
    ):
        raise FrontdeskError(unknown_task_code, f"No task {record.task_id}. Request not processed")
    raise FrontdeskError(
        "unrecognized_call_id", f"No call registered for {what}. Request not processed"
    )


async def _task_seen_by(
    tx: Tx, principal: Principal, account: Account | None, task_id: int
) -> bool:
    """The task exists and is one the caller may see (a user: by the v4 access rules; an
    extension: a task of the named account's form that is open to it, as for v1 /comment):
    a hidden task answers as one that does not exist, so that ids cannot be probed."""
    task = await task_store.get_task(tx, task_id)
    if task is None:
        return False
    if not isinstance(principal, UserPrincipal):
        if account is None:  # (no account named: one of its accounts' own tasks)
            return task.account_ref is not None and await open_to_extension(tx, task, principal)
        return task.form_id == account.form_id and await open_to_extension(tx, task, principal)
    try:
        await visible_task(tx, principal.user_id, task_id)
    except Forbidden:
        return False
    return True


async def _record_file(tx: Tx, principal: Principal, account: Account, guid: str) -> int:
    row = await tx.one(
        RECORD_FILE,
        guid=guid.strip().lower(),
        extension_id=account.extension_id,
        user_id=uploader_id(principal),
    )
    if row is None:
        raise FrontdeskError(
            "unrecognized_attachment_id", f"No uploaded file {guid!r}. Request not processed"
        )
    stored = StoredFile(**row)
    if stored.extension not in AUDIO_EXTENSIONS:
        raise FrontdeskError(
            "unsupported_record_file_format",
            f"{stored.name!r} is not a call recording; use one of " + ", ".join(AUDIO_EXTENSIONS),
        )
    return stored.id


async def attach_call_record(
    tx: Tx,
    principal: Principal,
    record: CallRecord,
    *,
    unknown_task_code: str = "unrecognized_call_id",
) -> list[Problem]:
    """POST /attachcallrecord: the recording becomes a call comment in the call's task.

    `account_id` is optional (Pyrus' own v4 clients do not send it): the call knows its account.
    A `task_id` naming no task answers `unknown_task_code`: the Extensions API v1 document
    knows only unrecognized_call_id here; API v4 tells that apart (unrecognized_task_id).
    """
    if not record.record_file:
        raise required("record_file")
    account = None
    if record.account_id is not None:
        account = await account_of(tx, principal, record.account_id)
    else:
        await ensure_token_current(tx, principal)
    call = await _find_call(tx, principal, account, record, unknown_task_code)
    if account is None:
        account = ensure_enabled(await account_by_ref(tx, int(call["account_ref"])))
        await check_user_may_use(tx, principal, account)
    file_id = await _record_file(tx, principal, account, record.record_file)
    mapped = map_values(await load_form(tx, account.form_id), record.mappings)
    task_id = int(call["task_id"])
    await task_store.lock(tx, task_id)  # (before its values: the order of messages, calls)
    await task_store.set_values(tx, task_id, mapped.values)
    await tx.run(SET_RECORD, id=call["id"], file_id=file_id, now=tx.now)
    channel = await tx.one(CALL_CHANNEL, call_id=call["id"])
    recording = Formatted("Call recording")
    await add_comment(
        tx,
        NewComment(
            task_id, recording, file_ids=[file_id], channel_id=channel["id"] if channel else None
        ),
    )
    return mapped.problems
