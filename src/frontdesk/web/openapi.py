"""Describing the JSON bodies we decode ourselves in Litestar's OpenAPI document.

Handlers read the raw body (so that every decoding failure gets the protocol's own error
code), which hides its shape from Litestar; `documented(Body)` puts it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar.openapi.spec import OpenAPIMediaType, Operation, RequestBody, Schema


class RawSchema(Schema):
    """A JSON Schema given as a dict (msgspec's), rendered as is."""

    def __init__(self, raw: dict[str, Any]) -> None:
        super().__init__()
        object.__setattr__(self, "_raw", raw)

    def to_schema(self) -> dict[str, Any]:
        raw: dict[str, Any] = self.__dict__["_raw"]
        return raw


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


def body_schema(body_type: type[Any]) -> dict[str, Any]:
    """The body's JSON Schema, self-contained, with its required fields marked."""
    schema = msgspec.json.schema(body_type)
    definitions = schema.pop("$defs", {})
    own = definitions.get(body_type.__name__)
    if own is not None:
        own["required"] = list(getattr(body_type, "required", ()))
    inlined: dict[str, Any] = _inline(schema, definitions)
    return inlined


def documented(body_type: type[Any], media_type: str = "application/json") -> type[Operation]:
    """An Operation class for `operation_class=` that declares the request body."""
    schema = RawSchema(body_schema(body_type))

    @dataclass
    class WithBody(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                required=True, content={media_type: OpenAPIMediaType(schema=schema)}
            )

    return WithBody
