"""Decoding a JSON request body into a msgspec Struct, with Pyrus' error codes.

Required fields are declared as optional in the Struct and listed in its `required` class
variable, so that a request missing several of them is told all their names at once.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, TypeVar

import msgspec

from frontdesk.errors import FrontdeskError, invalid, required

T = TypeVar("T", bound="Body")

Scalar = str | int | float


class Body(msgspec.Struct, kw_only=True):
    """Base of request bodies: lists its required fields and its length limits."""

    required: ClassVar[tuple[str, ...]] = ()
    #: field name -> max characters (after numbers are turned into text)
    limits: ClassVar[dict[str, int]] = {}


def text(value: Scalar | None) -> str | None:
    """A JSON string or number as text: clients send ids and phone numbers as numbers."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _blank(value: Any) -> bool:
    """Not given: absent, null, empty, or only spaces (a number of spaces is no phone)."""
    if value.__class__ is str:
        return not value.strip()
    return value is None or value == []


def _missing(body: Body) -> list[str]:
    return [name for name in body.required if _blank(getattr(body, name))]


def _check_limits(body: Body) -> None:
    for name, limit in body.limits.items():
        value = getattr(body, name)
        if value.__class__ is not str:  # (most values are text already)
            value = text(value)
        if value is not None and len(value) > limit:
            raise invalid(f"{name} is {len(value)} characters long; the limit is {limit}")


def _has_nul(value: Any) -> bool:
    """PostgreSQL text cannot hold NUL; refuse it for every engine alike."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def decode_fields(fields: dict[str, str], body_type: type[T]) -> T:
    """A body given as name=value pairs (a query string), checked as the JSON one would be."""
    return decode_body(msgspec.json.encode(fields), body_type)


UTF8_BOM = b"\xef\xbb\xbf"
#: a \uD800-\uDFFF escape without the other half of its UTF-16 pair: no character
_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def _reason(exc: Exception, raw: bytes) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    # msgspec says "truncated" for a lone surrogate: name what the sender can fix
    if "truncated" in str(exc) and _LONE_SURROGATE.search(raw):
        return "a \\uD800-\\uDFFF escape without the other half of its UTF-16 pair"
    return str(exc)


def decode_body(raw: bytes, body_type: type[T], malformed: str = "invalid_request") -> T:
    """The body as `body_type`; JSON that does not parse is `malformed` (the Extensions API
    says invalid_request, API v4 invalid_json)."""
    if raw.startswith(UTF8_BOM):  # (some Windows tools write one; JSON allows it to be read)
        raw = raw[len(UTF8_BOM) :]
    if not raw.strip():
        raise FrontdeskError("empty_body", "The request body is empty")
    try:
        body = msgspec.json.decode(raw, type=body_type, strict=False)
    except msgspec.ValidationError as exc:
        raise invalid(f"Invalid parameters: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise FrontdeskError(
            malformed, f"The body is not valid JSON: {_reason(exc, raw)}"
        ) from None
    if b"\\u0000" in raw and _has_nul(msgspec.to_builtins(body)):
        raise invalid("Text must not contain NUL (\\u0000) characters")
    missing = _missing(body)
    if missing:
        raise required(*missing)
    _check_limits(body)
    return body
