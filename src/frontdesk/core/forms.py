"""Forms and their fields; how a `mappings` list becomes checked field values."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import bindparam as p

from frontdesk.core.clock import utcnow
from frontdesk.core.field_values import FIELD_TYPES, normalize
from frontdesk.errors import FrontdeskError, NotFound, Problem
from frontdesk.storage.sql import Query, Tx
from frontdesk.storage.tables import form_fields, forms

#: the choice field holding the online-chat message types ("Message type code" in Pyrus)
MESSAGE_TYPE_CODE = "MessageType"


@dataclass(frozen=True)
class FieldSpec:
    code: str
    type: str
    name: str = ""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Field:
    id: int
    code: str
    name: str
    type: str
    choices: tuple[str, ...]


@dataclass(frozen=True)
class Form:
    id: int
    name: str
    fields: dict[str, Field] = field(default_factory=dict)

    @property
    def message_types(self) -> tuple[str, ...]:
        found = self.fields.get(MESSAGE_TYPE_CODE)
        return found.choices if found else ()

    def field_with_id(self, field_id: int) -> Field | None:
        return next((f for f in self.fields.values() if f.id == field_id), None)


INSERT_FORM = Query(
    sa.insert(forms).values(name=p("name"), created_at=p("now")).returning(forms.c.id)
)
INSERT_FIELD = Query(
    sa.insert(form_fields).values(
        form_id=p("form_id"),
        code=p("code"),
        name=p("name"),
        type=p("type"),
        choices=p("choices"),
        position=p("position"),
    )
)
FORM_BY_ID = Query(sa.select(forms.c.id, forms.c.name).where(forms.c.id == p("id")))
FIELDS_OF_FORM = Query(
    sa.select(
        form_fields.c.id,
        form_fields.c.code,
        form_fields.c.name,
        form_fields.c.type,
        form_fields.c.choices,
    )
    .where(form_fields.c.form_id == p("form_id"))
    .order_by(form_fields.c.position)
)


def check_field_specs(specs: Sequence[FieldSpec]) -> None:
    codes = [spec.code for spec in specs]
    duplicates = sorted({code for code in codes if codes.count(code) > 1})
    if duplicates:
        raise FrontdeskError("validation_error", f"Duplicate field codes: {', '.join(duplicates)}")
    for spec in specs:
        if not spec.code:
            raise FrontdeskError("validation_error", "Every field needs a code")
        if spec.type not in FIELD_TYPES:
            raise FrontdeskError(
                "validation_error",
                f"Field {spec.code}: unknown type {spec.type!r}; use one of "
                + ", ".join(FIELD_TYPES),
            )
        if spec.type == "choice" and not spec.choices:
            raise FrontdeskError("validation_error", f"Field {spec.code}: a choice needs options")


async def add_form(tx: Tx, name: str, specs: Sequence[FieldSpec]) -> int:
    check_field_specs(specs)
    row = await tx.one(INSERT_FORM, name=name, now=utcnow())
    assert row is not None
    for position, spec in enumerate(specs):
        await tx.run(
            INSERT_FIELD,
            form_id=row["id"],
            code=spec.code,
            name=spec.name or spec.code,
            type=spec.type,
            choices=list(spec.choices) if spec.choices else None,
            position=position,
        )
    return int(row["id"])


async def load_form(tx: Tx, form_id: int) -> Form:
    """The form with its fields, memoised per database: a form never changes once created.

    (When forms become editable, key the memo by a version column bumped on every change.)
    """
    key = ("form", form_id)
    form: Form | None = tx.memo.get(key)
    if form is None:
        form = await _read_form(tx, form_id)
        tx.memo[key] = form
    return form


async def _read_form(tx: Tx, form_id: int) -> Form:
    row = await tx.one(FORM_BY_ID, id=form_id)
    if row is None:
        raise NotFound(f"No form {form_id}")
    fields = {
        f["code"]: Field(f["id"], f["code"], f["name"], f["type"], tuple(f["choices"] or ()))
        for f in await tx.all(FIELDS_OF_FORM, form_id=form_id)
    }
    return Form(row["id"], row["name"], fields)


@dataclass
class MappedValues:
    """Field values taken from a `mappings` list, and what was ignored and why."""

    values: dict[int, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def fills_nothing(value: str | None) -> bool:
    """An empty value (or null, or blanks) fills nothing, whatever the field's type: it is a
    connector's template with nothing in that place, not an order to clear what is there
    (docs/decisions.md)."""
    return not value or value.isspace()


def map_values(form: Form, mappings: Iterable[tuple[str, str]]) -> MappedValues:
    """Check each (code, value) against the form; unknown codes and bad values are ignored,
    and values that fill nothing are skipped."""
    result = MappedValues()
    unknown: list[str] = []
    rejected: list[str] = []
    for code, value in mappings:
        target = form.fields.get(code)
        if target is None:
            unknown.append(code)
            continue
        if fills_nothing(value):
            continue
        normalized = normalize(target.type, value, target.choices)
        if normalized is None:
            rejected.append(f"{code} ({_expected(target)}, got {value!r})")
            continue
        result.values[target.id] = normalized
    if unknown:
        result.problems.append(
            Problem(
                "invalid_field_mapping_code",
                "Unknown field codes, values ignored: " + ", ".join(unknown),
            )
        )
    if rejected:
        result.problems.append(
            Problem("invalid_field_mapping_code", "Invalid values ignored: " + "; ".join(rejected))
        )
    return result


def _expected(target: Field) -> str:
    if target.type == "choice":
        return "one of " + "|".join(target.choices)
    return f"expects {target.type}"
