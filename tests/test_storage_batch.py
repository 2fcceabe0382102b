"""A unit of work that fails leaves nothing behind, and the units written beside it (on
SQLite, in the same batch transaction) commit all the same, with what they answered."""

from __future__ import annotations

import asyncio
import collections

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core.clock import utcnow
from frontdesk.errors import FrontdeskError
from frontdesk.storage import tables
from frontdesk.storage.sql import Query, Tx

from factories import db_of, rows

forms = tables.forms
INSERT_FORM = Query(
    sa.insert(forms).values(name=p("name"), created_at=utcnow()).returning(forms.c.id)
)
UNITS = 5
FAILING = 2


async def _stored(client) -> dict[str, int]:
    found = await rows(client, sa.select(forms.c.name, forms.c.id).where(forms.c.name.like("n%")))
    return {row["name"]: row["id"] for row in found}


async def _batch(client, fail_after_writing: bool) -> tuple[list[object], collections.Counter]:
    """Five units written at once (one batch on SQLite); the third fails."""
    runs: collections.Counter[str] = collections.Counter()

    async def unit(tx: Tx, name: str, fail: bool) -> int:
        runs[name] += 1
        if fail and not fail_after_writing:
            raise FrontdeskError("invalid_request", "refused before writing")
        row = await tx.one(INSERT_FORM, name=name)
        assert row is not None
        if fail:
            raise ValueError(name)
        return int(row["id"])

    db = db_of(client)
    results = await asyncio.gather(
        *(db.write(unit, f"n{i}", i == FAILING) for i in range(UNITS)), return_exceptions=True
    )
    return results, runs


async def test_a_unit_failing_after_its_writes_leaves_nothing_and_the_others_commit(
    client, database_url
):
    results, runs = await _batch(client, fail_after_writing=True)
    assert isinstance(results[FAILING], ValueError)
    if database_url.startswith("sqlite"):  # the units before it in its batch ran again
        assert runs == {"n0": 2, "n1": 2, "n2": 1, "n3": 1, "n4": 1}
    else:  # a transaction each
        assert set(runs.values()) == {1}
    # every other unit answered the id of the row that is in the database now
    assert await _stored(client) == {f"n{i}": results[i] for i in range(UNITS) if i != FAILING}


async def test_a_unit_refused_before_writing_costs_the_others_nothing(client):
    results, runs = await _batch(client, fail_after_writing=False)
    assert isinstance(results[FAILING], FrontdeskError)
    assert runs == {f"n{i}": 1 for i in range(UNITS)}  # nobody ran again
    assert await _stored(client) == {f"n{i}": results[i] for i in range(UNITS) if i != FAILING}
