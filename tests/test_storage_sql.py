"""Statements compiled for the raw drivers: where SQLite reads an inserted id without RETURNING."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import bindparam as p
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from frontdesk.core.clock import utcnow
from frontdesk.storage import tables
from frontdesk.storage.sql import Query

forms = tables.forms
task_values = tables.task_values
NEW_FORM = sa.insert(forms).values(name=p("name"), created_at=utcnow())


def test_a_one_row_insert_returning_its_id_reads_lastrowid_on_sqlite():
    compiled = Query(NEW_FORM.returning(forms.c.id)).compiled("sqlite")
    assert compiled.rowid_column == "id"
    assert "RETURNING" in compiled.sql and "RETURNING" not in compiled.sql_without_returning
    assert Query(NEW_FORM.returning(forms.c.id)).compiled("postgresql").rowid_column is None


@pytest.mark.parametrize(
    "statement",
    [
        NEW_FORM.returning(forms.c.id, forms.c.name),  # more than the id
        NEW_FORM.returning(forms.c.name),  # not the id
        sa.insert(forms).values([{"name": "a", "created_at": utcnow()}] * 2).returning(forms.c.id),
        sqlite_insert(forms)
        .values(id=p("id"), name=p("name"), created_at=utcnow())
        .on_conflict_do_update(index_elements=[forms.c.id], set_={"name": p("name")})
        .returning(forms.c.id),  # an upsert's update sets no lastrowid
        sa.insert(task_values)  # a composite key is no rowid
        .values(task_id=p("t"), field_id=p("f"), value=p("v"))
        .returning(task_values.c.task_id),
        sa.update(forms).values(name="x").returning(forms.c.id),
    ],
)
def test_other_statements_keep_returning(statement):
    assert Query(statement).compiled("sqlite").rowid_column is None
