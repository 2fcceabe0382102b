"""What every inbound message or call checks first, shared by messages and calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from frontdesk.core import files
from frontdesk.core.auth import ExtensionPrincipal
from frontdesk.core.extensions import Account, active_account
from frontdesk.core.forms import Form, load_form
from frontdesk.core.users import Person
from frontdesk.errors import FrontdeskError, Problem
from frontdesk.storage.sql import Tx

MAX_MESSAGE_TEXT = 10_000
MAX_ATTACHMENTS = 100


@dataclass
class Outcome:
    """Where a message or call landed, and what was ignored on the way."""

    task_id: int
    is_new_task: bool
    responsible: Person | None = None
    problems: list[Problem] = field(default_factory=list)


def check_text_length(*texts: str | None, name: str = "message_text") -> None:
    for text in texts:
        if text is not None and len(text) > MAX_MESSAGE_TEXT:
            raise FrontdeskError(
                "too_large_message_text",
                f"{name} has {len(text)} characters; the limit is {MAX_MESSAGE_TEXT}. "
                "Message not processed",
            )


async def account_and_form(
    tx: Tx, principal: ExtensionPrincipal, account_id: str
) -> tuple[Account, Form]:
    account = await active_account(tx, principal, account_id)
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
