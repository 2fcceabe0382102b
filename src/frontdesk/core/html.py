"""Formatted text: sanitised to exactly the tags Pyrus documents, with a plain-text twin."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

TAGS = {"i", "br", "code", "b", "s", "div", "q", "mark", "ul", "ol", "li", "a", "button"}
ATTRIBUTES = {"div": {"data-type"}, "mark": {"data-color"}, "a": {"href"}}
ATTRIBUTE_VALUES = {
    ("div", "data-type"): {"heading"},
    ("mark", "data-color"): {"red", "yellow", "green", "blue"},
}
URL_SCHEMES = {"http", "https", "mailto", "tel"}
ABSOLUTE_URL = re.compile(r"(?i)^(https?://[^/\s]|mailto:|tel:)")
BLOCKS = {"div", "li", "ul", "ol", "q"}
# Block tags outside the list would vanish with nothing between their texts
# ("<p>Hello</p><p>World</p>" -> "HelloWorld"); they become line breaks first.
FOREIGN_BLOCK_END = re.compile(
    r"(?i)</(p|h[1-6]|tr|table|blockquote|pre|section|article|header|footer|dd|dt)\s*>"
)


TRAILING_BREAKS = re.compile(r"(<br>\s*)+$")


def _keep_documented_values(tag: str, attribute: str, value: str) -> str | None:
    if (tag, attribute) == ("a", "href"):
        return value if ABSOLUTE_URL.match(value.strip()) else None
    allowed = ATTRIBUTE_VALUES.get((tag, attribute))
    return value if allowed is None or value in allowed else None


def sanitize(html: str) -> str:
    """Keep exactly the documented tags and attributes; drop the rest (scripts with content)."""
    blocks_broken, breaks = FOREIGN_BLOCK_END.subn("<br>", html)
    clean = nh3.clean(
        blocks_broken,
        tags=TAGS,
        # "*": no attribute on every tag, which nh3 would otherwise allow (title, lang)
        attributes={"*": set(), **ATTRIBUTES},
        attribute_filter=_keep_documented_values,
        url_schemes=URL_SCHEMES,
        link_rel=None,
        strip_comments=True,
    )
    return TRAILING_BREAKS.sub("", clean) if breaks else clean


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:  # noqa: ARG002
        if tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def to_text(html: str) -> str:
    """The plain text of (sanitised) HTML: line breaks kept, tags and entities resolved."""
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    text = "".join(collector.parts)
    return re.sub(r"[ \t]*\n(?:[ \t]*\n)+", "\n", text).strip()
