"""Ids and counts written as text: in paths, query strings and form fields."""

from __future__ import annotations

#: the longest run of digits read as a number: 18 digits always fit the BIGINT every id is
#: stored as. A longer run names nothing, and int() of it is slow (refused past 4,300 digits).
MAX_DIGITS = 18


def small_number(raw: str | None) -> int | None:
    """The number `raw` writes in 1 to 18 ASCII digits (surrounding blanks aside), else None.

    ASCII only: int() would also read "٣" or "３" as 3, which no client of ours sends and
    no answer of ours could echo back.
    """
    if raw is None:
        return None
    digits = raw.strip()
    if 0 < len(digits) <= MAX_DIGITS and digits.isascii() and digits.isdigit():
        return int(digits)
    return None
