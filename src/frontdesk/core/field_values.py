"""Field types and the canonical text each one stores (Pyrus' formats: dot decimals, ISO dates)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation

# Each check is one pass over the value: the single patterns they replace
# (^\+?[\d\s().-]*\d[\d\s().-]*$ and ^[^@\s]+@[^@\s]+\.[^@\s]+$) backtracked in time
# growing with the square of a value that almost fits: 40,000 digits and an "x" held the
# event loop, and every other request, for 41 s.
PHONE_CHARACTERS = re.compile(r"\+?[\d\s().\-]+")
DIGIT = re.compile(r"\d")
WHITESPACE = re.compile(r"\s")
TRUE = {"true", "1", "yes", "checked", "on"}
FALSE = {"false", "0", "no", "unchecked", "off"}
#: the largest power of ten a number field takes, either way
MAX_EXPONENT = 100


def _number(value: str) -> str | None:
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    if number.is_zero():  # "-0" and "0.00" are one value
        return "0"
    # A bounded exponent: "1e-999999" would otherwise be written out as a million digits.
    if abs(number.adjusted()) > MAX_EXPONENT:
        return None
    # Plain digits without trailing fractional zeros ("1e3" -> "1000", "0.250" -> "0.25");
    # not quantize/normalize, which round or fail beyond the context's 28 digits ("1e30").
    digits = format(number, "f")
    return digits.rstrip("0").rstrip(".") if "." in digits else digits


def _date(value: str) -> str | None:
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        return None


def _time(value: str) -> str | None:
    try:
        return time.fromisoformat(value.strip()).strftime("%H:%M")
    except ValueError:
        return None


def _datetime(value: str) -> str | None:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:  # Pyrus reads an offset-less time as UTC
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # "0001-01-01T00:00+01:00" is before year 1 in UTC
        return None
    # Pyrus' format (YYYY-MM-DDTHH:MM:SSZ), spelled with isoformat: strftime would write
    # the year 999 as "999", not "0999"
    return moment.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _phone(value: str) -> str | None:
    """Digits, spaces, ( ) . - and a leading +, with at least one digit."""
    value = value.strip()
    return value if PHONE_CHARACTERS.fullmatch(value) and DIGIT.search(value) else None


def _email(value: str) -> str | None:
    """local@domain.tld: one @, no spaces, a dot inside the domain."""
    value = value.strip()
    local, at, domain = value.partition("@")
    if not (local and at and "@" not in domain and "." in domain[1:-1]):
        return None
    return None if WHITESPACE.search(value) else value


def _checkmark(value: str) -> str | None:
    lowered = value.strip().lower()
    if lowered in TRUE:
        return "checked"
    if lowered in FALSE:
        return "unchecked"
    return None


_NORMALIZERS: dict[str, Callable[[str], str | None]] = {
    "text": lambda value: value,
    "number": _number,
    "money": _number,
    "date": _date,
    "time": _time,
    "datetime": _datetime,
    "phone": _phone,
    "email": _email,
    "checkmark": _checkmark,
}
FIELD_TYPES = (*_NORMALIZERS, "choice")


def normalize(field_type: str, value: str, choices: Sequence[str] = ()) -> str | None:
    """The value as the field stores it, or None when it does not fit the type."""
    if field_type == "choice":
        wanted = value.strip().casefold()
        return next((choice for choice in choices if choice.casefold() == wanted), None)
    return _NORMALIZERS[field_type](value)
