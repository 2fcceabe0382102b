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


class Query:
    """A statement with named bind parameters, compiled lazily for each dialect."""

    def __init__(self, statement: sa.ClauseElement) -> None:
        self.statement = statement
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
        return Compiled(
            sql=str(compiler),
            names=names,
            # literals (LIMIT 1, values=True) have defaults; named parameters must be passed
            defaults={name: binds[name].value for name in names if not binds[name].required},
            param_converters=param_converters,
            columns=columns,
            result_converters=result_converters,
        )


class Tx(Protocol):
    """One unit of work's view of the database: a transaction when writing."""

    dialect: str
    #: a process-local memo shared by every unit of work on this database, for rows that
    #: never change once written (forms); it lives as long as the Database object
    memo: dict[Any, Any]

    async def one(self, query: Query, /, **params: Any) -> Row | None: ...

    async def all(self, query: Query, /, **params: Any) -> list[Row]: ...

    async def run(self, query: Query, /, **params: Any) -> int:
        """Execute and return the number of rows changed."""
        ...

    async def run_many(self, query: Query, rows: Sequence[Mapping[str, Any]], /) -> None:
        """Execute once per row of parameters, in one round trip where the driver can."""
        ...

    async def lock(self, *key: object) -> bool:
        """Serialise concurrent writers that touch the same key until this transaction ends.

        True when other writers may have committed between this transaction's start and the
        lock being granted (so what was read before should be read again).
        """
        ...
