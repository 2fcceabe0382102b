"""What a call report reads before it writes, in one query for a PBX signed in as a user.

A report needs the account it names (and the caller's token generation), whether the user may
see that account's form, the operator whose work phone is the internal number, and the call it
repeats. Read one by one, that is four round trips on PostgreSQL before any write; API v4's
`integrations/call` is what PBXs call on every ring, so it reads them in one (the same rules
as `account_named_for`, `access.check_form`, `find_by_work_phone` and CALL_BY_EXTERNAL_ID).
An extension (API v1) reads them one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import access
from frontdesk.core.auth import ExtensionPrincipal, UserPrincipal
from frontdesk.core.extensions import ACCOUNT_COLUMNS, Account, user_account
from frontdesk.core.forms import Form, load_form
from frontdesk.core.intake import account_and_form
from frontdesk.core.users import Person, find_by_work_phone, phone_digits
from frontdesk.storage.sql import Query, Row, Tx
from frontdesk.storage.tables import calls, extension_accounts, form_members, tasks, users

#: a call, with what a repeated report needs of its task (whether it is closed, who is
#: responsible)
CALL_BY_EXTERNAL_ID = Query(
    sa.select(
        calls.c.id,
        calls.c.task_id,
        calls.c.account_ref,
        tasks.c.closed_at,
        tasks.c.responsible_id,
        users.c.first_name,
        users.c.last_name,
        users.c.work_phone,
    )
    .join(tasks, tasks.c.id == calls.c.task_id)
    .outerjoin(users, users.c.id == tasks.c.responsible_id)
    .where(calls.c.account_ref == p("account_ref"), calls.c.external_id == p("external_id"))
)
_operator = users.alias("operator")
_responsible = users.alias("responsible")
_members = form_members.alias("members")
_OPERATOR_ID = (
    sa.select(sa.func.min(_operator.c.id))
    .where(_operator.c.phone_digits == p("digits"))
    .scalar_subquery()
)
#: CALL_BY_EXTERNAL_ID's columns, named as there ("id" is the call's)
_CALL = (
    calls.c.id.label("call_id"),
    calls.c.task_id,
    calls.c.account_ref,
    tasks.c.closed_at,
    tasks.c.responsible_id,
    _responsible.c.first_name,
    _responsible.c.last_name,
    _responsible.c.work_phone,
)
CALL_CONTEXT_FOR_USER = Query(
    sa.select(
        users.c.key_generation,
        *ACCOUNT_COLUMNS,
        sa.exists()
        .where(form_members.c.form_id == extension_accounts.c.form_id)
        .label("restricted"),
        sa.exists()
        .where(_members.c.form_id == extension_accounts.c.form_id, _members.c.user_id == users.c.id)
        .label("member"),
        _operator.c.id.label("operator_id"),
        _operator.c.first_name.label("operator_first_name"),
        _operator.c.last_name.label("operator_last_name"),
        _operator.c.work_phone.label("operator_work_phone"),
        *_CALL,
    )
    .select_from(
        users.outerjoin(extension_accounts, extension_accounts.c.account_id == p("account_id"))
        .outerjoin(_operator, _operator.c.id == _OPERATOR_ID)
        .outerjoin(
            calls,
            sa.and_(
                calls.c.account_ref == extension_accounts.c.id,
                calls.c.external_id == p("external_id"),
            ),
        )
        .outerjoin(tasks, tasks.c.id == calls.c.task_id)
        .outerjoin(_responsible, _responsible.c.id == tasks.c.responsible_id)
    )
    .where(users.c.id == p("user_id"))
    .order_by(extension_accounts.c.id)
    .limit(1)
)


@dataclass(frozen=True)
class CallContext:
    account: Account
    form: Form
    operator: Person | None
    #: the call this report repeats (CALL_BY_EXTERNAL_ID's row), if any
    reported_before: Row | None


async def call_context(
    tx: Tx,
    principal: ExtensionPrincipal | UserPrincipal,
    account_id: str,
    external_id: str | None,
    internal_number: str | None,
) -> CallContext:
    if isinstance(principal, ExtensionPrincipal):
        account, form = await account_and_form(tx, principal, account_id)
        operator = await find_by_work_phone(tx, internal_number)
        before = await _reported_before(tx, account, external_id)
        return CallContext(account, form, operator, before)
    row = await tx.one(
        CALL_CONTEXT_FOR_USER,
        user_id=principal.user_id,
        account_id=account_id,
        digits=phone_digits(internal_number),
        external_id=external_id,
    )
    account = user_account(principal, account_id, row)
    assert row is not None
    if row["restricted"] and not row["member"]:
        raise access.form_denied(account.form_id)
    operator = None
    if row["operator_id"] is not None:
        operator = Person(
            row["operator_id"],
            row["operator_first_name"],
            row["operator_last_name"],
            row["operator_work_phone"],
        )
    before = None
    if external_id and row["call_id"] is not None:
        before = {**{column.name: row[column.name] for column in _CALL[1:]}, "id": row["call_id"]}
    return CallContext(account, await load_form(tx, account.form_id), operator, before)


async def _reported_before(tx: Tx, account: Account, external_id: str | None) -> Row | None:
    """The call this one repeats (same external_id in the account), if any."""
    if not external_id:
        return None
    # (a PBX reporting one call twice at once still makes one call: see INSERT_CALL)
    return await tx.one(CALL_BY_EXTERNAL_ID, account_ref=account.id, external_id=external_id)
