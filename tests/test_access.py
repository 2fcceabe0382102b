"""API v4 access rules: open forms, member-only forms, a task's author and responsible."""

from __future__ import annotations

import pytest

from frontdesk.core import access, forms
from frontdesk.errors import Forbidden

from factories import FIELDS, db_of, make_agent


async def test_open_and_restricted_forms(client):
    db = db_of(client)
    ann = await make_agent(client, email="ann@example.com")
    bob = await make_agent(client, email="bob@example.com", work_phone=None)
    open_form = await db.write(forms.add_form, "Open", FIELDS)
    closed_form = await db.write(forms.add_form, "Closed", FIELDS)
    await db.write(access.add_form_members, closed_form, [ann.user_id])

    assert await db.read(access.visible_form_ids, ann.user_id) == [open_form, closed_form]
    assert await db.read(access.visible_form_ids, bob.user_id) == [open_form]
    assert await db.read(access.may_see_form, bob.user_id, open_form)
    assert not await db.read(access.may_see_form, bob.user_id, closed_form)
    with pytest.raises(Forbidden) as refused:
        await db.read(access.check_form, bob.user_id, closed_form)
    assert (refused.value.code, refused.value.status) == ("access_denied_form", 403)

    async def sees(user_id: int, **task: int | None) -> bool:
        return await db.read(access.may_see_task, user_id, 7, **task)

    restricted = {"form_id": closed_form, "author_id": None, "responsible_id": None}
    assert await sees(ann.user_id, **restricted)
    assert not await sees(bob.user_id, **restricted)
    assert await sees(bob.user_id, **{**restricted, "responsible_id": bob.user_id})
    assert await sees(bob.user_id, **{**restricted, "author_id": bob.user_id})
    assert await sees(bob.user_id, form_id=None, author_id=None, responsible_id=None)
    with pytest.raises(Forbidden) as refused:
        await db.read(access.check_task, bob.user_id, 7, **restricted)
    assert refused.value.code == "access_denied_task"
