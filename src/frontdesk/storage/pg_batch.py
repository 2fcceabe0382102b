"""Several deferred writes as one PostgreSQL statement: each becomes a data-modifying WITH.

    WITH w0 AS (INSERT INTO tasks … RETURNING id),
         w1 AS (INSERT INTO channels (task_id, …) VALUES ((SELECT id FROM w0)::BIGINT, …) …),
         w2 AS (INSERT INTO comments …)
    SELECT (SELECT "id" FROM w0), (SELECT "id" FROM w1), …

A write that takes an earlier one as a parameter gets a subquery on that one's RETURNING in
place of the parameter. A check (`Tx.confirm`, a SELECT) that finds nothing fails the whole
statement: the final SELECT divides by its row count (`1 / count(*)`), and so does every
write that takes its value, before that write could put the NULL in a NOT NULL column (so
a NOT NULL violation is always a bug, never a race). Every data-modifying WITH runs exactly
once whether the final SELECT reads it or not; foreign keys are checked at the end of the
statement, so a row may refer to one inserted beside it. The statement is atomic on its
own, which is what lets a unit whose only writes are deferred skip BEGIN and COMMIT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from frontdesk.storage.sql import Compiled, Deferred, Row

#: asyncpg's positional parameters in SQLAlchemy's output ($1::BIGINT): no statement of ours
#: has a literal with a dollar sign in it
_PLACEHOLDER = re.compile(r"\$(\d+)")

#: per shape (which statements, which parameter is which earlier write, which are checks):
#: its SQL
_SHAPES: dict[tuple[Any, ...], str] = {}


@dataclass(frozen=True)
class Batch:
    sql: str
    args: list[Any]
    #: each write's compiled form, to read its slice of the answer row
    compiled: list[Compiled]
    #: the statement fails whole when a check in it finds nothing, so it may commit on its
    #: own; a check sent alone is only read, and the unit must be able to roll back
    atomic_alone: bool = True


#: per write of a batch: which of its parameters are earlier writes, (position, write index)
Refs = tuple[tuple[int, int], ...]


def _values(steps: list[Deferred], compiled: list[Compiled]) -> tuple[list[Any], list[Refs]]:
    """The batch's parameter values in order, and per write the parameters that stand for an
    earlier write of the batch (they become subqueries, not parameters).

    One pass, with class checks rather than isinstance: this runs for every parameter of
    every write (45 for a new call), and three passes with isinstance cost a new call 20 us.
    """
    args: list[Any] = []
    refs: list[Refs] = []
    position: dict[int, int] | None = None
    for step, form in zip(steps, compiled, strict=True):
        mine: Refs = ()
        for n, value in enumerate(form.args(step.params)):
            if value.__class__ is not Deferred:
                args.append(value)
            elif value.done:
                args.append(value.value)
            else:
                if position is None:
                    position = {id(step): i for i, step in enumerate(steps)}
                earlier = position[id(value)]
                assert compiled[earlier].columns, "refers to a write returning nothing"
                mine += ((n, earlier),)
        refs.append(mine)
    return args, refs


def _renumbered(sql: str, texts: list[str]) -> str:
    """`sql` with its parameter $n replaced by texts[n - 1]."""
    return _PLACEHOLDER.sub(lambda m: texts[int(m[1]) - 1], sql)


def _sql(compiled: list[Compiled], refs: list[Refs], checks: list[int]) -> str:
    withs, selects = [], []
    count = 0
    for i, (form, mine) in enumerate(zip(compiled, refs, strict=True)):
        earlier = dict(mine)
        texts = []
        for n in range(len(form.names)):
            if n in earlier and earlier[n] in checks:
                # a check's value, or division by zero when it found nothing: the statement
                # fails there, before a NOT NULL column could take the NULL (COALESCE
                # evaluates its second argument only when the first is NULL)
                k, column = earlier[n], compiled[earlier[n]].columns[0]
                texts.append(
                    f'COALESCE((SELECT "{column}" FROM w{k}), (SELECT 1 / count(*) * 0 FROM w{k}))'
                )
            elif n in earlier:
                texts.append(f'(SELECT "{compiled[earlier[n]].columns[0]}" FROM w{earlier[n]})')
            else:
                count += 1
                texts.append(f"${count}")
        withs.append(f"w{i} AS ({_renumbered(form.sql, texts)})")
        selects += [f'(SELECT "{column}" FROM w{i})' for column in form.columns]
    # after every write's columns (`resolve` reads those only): division by zero when empty
    selects += [f"(SELECT 1 / count(*) FROM w{i})" for i in checks]
    return f"WITH {', '.join(withs)} SELECT {', '.join(selects) or '1'}"


def batch(steps: list[Deferred]) -> Batch:
    compiled = [step.query.compiled("postgresql") for step in steps]
    args, refs = _values(steps, compiled)
    if len(steps) == 1:  # as it is: a statement with a WITH of its own cannot be nested
        return Batch(compiled[0].sql, args, compiled, not steps[0].confirms)
    checks = [i for i, step in enumerate(steps) if step.confirms]
    shape = (*map(id, compiled), *refs, *checks)
    sql = _SHAPES.get(shape)
    if sql is None:
        sql = _SHAPES[shape] = _sql(compiled, refs, checks)
    return Batch(sql, args, compiled)


def resolve(found: Batch, steps: list[Deferred], values: Any) -> None:
    """Give each write its row of the answer (None where it returned none)."""
    if values is None:  # a lone write that returns nothing
        values = [None] * sum(len(form.columns) for form in found.compiled)
    at = 0
    for step, form in zip(steps, found.compiled, strict=True):
        width = len(form.columns)
        row: Row | None = None
        if width == 1:  # (nearly every write: an insert returning its id)
            if values[at] is not None:
                row = form.row((values[at],))
        elif width:
            mine = values[at : at + width]
            if any(v is not None for v in mine):
                row = form.row(mine)
        at += width
        step.resolve(row)
