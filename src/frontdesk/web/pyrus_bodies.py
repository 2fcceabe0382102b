"""Request bodies both Pyrus APIs share: field mappings and the telephony methods.

The Extensions API v1 (`/v1/call`, `/v1/attachcallrecord`) and API v4
(`/v4/integrations/call`, `/v4/integrations/attachcallrecord`) take the same bodies, field for
field (spec.md §2.6, §4.2, §4.3). They live here, beside the other HTTP mechanics the
protocols share, because no protocol package may import another (ARCHITECTURE.md §4).
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from frontdesk.core.calls import CallRecord, IncomingCall
from frontdesk.errors import invalid
from frontdesk.web.json_body import Body, Scalar, text

MAPPING_VALUE_LIMIT = 300
#: a task id the storage can hold (BIGINT): the drivers refuse to bind a larger one (a 500)
TaskId = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class MappingIn(msgspec.Struct):
    """Autofill of one form field: its code and a value (numbers are taken as text)."""

    code: str
    value: Scalar | bool | None = None


def mapping_pairs(mappings: list[MappingIn] | None) -> list[tuple[str, str]]:
    """The mappings as (code, text) pairs; null mappings are none."""
    pairs = []
    for position, mapping in enumerate(mappings or ()):
        value = mapping.value
        if value.__class__ is str:  # (most values are text already)
            value_text = value
        else:
            value_text = str(value).lower() if isinstance(value, bool) else text(value) or ""
        if len(value_text) > MAPPING_VALUE_LIMIT:
            raise invalid(
                f"mappings[{position}] ({mapping.code}): the value is {len(value_text)} "
                f"characters long; the limit is {MAPPING_VALUE_LIMIT}"
            )
        pairs.append((mapping.code, value_text))
    return pairs


class PhoneNumbers(Body):
    """Phone numbers, also accepted as `from`/`to` (aiopyrus sends those names)."""

    from_number: Scalar | None = None
    to_number: Scalar | None = None
    from_: Scalar | None = msgspec.field(default=None, name="from")
    to: Scalar | None = None

    def __post_init__(self) -> None:
        # Folded into the documented names at decoding, so that the required-parameter check
        # (which names every missing field at once) and the length limits see either spelling.
        if self.from_number in (None, ""):
            self.from_number = self.from_
        if self.to_number in (None, ""):
            self.to_number = self.to

    def numbers(self) -> tuple[str | None, str | None]:
        return text(self.from_number), text(self.to_number)


class CallIn(PhoneNumbers):
    required: ClassVar = ("account_id", "from_number", "to_number")
    limits: ClassVar = {
        "account_id": 300,
        "from_number": 100,
        "to_number": 100,
        "internal_number": 100,
        "external_id": 300,
    }
    account_id: Scalar | None = None
    internal_number: Scalar | None = None
    external_id: Scalar | None = None
    mappings: list[MappingIn] | None = None  # (null: none)

    def to_core(self) -> IncomingCall:
        from_number, to_number = self.numbers()
        return IncomingCall(
            str(text(self.account_id)),
            str(from_number),
            str(to_number),
            text(self.internal_number) or None,
            text(self.external_id) or None,
            mapping_pairs(self.mappings),
        )


class AttachCallRecordIn(PhoneNumbers):
    required: ClassVar = ("record_file",)
    limits: ClassVar = {"account_id": 300, "from_number": 100, "to_number": 100, "external_id": 300}
    account_id: Scalar | None = None
    record_file: str | None = None
    external_id: Scalar | None = None
    task_id: TaskId | None = None
    mappings: list[MappingIn] | None = None  # (null: none)

    def to_core(self) -> CallRecord:
        from_number, to_number = self.numbers()
        return CallRecord(
            str(self.record_file),
            text(self.account_id) or None,
            self.task_id,
            text(self.external_id) or None,
            from_number,
            to_number,
            mapping_pairs(self.mappings),
        )
