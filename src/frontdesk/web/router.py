"""Which protocol endpoint serves a path: a dict lookup for fixed paths, segments for the rest.

A template names its parameters in braces, anywhere in the path
(`/v4/forms/{form_id}/register`); a parameter matches one non-empty path segment, except a
trailing `{name:path}`, which takes the rest of the path (file ids are checked by the handler,
so `/v1/files/download/../x` reaches it and is refused there, never by a filesystem).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class _Template(Generic[T]):
    #: literal segments as str, parameters as (name,) tuples
    segments: tuple[str | tuple[str], ...]
    rest: str | None
    target: T

    def match(self, parts: list[str]) -> dict[str, str] | None:
        count = len(self.segments)
        if len(parts) < count or (self.rest is None and len(parts) != count):
            return None
        params: dict[str, str] = {}
        for segment, part in zip(self.segments, parts, strict=False):
            if isinstance(segment, tuple):
                if not part:
                    return None
                params[segment[0]] = part
            elif segment != part:
                return None
        if self.rest is not None:
            rest = "/".join(parts[count:])
            if not rest:
                return None
            params[self.rest] = rest
        return params


def _parse(template: str) -> tuple[tuple[str | tuple[str], ...], str | None]:
    segments: list[str | tuple[str]] = []
    rest = None
    parts = template.strip("/").split("/")
    for position, part in enumerate(parts):
        if part.startswith("{") and part.endswith("}"):
            name, _, kind = part[1:-1].partition(":")
            if kind == "path" and position == len(parts) - 1:
                rest = name
            else:
                segments.append((name,))
        else:
            segments.append(part)
    return tuple(segments), rest


class Router(Generic[T]):
    def __init__(self, routes: Iterable[tuple[str, T]]) -> None:
        self._exact: dict[str, T] = {}
        self._templates: list[_Template[T]] = []
        for path, target in routes:
            if "{" in path:
                segments, rest = _parse(path)
                self._templates.append(_Template(segments, rest, target))
            else:
                self._exact[path] = target

    def match(self, path: str) -> tuple[T, dict[str, str]] | None:
        found = self._exact.get(path)
        if found is not None:
            return found, {}
        parts = path.strip("/").split("/")
        for template in self._templates:
            params = template.match(parts)
            if params is not None:
                return template.target, params
        return None
