"""A form's register (API v4): its tasks, filtered by field values, task ids and dates.

Filters compare values by their field's type: numbers as numbers, dates and times in their
canonical ISO text (which sorts as time does), text, phones and e-mails without regard to
case, choices by choice id (a choice's position, from 1) or name. The form's tasks are read
once and filtered here: the values are text in the database, and comparing them as numbers
or dates in SQL would need per-engine casts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core.auth import UserPrincipal, ensure_current_user
from frontdesk.core.field_values import normalize
from frontdesk.core.forms import Field, Form
from frontdesk.core.numbers import small_number
from frontdesk.core.task_views import TASK_COLUMNS, TaskList, TaskRow, people, readable_form
from frontdesk.errors import FrontdeskError
from frontdesk.storage.sql import Query, Tx
from frontdesk.storage.tables import task_values, tasks

#: operators a condition may use; `eq` holds when the value is any of the condition's values
OPERATORS = ("eq", "gt", "lt", "range", "empty", "exists")
ORDERED_TYPES = ("number", "money", "date", "time", "datetime")
CASELESS_TYPES = ("text", "phone", "email")


@dataclass(frozen=True)
class Condition:
    """One filter: `op` and its operands (gt/lt one, range two: above and below)."""

    op: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegisterQuery:
    include_archived: bool = False
    item_count: int | None = None
    #: only these fields in each task (in this order); None: every field with a value
    field_ids: tuple[int, ...] | None = None
    task_ids: tuple[int, ...] | None = None
    task_id: Condition | None = None
    fields: dict[int, Condition] = field(default_factory=dict)
    #: bounds on the task's dates, all exclusive: (after, before)
    created: tuple[datetime | None, datetime | None] = (None, None)
    modified: tuple[datetime | None, datetime | None] = (None, None)
    closed: tuple[datetime | None, datetime | None] = (None, None)


Key = Callable[[str], Any]


@dataclass(frozen=True)
class _Prepared:
    """A condition with its operands turned into comparable keys, and how to key a value."""

    op: str
    operands: tuple[Any, ...]
    key: Key

    def holds(self, value: str | None) -> bool:
        if self.op == "empty":
            return value is None
        if value is None:
            return False
        if self.op == "exists":
            return True
        key = self.key(value)
        if self.op == "eq":
            return key in self.operands
        if self.op == "gt":
            return bool(key > self.operands[0])
        if self.op == "lt":
            return bool(key < self.operands[0])
        return bool(self.operands[0] < key < self.operands[1])


_open = tasks.c.closed_at.is_(None)
FORM_TASKS = Query(
    sa.select(*TASK_COLUMNS).where(tasks.c.form_id == p("form_id")).order_by(tasks.c.id)
)
OPEN_FORM_TASKS = Query(
    sa.select(*TASK_COLUMNS).where(tasks.c.form_id == p("form_id"), _open).order_by(tasks.c.id)
)
_VALUES = sa.select(task_values.c.task_id, task_values.c.field_id, task_values.c.value).join(
    tasks, tasks.c.id == task_values.c.task_id
)
FORM_VALUES = Query(_VALUES.where(tasks.c.form_id == p("form_id")))
OPEN_FORM_VALUES = Query(_VALUES.where(tasks.c.form_id == p("form_id"), _open))


def _bad_value(message: str) -> FrontdeskError:
    return FrontdeskError("invalid_value_format", message)


def _caseless(value: str) -> str:
    return value.casefold()


def _choice_name(target: Field, raw: str) -> str:
    """A choice by id (its position, from 1) as Pyrus filters send it, or by name."""
    if (position := small_number(raw)) is not None:
        if 1 <= position <= len(target.choices):
            return target.choices[position - 1]
        raise _bad_value(f"Field {target.id} has no choice {raw.strip()}")
    name = normalize("choice", raw, target.choices)
    if name is None:
        raise _bad_value(f"Field {target.id} has no choice {raw!r}")
    return name


def _value_key(target: Field) -> Key:
    if target.type in ("number", "money"):
        return Decimal
    return _caseless if target.type in CASELESS_TYPES else str


def _operand(target: Field, raw: str) -> Any:
    if target.type == "choice":
        return _choice_name(target, raw)
    if target.type in CASELESS_TYPES:
        return _caseless(raw.strip())
    canonical = normalize(target.type, raw)
    if canonical is None:
        raise _bad_value(f"Field {target.id} ({target.type}) cannot hold {raw!r}")
    return _value_key(target)(canonical)


def _prepare_field(target: Field, condition: Condition) -> _Prepared:
    if condition.op in ("gt", "lt", "range") and target.type not in ORDERED_TYPES:
        raise FrontdeskError(
            "filter_type_is_not_supported",
            f"Field {target.id} ({target.type}) cannot be filtered by {condition.op}",
        )
    operands = tuple(_operand(target, raw) for raw in condition.values)
    return _Prepared(condition.op, operands, _value_key(target))


def _task_id(raw: str) -> int:
    if (task_id := small_number(raw)) is None:
        raise _bad_value(f"Not a task id: {raw[:30]!r}")
    return task_id


def _prepare_task_id(condition: Condition) -> _Prepared:
    if condition.op in ("empty", "exists"):
        raise FrontdeskError("filter_type_is_not_supported", "A task id is never empty")
    return _Prepared(condition.op, tuple(_task_id(raw) for raw in condition.values), int)


def _prepare_fields(form: Form, conditions: dict[int, Condition]) -> dict[int, _Prepared]:
    prepared = {}
    for field_id, condition in conditions.items():
        target = form.field_with_id(field_id)
        if target is None:
            raise FrontdeskError("invalid_field_id", f"Form {form.id} has no field {field_id}")
        prepared[field_id] = _prepare_field(target, condition)
    return prepared


def _within(moment: datetime | None, bounds: tuple[datetime | None, datetime | None]) -> bool:
    after, before = bounds
    if after is None and before is None:
        return True
    if moment is None:
        return False
    return (after is None or moment > after) and (before is None or moment < before)


def _dates_match(task: TaskRow, query: RegisterQuery) -> bool:
    return (
        _within(task.created_at, query.created)
        and _within(task.updated_at, query.modified)
        and _within(task.closed_at, query.closed)
    )


def _selected(
    task: TaskRow,
    values: dict[int, str],
    query: RegisterQuery,
    conditions: dict[int, _Prepared],
    task_id: _Prepared | None,
) -> bool:
    if query.task_ids is not None and task.id not in query.task_ids:
        return False
    if task_id is not None and not task_id.holds(str(task.id)):
        return False
    if not _dates_match(task, query):
        return False
    return all(check.holds(values.get(fid)) for fid, check in conditions.items())


def _shown(form: Form, values: dict[int, str], field_ids: tuple[int, ...] | None) -> dict[int, str]:
    """The values to show, in the order asked for (by default, the form's order)."""
    order = field_ids if field_ids is not None else [f.id for f in form.fields.values()]
    return {fid: values[fid] for fid in order if fid in values}


def _includes_closed(query: RegisterQuery) -> bool:
    """Closed tasks are read when asked for, or when a bound on the closing date says so."""
    return query.include_archived or query.closed != (None, None)


async def _values_by_task(tx: Tx, form_id: int, closed_too: bool) -> dict[int, dict[int, str]]:
    by_task: dict[int, dict[int, str]] = {}
    statement = FORM_VALUES if closed_too else OPEN_FORM_VALUES
    for row in await tx.all(statement, form_id=form_id):
        by_task.setdefault(row["task_id"], {})[row["field_id"]] = row["value"]
    return by_task


async def _form_tasks(tx: Tx, form_id: int, closed_too: bool) -> list[TaskRow]:
    rows = await tx.all(FORM_TASKS if closed_too else OPEN_FORM_TASKS, form_id=form_id)
    return [TaskRow(**row) for row in rows]


def _people_of(found: Iterable[TaskRow]) -> list[int | None]:
    return [user_id for task in found for user_id in (task.author_id, task.responsible_id)]


async def register(
    tx: Tx, principal: UserPrincipal, form_id: int, query: RegisterQuery
) -> TaskList:
    """The form's tasks that match the query, by id, at most `item_count` of them."""
    await ensure_current_user(tx, principal)
    form = await readable_form(tx, principal.user_id, form_id)
    conditions = _prepare_fields(form, query.fields)
    task_id = None if query.task_id is None else _prepare_task_id(query.task_id)
    closed_too = _includes_closed(query)
    values = await _values_by_task(tx, form_id, closed_too)
    found = [
        task
        for task in await _form_tasks(tx, form_id, closed_too)
        if _selected(task, values.get(task.id, {}), query, conditions, task_id)
    ]
    found = found[: query.item_count]
    shown = {task.id: _shown(form, values.get(task.id, {}), query.field_ids) for task in found}
    return TaskList(found, await people(tx, _people_of(found)), shown, form)
