"""Printing command results: `key: value` lines for people, one JSON object with --json."""

from __future__ import annotations

import json
import sys
from typing import Any


class CommandError(Exception):
    """A command cannot do what was asked; the message says why."""


def emit(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
        return
    for key, value in result.items():
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
        sys.stdout.write(f"{key}: {shown}\n")
