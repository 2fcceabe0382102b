"""SQLAlchemy Core statements, compiled once per dialect and run on the raw driver.

The request path does not go through SQLAlchemy's execution layer (it costs 2-5x here, see
performance.md); statements are still written with the one table metadata, so they stay
portable and checked. Values that the two drivers store differently (datetimes, booleans, JSON
on SQLite; JSON on asyncpg) are converted here and nowhere else.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg
from sqlalchemy.dialects.sqlite import pysqlite
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

Row = dict[str, Any]
Convert = Callable[[Any], Any]
T = TypeVar("T")


def _sqlite_dialect() -> Dialect:
    dialect = pysqlite.dialect()
    # SQLite >= 3.35 has RETURNING; the dialect only learns that on connect.
    dialect.insert_returning = dialect.update_returning = dialect.delete_returning = True
    return dialect


DIALECTS: dict[str, Dialect] = {
    "sqlite": _sqlite_dialect(),
    "postgresql": pg_asyncpg.dialect(),  # type: ignore[no-untyped-call]
}


def _parse_datetime(value: Any) -> Any:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _to_json(value: Any) -> Any:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _from_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _param_converter(type_: sa.types.TypeEngine[Any]) -> Convert | None:
    # (datetimes reach SQLite through the adapter storage.sqlite registers, in C)
    return _to_json if isinstance(type_, sa.JSON) else None


def _result_converter(dialect: str, type_: sa.types.TypeEngine[Any]) -> Convert | None:
    if isinstance(type_, sa.JSON):
        return _from_json
    if dialect == "sqlite" and isinstance(type_, sa.DateTime):
        return _parse_datetime
    if dialect == "sqlite" and isinstance(type_, sa.Boolean):
        return lambda v: None if v is None else bool(v)
    return None


@dataclass(frozen=True)
class Compiled:
    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]
    param_converters: Mapping[str, Convert]
    columns: tuple[str, ...]
    result_converters: tuple[tuple[str, Convert], ...]
    #: SQLite: the statement inserts one row and returns only its integer primary key, which
    #: `lastrowid` gives without RETURNING (SQLite buffers a RETURNING row: ~1.5 us a row);
    #: `sql_without_returning` is the statement without its RETURNING clause
    rowid_column: str | None = None
    sql_without_returning: str = ""

    def args(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        # the hot path of every statement: plain lookups when nothing needs converting
        if self.defaults:
            params = {**self.defaults, **params}
        if not self.param_converters:
            return tuple([params[name] for name in self.names])
        converters = self.param_converters
        return tuple(
            [
                converters[name](params[name]) if name in converters else params[name]
                for name in self.names
            ]
        )

    def row(self, values: Any) -> Row:
        row = dict(zip(self.columns, values, strict=True))
        for key, convert in self.result_converters:
            row[key] = convert(row[key])
        return row


def _writes(statement: sa.ClauseElement) -> bool:
    """Whether a statement changes rows or takes row locks (so needs the unit's transaction)."""
    if isinstance(statement, UpdateBase):
        return True
    if isinstance(statement, sa.Select):
        return statement._for_update_arg is not None
    text = getattr(getattr(statement, "element", statement), "text", None)
    if isinstance(text, str):  # sa.text(...), with or without .columns()
        words = text.split(None, 1)
        return not words or words[0].upper() != "SELECT" or "FOR UPDATE" in text.upper()
    return not isinstance(statement, sa.CompoundSelect)


class Query:
    """A statement with named bind parameters, compiled lazily for each dialect."""

    def __init__(self, statement: sa.ClauseElement) -> None:
        self.statement = statement
        self.writes = _writes(statement)
        self._compiled: dict[str, Compiled] = {}

    def compiled(self, dialect: str) -> Compiled:
        found = self._compiled.get(dialect)
        if found is None:
            found = self._compiled[dialect] = self._compile(dialect)
        return found

    def _compile(self, dialect: str) -> Compiled:
        compiler = self.statement.compile(dialect=DIALECTS[dialect])
        assert isinstance(compiler, SQLCompiler)
        names = tuple(compiler.positiontup or ())
        binds = compiler.binds
        param_converters = {
            name: conv for name in names if (conv := _param_converter(binds[name].type)) is not None
        }
        result_columns = compiler._result_columns
        columns = tuple(column.keyname for column in result_columns)
        result_converters = tuple(
            (column.keyname, conv)
            for column in result_columns
            if (conv := _result_converter(dialect, column.type)) is not None
        )
        sql = str(compiler)
        rowid_column = _rowid_returned(self.statement) if dialect == "sqlite" else None
        tail = f" RETURNING {rowid_column}"
        if rowid_column is not None and not sql.endswith(tail):
            rowid_column = None  # (a quoted name, say: keep RETURNING)
        return Compiled(
            sql=sql,
            names=names,
            # literals (LIMIT 1, values=True) have defaults; named parameters must be passed
            defaults={name: binds[name].value for name in names if not binds[name].required},
            param_converters=param_converters,
            columns=columns,
            result_converters=result_converters,
            rowid_column=rowid_column,
            sql_without_returning=sql[: -len(tail)] if rowid_column else "",
        )


def _rowid_returned(statement: sa.ClauseElement) -> str | None:
    """The name of the integer primary key a one-row INSERT returns, if that is all it
    returns (no ON CONFLICT: an upsert's update sets no `lastrowid`)."""
    if not isinstance(statement, sa.Insert) or statement._post_values_clause is not None:
        return None
    if statement._multi_values or statement.select is not None:
        return None
    returning = statement._returning
    table = statement.table
    if len(returning) != 1 or not isinstance(table, sa.Table):
        return None
    primary_key = list(table.primary_key.columns)
    column = returning[0]
    if not isinstance(column, sa.Column) or primary_key != [column]:
        return None
    return str(column.name) if isinstance(column.type, sa.Integer) else None


class Deferred:
    """A write that the unit of work does not wait for (see `Tx.defer`).

    Another deferred write may take it as a parameter: it stands for the first column this
    one returns (an inserted row's id). What it returned is readable after `Tx.flush`.
    """

    __slots__ = ("_row", "claim", "confirms", "done", "params", "query")

    def __init__(
        self, query: Query, params: dict[str, Any], claim: bool, *, confirms: bool = False
    ) -> None:
        self.query = query
        self.params = params
        self.claim = claim
        #: a read the writes after it depend on (`Tx.confirm`): finding no row is a lost race
        self.confirms = confirms
        self._row: Row | None = None
        self.done = False

    def resolve(self, row: Row | None) -> None:
        self._row, self.done = row, True

    @property
    def row(self) -> Row | None:
        """The row it returned; None if it returned none (an UPDATE that matched nothing)."""
        if not self.done:
            raise RuntimeError("a deferred write is read before Tx.flush")
        return self._row

    @property
    def value(self) -> Any:
        """The first column it returned."""
        row = self.row
        assert row is not None, "the deferred write returned no row"
        return next(iter(row.values()))


def constant(value: str) -> sa.ColumnElement[str]:
    """One of our own constants (a status) written into the statement, not bound: a partial
    index is used only by a query that spells its WHERE the same way (SQLite), and a plan made
    once for an unknown value (PostgreSQL, storage/postgres.py) may scan the whole table."""
    assert "'" not in value
    return sa.literal_column(f"'{value}'")


def id_of(written: int | Deferred) -> int:
    """An id that may come from a deferred write (after `Tx.flush`)."""
    return int(written.value) if isinstance(written, Deferred) else written


class Tx(Protocol):
    """One unit of work's view of the database: a transaction when writing."""

    dialect: str
    #: a process-local memo shared by every unit of work on this database, for rows that
    #: never change once written (forms); it lives as long as the Database object
    memo: dict[Any, Any]
    #: the unit's time: the rows it writes carry one time, so that a task made with its first
    #: comment is not touched again by it (trigger comments_touch_task, migration 0009)
    now: datetime

    async def one(self, query: Query, /, **params: Any) -> Row | None: ...

    async def all(self, query: Query, /, **params: Any) -> list[Row]: ...

    async def all_alone(self, query: Query, /, **params: Any) -> list[Row]:
        """`all` for a write that is the unit's only statement (it reads and writes nothing
        before or after it): on PostgreSQL it runs without BEGIN and COMMIT, atomic alone,
        in one round trip instead of three."""
        ...

    async def run(self, query: Query, /, **params: Any) -> int:
        """Execute and return the number of rows changed."""
        ...

    async def run_many(self, query: Query, rows: Sequence[Mapping[str, Any]], /) -> None:
        """Execute once per row of parameters, in one round trip where the driver can."""
        ...

    def defer(
        self, query: Query, /, *, claim: bool = False, confirms: bool = False, **params: Any
    ) -> Deferred:
        """A write whose result the unit does not need before its end.

        SQLite runs it at once. PostgreSQL keeps it until the unit's next statement or
        `flush`, then sends every kept write as one statement (WITH … AS (INSERT …) …): one
        round trip instead of one each, and none for BEGIN/COMMIT when they are the unit's
        only writes. Kept writes run in one statement, so they must not touch the same rows.
        `claim`: the write takes a unique key; finding it taken means a concurrent writer
        won, and the unit runs again (LostRace).
        `confirms`: an UPDATE … RETURNING whose WHERE restates what the unit read; matching
        no row means a concurrent writer changed it first, and the unit runs again (as with
        `confirm`, the whole statement fails).
        """
        ...

    def confirm(self, query: Query, value: T, /, **params: Any) -> T | Deferred:
        """`value` as the unit read it, for its deferred writes, on condition that `query`
        (which returns `value` as its first column) still finds it when they run.

        On PostgreSQL a unit reads before it writes, outside a transaction (or in READ
        COMMITTED), so what it read may have changed before its writes ran: a customer's
        message routed to an open task that an agent closed meanwhile. The check is deferred
        like a write and goes out in the writes' statement, which reads and writes at one
        moment (its snapshot): if it finds nothing, the statement fails whole (pg_batch) and
        the unit runs again (LostRace), to decide anew. Send it with them: a statement of
        the unit in between sends it alone, in the unit's transaction, where it refuses what
        changed before it and, only if `query` locks the row, what would change after. On
        SQLite a writing unit reads and writes in one transaction that no one else writes in.
        """
        ...

    async def flush(self, *, last: bool = False) -> None:
        """Run the deferred writes now, so that what they returned can be read.

        `last`: the unit writes nothing after them (reads are fine). On PostgreSQL, when no
        write ran before them either, they then commit on their own as one statement, with
        no BEGIN and COMMIT around it.
        """
        ...

    async def lock(self, *key: object) -> bool:
        """Serialise concurrent writers that touch the same key until this transaction ends.

        True when other writers may have committed between this transaction's start and the
        lock being granted (so what was read before should be read again).
        """
        ...
