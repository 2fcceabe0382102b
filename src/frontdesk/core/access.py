"""Who may see what through API v4 (and later the agent UI).

Every user is an agent. A form that lists no members (`form_members`) is open to every agent;
a form that lists members is open to them, and each of its tasks also to the people taking
part in it, as in Pyrus: its author, its responsible person, and whoever has commented on it
in Frontdesk (so an agent who hands a task on with `reassign_to` still sees it; a chat
system's echo naming an agent does not count). A task without a form (a simple task) is
open to every agent.
Refusals are Pyrus' `access_denied_form` / `access_denied_task` (403).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlalchemy import bindparam as p

from frontdesk.core.comments import INTERNAL
from frontdesk.errors import Forbidden
from frontdesk.storage.sql import Query, Tx, constant
from frontdesk.storage.tables import comments, form_members, forms


def form_open_to(form_id: ColumnElement[Any], user_id: ColumnElement[Any]) -> ColumnElement[bool]:
    """SQL: the form lists no members, or lists the user."""
    return sa.or_(
        ~sa.exists().where(form_members.c.form_id == form_id),
        sa.exists().where(form_members.c.form_id == form_id, form_members.c.user_id == user_id),
    )


#: forms the user may see: those without members, and those listing the user
VISIBLE_FORMS = Query(
    sa.select(forms.c.id).where(form_open_to(forms.c.id, p("user_id"))).order_by(forms.c.id)
)
FORM_OPEN_TO = Query(
    sa.select(
        sa.exists().where(form_members.c.form_id == p("form_id")).label("restricted"),
        sa.exists()
        .where(form_members.c.form_id == p("form_id"), form_members.c.user_id == p("user_id"))
        .label("member"),
    )
)
#: a comment the user made in Frontdesk: a note, or an answer they sent (an echo of a chat
#: system's message names its author by an e-mail the chat system chooses: it grants nothing)
HAS_COMMENTED = Query(
    sa.select(
        sa.exists()
        .where(
            comments.c.task_id == p("task_id"),
            comments.c.author_id == p("user_id"),
            sa.or_(
                comments.c.direction == constant(INTERNAL),
                comments.c.send_to_external_channel.is_(True),
            ),
        )
        .label("commented")
    )
)
ADD_MEMBER = Query(sa.insert(form_members).values(form_id=p("form_id"), user_id=p("user_id")))


async def visible_form_ids(tx: Tx, user_id: int) -> list[int]:
    return [row["id"] for row in await tx.all(VISIBLE_FORMS, user_id=user_id)]


async def may_see_form(tx: Tx, user_id: int, form_id: int) -> bool:
    row = await tx.one(FORM_OPEN_TO, form_id=form_id, user_id=user_id)
    assert row is not None
    return not row["restricted"] or bool(row["member"])


async def check_form(tx: Tx, user_id: int, form_id: int) -> None:
    if not await may_see_form(tx, user_id, form_id):
        raise form_denied(form_id)


def form_denied(form_id: int) -> Forbidden:
    return Forbidden("access_denied_form", f"You have no access to form {form_id}")


async def may_see_task(
    tx: Tx,
    user_id: int,
    task_id: int,
    *,
    form_id: int | None,
    author_id: int | None,
    responsible_id: int | None,
) -> bool:
    if form_id is None or user_id in (author_id, responsible_id):
        return True
    if await may_see_form(tx, user_id, form_id):
        return True
    row = await tx.one(HAS_COMMENTED, task_id=task_id, user_id=user_id)
    return row is not None and bool(row["commented"])


async def check_task(
    tx: Tx,
    user_id: int,
    task_id: int,
    *,
    form_id: int | None,
    author_id: int | None,
    responsible_id: int | None,
) -> None:
    visible = await may_see_task(
        tx, user_id, task_id, form_id=form_id, author_id=author_id, responsible_id=responsible_id
    )
    if not visible:
        raise Forbidden("access_denied_task", f"You have no access to task {task_id}")


async def add_form_members(tx: Tx, form_id: int, user_ids: Sequence[int]) -> None:
    """Restrict a form to these users (and add more to a restricted form)."""
    await tx.run_many(ADD_MEMBER, [{"form_id": form_id, "user_id": uid} for uid in user_ids])
