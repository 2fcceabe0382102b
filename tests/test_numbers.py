"""core.numbers.small_number: the one reading of ids and counts written as text."""

from __future__ import annotations

import pytest

from frontdesk.core.numbers import small_number


@pytest.mark.parametrize(
    "raw, number",
    [
        ("1", 1),
        ("0", 0),
        (" 42 ", 42),
        ("007", 7),
        ("9" * 18, int("9" * 18)),
    ],
)
def test_ascii_digits_are_read(raw, number):
    assert small_number(raw) == number


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        " ",
        "9" * 19,
        "9" * 5000,
        "-1",
        "+1",
        "1.0",
        "1e3",
        "0x1",
        "1_000",
        "\u0663",
        "\uff11",
        "\u00b2",
    ],
)
def test_anything_else_is_none(raw):
    assert small_number(raw) is None
