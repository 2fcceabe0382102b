"""Several deferred writes as one PostgreSQL statement: each becomes a data-modifying WITH.

    WITH w0 AS (INSERT INTO tasks … RETURNING id),
         w1 AS (INSERT INTO channels (task_id, …) VALUES ((SELECT id FROM w0)::BIGINT, …) …),
         w2 AS (INSERT INTO comments …)
    SELECT (SELECT "id" FROM w0), (SELECT "id" FROM w1), …

A write that takes an earlier one as a parameter gets a subquery on that one's RETURNING in
place of the parameter. Every WITH runs exactly once whether the final SELECT reads it or not;
foreign keys are checked at the end of the statement, so a row may refer to one inserted
beside it. The statement is atomic on its own, which is what lets a unit whose only writes
are deferred skip BEGIN and COMMIT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from frontdesk.storage.sql import Compiled, Deferred, Row

#: asyncpg's positional parameters in SQLAlchemy's output ($1::BIGINT): no statement of ours
#: has a literal with a dollar sign in it
_PLACEHOLDER = re.compile(r"\$(\d+)")

#: per shape (which statements, which parameter is which earlier write): its SQL
_SHAPES: dict[tuple[Any, ...], str] = {}


@dataclass(frozen=True)
class Batch:
    sql: str
    args: list[Any]
    #: each write's compiled form, to read its slice of the answer row
    compiled: list[Compiled]


def _sources(steps: list[Deferred], compiled: list[Compiled]) -> list[list[Any]]:
    """Per write, its positional values; an earlier write of the batch stands as its index."""
    position = {id(step): i for i, step in enumerate(steps)}
    sources = []
    for step, form in zip(steps, compiled, strict=True):
        values = list(form.args(step.params))
        for n, value in enumerate(values):
            if isinstance(value, Deferred):
                if value.done:
                    values[n] = value.value
                else:
                    assert compiled[position[id(value)]].columns, (
                        "refers to a write returning nothing"
                    )
                    values[n] = _Ref(position[id(value)])
        sources.append(values)
    return sources


@dataclass(frozen=True)
class _Ref:
    step: int


def _renumbered(sql: str, texts: list[str]) -> str:
    """`sql` with its parameter $n replaced by texts[n - 1]."""
    return _PLACEHOLDER.sub(lambda m: texts[int(m[1]) - 1], sql)


def _sql(compiled: list[Compiled], sources: list[list[Any]]) -> str:
    withs, selects = [], []
    count = 0
    for i, (form, values) in enumerate(zip(compiled, sources, strict=True)):
        texts = []
        for value in values:
            if isinstance(value, _Ref):
                texts.append(f'(SELECT "{compiled[value.step].columns[0]}" FROM w{value.step})')
            else:
                count += 1
                texts.append(f"${count}")
        withs.append(f"w{i} AS ({_renumbered(form.sql, texts)})")
        selects += [f'(SELECT "{column}" FROM w{i})' for column in form.columns]
    return f"WITH {', '.join(withs)} SELECT {', '.join(selects) or '1'}"


def batch(steps: list[Deferred]) -> Batch:
    compiled = [step.query.compiled("postgresql") for step in steps]
    sources = _sources(steps, compiled)
    if len(steps) == 1:  # as it is: a statement with a WITH of its own cannot be nested
        return Batch(compiled[0].sql, sources[0], compiled)
    shape = tuple(
        (id(form), tuple((n, v.step) for n, v in enumerate(values) if isinstance(v, _Ref)))
        for form, values in zip(compiled, sources, strict=True)
    )
    sql = _SHAPES.get(shape)
    if sql is None:
        sql = _SHAPES[shape] = _sql(compiled, sources)
    args = [v for values in sources for v in values if not isinstance(v, _Ref)]
    return Batch(sql, args, compiled)


def resolve(found: Batch, steps: list[Deferred], values: Any) -> None:
    """Give each write its row of the answer (None where it returned none)."""
    if values is None:  # a lone write that returns nothing
        values = [None] * sum(len(form.columns) for form in found.compiled)
    at = 0
    for step, form in zip(steps, found.compiled, strict=True):
        width = len(form.columns)
        mine = list(values[at : at + width])
        at += width
        row: Row | None = form.row(mine) if width and any(v is not None for v in mine) else None
        step.resolve(row)
