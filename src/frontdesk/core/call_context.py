"""What a call report reads before it writes, in one query.

A report needs the account it names (and the caller's token generation), whether a user may
see that account's form, the operator whose work phone is the internal number, and the call it
repeats. Read one by one, that is four round trips on PostgreSQL before any write; a PBX
reports every ring, so they are read in one (the rules of `active_account`,
`account_named_for` and `access.check_form`; the operator is the oldest user whose work
phone has the internal number's digits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import access
from frontdesk.core.auth import ExtensionPrincipal, UserPrincipal
from frontdesk.core.extensions import ACCOUNT_COLUMNS, Account, usable_account, user_account
from frontdesk.core.forms import Form, load_form
from frontdesk.core.users import Person, phone_digits
from frontdesk.storage.sql import Query, Row, Tx
from frontdesk.storage.tables import (
    calls,
    extension_accounts,
    extensions,
    form_members,
    tasks,
    users,
)

_operator = users.alias("operator")
_responsible = users.alias("responsible")
_members = form_members.alias("members")
_OPERATOR_ID = (
    sa.select(sa.func.min(_operator.c.id))
    .where(_operator.c.phone_digits == p("digits"))
    .scalar_subquery()
)
#: the call repeated (by external_id), with what a repeated report needs of its task
#: (whether it is closed, who is responsible); "call_id" is the call's id
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
_OPERATOR_AND_CALL = (
    _operator.c.id.label("operator_id"),
    _operator.c.first_name.label("operator_first_name"),
    _operator.c.last_name.label("operator_last_name"),
    _operator.c.work_phone.label("operator_work_phone"),
    *_CALL,
)


def _with_operator_and_call(accounts: Any) -> Any:
    """`accounts` (a FROM with extension_accounts in it) joined to the operator and the call."""
    return (
        accounts.outerjoin(_operator, _operator.c.id == _OPERATOR_ID)
        # (a PBX reporting one call twice at once still makes one call: see INSERT_CALL)
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


#: an extension's account (as extensions.ACCOUNT reads it), the operator and the call
CALL_CONTEXT_FOR_EXTENSION = Query(
    sa.select(*ACCOUNT_COLUMNS, extensions.c.secret_generation, *_OPERATOR_AND_CALL)
    .select_from(
        _with_operator_and_call(
            extension_accounts.join(
                extensions, extensions.c.id == extension_accounts.c.extension_id
            )
        )
    )
    .where(
        extension_accounts.c.extension_id == p("extension_id"),
        extension_accounts.c.account_id == p("account_id"),
    )
)
#: the user's key generation, the account (as extensions.ACCOUNT_NAMED_FOR_USER reads it)
#: with the user's access to its form, the operator and the call
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
        *_OPERATOR_AND_CALL,
    )
    .select_from(
        _with_operator_and_call(
            users.outerjoin(extension_accounts, extension_accounts.c.account_id == p("account_id"))
        )
    )
    .where(users.c.id == p("user_id"))
    .order_by(extension_accounts.c.id)
    .limit(1)
)


@dataclass(slots=True)  # made per request (docs/decisions.md)
class CallContext:
    account: Account
    form: Form
    operator: Person | None
    #: the call this report repeats (its columns in _CALL, "id" being the call's), if any
    reported_before: Row | None


async def call_context(
    tx: Tx,
    principal: ExtensionPrincipal | UserPrincipal,
    account_id: str,
    external_id: str | None,
    internal_number: str | None,
) -> CallContext:
    found = {
        "account_id": account_id,
        "digits": phone_digits(internal_number),
        "external_id": external_id,
    }
    account: Account
    if isinstance(principal, ExtensionPrincipal):
        row = await tx.one(CALL_CONTEXT_FOR_EXTENSION, extension_id=principal.extension_id, **found)
        account = await usable_account(tx, principal, account_id, row)
    else:
        row = await tx.one(CALL_CONTEXT_FOR_USER, user_id=principal.user_id, **found)
        account = user_account(principal, account_id, row)
        assert row is not None
        if row["restricted"] and not row["member"]:
            raise access.form_denied(account.form_id)
    assert row is not None
    return CallContext(
        account, await load_form(tx, account.form_id), _operator_in(row), _call_in(row)
    )


def _operator_in(row: Row) -> Person | None:
    if row["operator_id"] is None:
        return None
    return Person(
        row["operator_id"],
        row["operator_first_name"],
        row["operator_last_name"],
        row["operator_work_phone"],
    )


def _call_in(row: Row) -> Row | None:
    """The repeated call's columns, "id" being the call's (None: no external_id, or new)."""
    if row["call_id"] is None:
        return None
    return {**{column.name: row[column.name] for column in _CALL[1:]}, "id": row["call_id"]}
