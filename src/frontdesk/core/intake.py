"""What every inbound message or call checks first, shared by messages and calls.

Calls come in through two doors: an extension (Extensions API v1, `/v1/call`) and a user
(API v4, `/v4/integrations/call`: a PBX signed in as an agent). The call logic is one; what
differs is only which accounts the caller may name, and which uploads it may attach:
    extension  its own accounts, and the files it uploaded
    user       an account of any extension, by account_id (`extensions.account_named_for`),
               whose form the user may see (core.access), and the files the user uploaded
               or the account's extension did
Both have their token's revocation checked inside the unit of work that does the work
(`auth.ensure_token_current` where no account is named).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core import access, files
from frontdesk.core.auth import ExtensionPrincipal, UserPrincipal
from frontdesk.core.extensions import Account, account_by_ref, account_named_for, active_account
from frontdesk.core.forms import Form, load_form
from frontdesk.core.tasks import TaskRef
from frontdesk.core.users import Person
from frontdesk.errors import FrontdeskError, Problem
from frontdesk.storage.sql import Query, Tx
from frontdesk.storage.tables import channels

MAX_MESSAGE_TEXT = 10_000
MAX_ATTACHMENTS = 100

#: who sends a message or call in: an extension (API v1) or a user (API v4)
Principal = ExtensionPrincipal | UserPrincipal


@dataclass
class Outcome:
    """Where a message or call landed, and what was ignored on the way."""

    task_id: int
    is_new_task: bool
    responsible: Person | None = None
    problems: list[Problem] = field(default_factory=list)


def check_text_length(
    text: str | None,
    html: str | None = None,
    name: str = "message_text",
    html_name: str | None = None,
) -> None:
    """The text and its HTML form each within the limit; the error names the one over it
    (the Extensions API calls the HTML of `message_text` `message_text_html`)."""
    for value, named in ((text, name), (html, html_name or f"{name}_html")):
        if value is not None and len(value) > MAX_MESSAGE_TEXT:
            raise FrontdeskError(
                "too_large_message_text",
                f"{named} has {len(value)} characters; the limit is {MAX_MESSAGE_TEXT}. "
                "Message not processed",
            )


async def account_of(tx: Tx, principal: Principal, account_id: str) -> Account:
    """The account the caller names, or the error Pyrus answers when there is none.

    Checks the token's revocation too, in the account's own query (the extension's secret
    generation, the user's key generation; a revoked token is told so first).
    """
    if isinstance(principal, ExtensionPrincipal):
        return await active_account(tx, principal, account_id)
    account = await account_named_for(tx, principal, account_id)
    await check_user_may_use(tx, principal, account)
    return account


async def check_user_may_use(tx: Tx, principal: Principal, account: Account) -> None:
    """A user reaches an account's calls only if they may see its form's tasks (API v4
    access rules: access_denied_form); an extension reaches all of its own accounts."""
    if isinstance(principal, UserPrincipal):
        await access.check_form(tx, principal.user_id, account.form_id)


def extension_scope(principal: Principal) -> int | None:
    """The extension whose accounts the caller may reach; None: every extension's."""
    return principal.extension_id if isinstance(principal, ExtensionPrincipal) else None


def uploader_id(principal: Principal) -> int | None:
    """The user whose own uploads the caller may attach (None for an extension)."""
    return principal.user_id if isinstance(principal, UserPrincipal) else None


async def account_and_form(tx: Tx, principal: Principal, account_id: str) -> tuple[Account, Form]:
    account = await account_of(tx, principal, account_id)
    return account, await load_form(tx, account.form_id)


async def resolve_attachments(
    tx: Tx, extension_id: int, guids: Sequence[str], has_text: bool, problems: list[Problem]
) -> list[int]:
    """File ids for the guids; ignored guids become problems.

    Over 100 attachments: the first 100 are kept. Unknown guids are skipped while the message
    still has something to say; a message of nothing but unknown files is refused.
    """
    if len(guids) > MAX_ATTACHMENTS:
        ignored = guids[MAX_ATTACHMENTS:]
        problems.append(
            Problem(
                "too_many_attachments",
                f"More than {MAX_ATTACHMENTS} attachments; ignored: " + ", ".join(ignored),
            )
        )
        guids = guids[:MAX_ATTACHMENTS]
    resolved = await files.resolve_guids(tx, extension_id, guids)
    if resolved.unknown:
        problem = Problem(
            "unrecognized_attachment_id", "Unknown attachment guids: " + ", ".join(resolved.unknown)
        )
        if not has_text and not resolved.ids:
            raise FrontdeskError(problem.code, problem.message + ". Message not processed")
        problems.append(problem)
    return resolved.ids


#: a chat system's chat of the task (Planfix): such a task is the chat system's
PLANFIX_CHAT_OF_TASK = Query(
    sa.select(channels.c.id)
    .where(channels.c.task_id == p("task_id"), channels.c.planfix_ref.is_not(None))
    .limit(1)
)


async def open_to_extension(tx: Tx, task: TaskRef, principal: ExtensionPrincipal) -> bool:
    """A task of an account's form is the extension's to reach, unless another extension's
    account owns it, or a Planfix chat system's chat (a task made by an agent in the form
    belongs to neither). Without the second rule an extension sharing a form with a chat
    system wrote into its chats' tasks, and its answers went to their customers."""
    if task.account_ref is None:
        return await tx.one(PLANFIX_CHAT_OF_TASK, task_id=task.id) is None
    owner = await account_by_ref(tx, task.account_ref)
    return owner.extension_id == principal.extension_id
