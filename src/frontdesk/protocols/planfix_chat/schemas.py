"""Reading a Planfix chat API request: form fields, attachments, the newMessage it makes.

Bodies are form-urlencoded (spec.md §1.3); multipart/form-data is read too (PHP's cURL sends
an array that way). A field sent twice keeps its last value, as PHP reads it. Attachments come
in any of the shapes real clients send (spec.md §5.1):
    attachments[name]=a&attachments[url]=…&attachments[name]=b&attachments[url]=…   (paired
        by position: the seed's own shape)
    attachments[0][name]=a&attachments[0][url]=…                    (PHP indexed arrays)
    attachments[name][0]=a&attachments[url][0]=…, attachments[name][]=a   (PHP parallel lists)
(`name` and `url` in any case). Unknown fields are ignored, and so are other attachments
fields (attachments[0][size]) unless they hold a URL: that one's file would be lost without
a word, and the request is refused instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import zip_longest
from urllib.parse import unquote, unquote_plus, urlsplit

import multipart

from frontdesk.core.attachment_fetches import RemoteFile
from frontdesk.core.contacts import Contact
from frontdesk.core.planfix_chat import PlanfixMessage
from frontdesk.protocols.planfix_chat.errors import invalid_parameters
from frontdesk.web.uploads import clean_filename

#: 10,000-character messages and 100 attachments fit with room to spare
MAX_BODY = 2 * 1024 * 1024
MAX_FIELDS = 1000
URL_LENGTH = 2000
#: characters per field (message: core.intake's 10,000)
LIMITS = {
    "providerId": 200,
    "chatId": 300,
    "channel": 100,
    "title": 1000,
    "contactId": 300,
    "contactName": 200,
    "contactLastName": 200,
    "contactIco": URL_LENGTH,
    "contactEmail": 300,
    "contactPhone": 100,
    "contactData": 10_000,
    "userEmail": 254,
}
DATA_PREFIX = "data_"
DATA_VALUE_LENGTH = 2000
TRUE, FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}

_PAIRED = re.compile(r"attachments\[(name|url)\](?:\[\])?", re.IGNORECASE)
_INDEXED = re.compile(r"attachments\[(\d{1,9})\]\[(name|url)\]", re.IGNORECASE)
_PARALLEL = re.compile(r"attachments\[(name|url)\]\[(\d{1,9})\]", re.IGNORECASE)
_URL = re.compile(r"\s*https?://", re.IGNORECASE)

Pairs = list[tuple[str, str]]


def _unescaped(text: str) -> str:
    # most values have nothing escaped: returned as they are (parse_qsl cost 12% of a message)
    if "%" in text or "+" in text:
        return unquote_plus(text, errors="strict")
    return text


def urlencoded_pairs(raw: bytes) -> Pairs:
    """The fields as parse_qsl(keep_blank_values=True) reads them, strict about UTF-8."""
    try:
        fields = raw.decode("utf-8").split("&")
        if len(fields) > MAX_FIELDS:
            raise ValueError(f"more than {MAX_FIELDS} fields")
        pairs = []
        for field in fields:
            if field:
                key, _, value = field.partition("=")
                pairs.append((_unescaped(key), _unescaped(value)))
        return pairs
    except (UnicodeDecodeError, ValueError) as exc:
        raise invalid_parameters(f"The body is not form-urlencoded UTF-8: {exc}") from None


def multipart_pairs(raw: bytes, content_type: str) -> Pairs:
    """The text fields of a multipart body (file parts are not ours to take: skipped)."""
    _kind, options = multipart.parse_options_header(content_type)
    try:
        parser = multipart.PushMultipartParser(
            options.get("boundary", ""), max_header_size=16_384, max_segment_count=MAX_FIELDS
        )
        return _fields_of(parser, raw)
    except (multipart.MultipartError, UnicodeDecodeError) as exc:
        raise invalid_parameters(f"Malformed multipart body: {exc}") from None


def _fields_of(parser: multipart.PushMultipartParser, raw: bytes) -> Pairs:
    pairs: Pairs = []
    segment: multipart.MultipartSegment | None = None
    parts: list[bytes] = []
    for event in [*parser.parse(raw), *parser.parse(b"")]:
        if isinstance(event, multipart.MultipartSegment):
            segment, parts = event, []
        elif event is None:
            if segment is not None and segment.filename is None:
                pairs.append((segment.name, b"".join(parts).decode("utf-8")))
        else:
            parts.append(bytes(event))
    parser.close()
    return pairs


def form_pairs(raw: bytes, content_type: str) -> Pairs:
    """The body's fields; a body without a content type is taken as form-urlencoded."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        # (read as form fields it had no cmd, and the answer said only "Unknown cmd ''")
        raise invalid_parameters(
            "The body is JSON; the chat API takes form fields "
            "(application/x-www-form-urlencoded or multipart/form-data)"
        )
    if media_type == "multipart/form-data":
        pairs = multipart_pairs(raw, content_type)
    else:
        pairs = urlencoded_pairs(raw)
    return pairs


def check_no_nul(pairs: Pairs) -> None:
    """PostgreSQL text cannot hold NUL; refused on every engine alike."""
    if any("\x00" in key or "\x00" in value for key, value in pairs):
        raise invalid_parameters("Fields must not contain NUL characters")


class Fields:
    """A request's fields by name (the last of repeated ones), checked as they are read."""

    def __init__(self, pairs: Pairs) -> None:
        self.pairs = pairs
        self.values = dict(pairs)

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        limit = LIMITS.get(name)
        if value is not None and limit is not None and len(value) > limit:
            raise invalid_parameters(f"{name} is over {limit} characters long")
        return value or None

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None or not value.strip():
            raise invalid_parameters(f"{name} is required")
        return value

    def token(self) -> str:
        """planfix_token, else token (spec.md §7.14); missing is an invalid token."""
        return self.values.get("planfix_token") or self.values.get("token") or ""

    def provider_id(self) -> str:
        provider_id = self.required("providerId")
        if "~" in provider_id:
            raise invalid_parameters("providerId must not contain '~'")
        return provider_id

    def flag(self, name: str) -> bool:
        value = (self.values.get(name) or "").strip().lower()
        if value in TRUE:
            return True
        if value in FALSE:
            return False
        raise invalid_parameters(f"{name} must be 1, 0, true or false")


def _name_from(url: str) -> str:
    return clean_filename(unquote(urlsplit(url).path.rsplit("/", 1)[-1]))


def _remote_file(name: str, url: str) -> RemoteFile:
    url = url.strip()
    if len(url) > URL_LENGTH:
        raise invalid_parameters(f"An attachment URL is over {URL_LENGTH} characters")
    return RemoteFile(clean_filename(name) if name.strip() else _name_from(url), url)


def _set_once(entries: dict[int, dict[str, str]], key: str, at: int, part: str, value: str) -> None:
    entry = entries.setdefault(at, {})
    if part in entry:  # (which of the two was meant? neither is dropped without a word)
        raise invalid_parameters(f"{key[:60]!r} is given twice")
    entry[part] = value


def attachments(pairs: Sequence[tuple[str, str]]) -> list[RemoteFile]:
    """Every attachment the fields name, in order: indexed ones by index, then those of
    parallel lists by index, then paired ones (the three spellings are kept apart: the same
    number in two of them is two files)."""
    listed: dict[str, list[str]] = {"name": [], "url": []}
    indexed: dict[int, dict[str, str]] = {}
    parallel: dict[int, dict[str, str]] = {}
    for key, value in pairs:
        if key != "attachments" and not key.startswith("attachments["):
            continue
        if found := _PAIRED.fullmatch(key):
            listed[found[1].lower()].append(value)
        elif found := _INDEXED.fullmatch(key):
            _set_once(indexed, key, int(found[1]), found[2].lower(), value)
        elif found := _PARALLEL.fullmatch(key):
            _set_once(parallel, key, int(found[2]), found[1].lower(), value)
        elif _URL.match(value):
            raise invalid_parameters(
                f"{key[:60]!r} is not an attachment field: "
                "send attachments[name] and attachments[url]"
            )
    named = [
        (parts.get("name", ""), parts.get("url", ""))
        for entries in (indexed, parallel)
        for _, parts in sorted(entries.items())
    ]
    named += list(zip_longest(listed["name"], listed["url"], fillvalue=""))
    named = [(name, url) for name, url in named if name.strip() or url.strip()]  # placeholders
    if any(not url.strip() for _, url in named):
        raise invalid_parameters("Every attachment needs a url (attachments[url])")
    return [_remote_file(name, url) for name, url in named]


def _contact(fields: Fields) -> Contact | None:
    contact_id = fields.text("contactId")
    if contact_id is None:
        return None
    return Contact(
        contact_id,
        fields.text("contactName"),
        fields.text("contactLastName"),
        fields.text("contactIco"),
        fields.text("contactEmail"),
        fields.text("contactPhone"),
        fields.text("contactData"),
    )


def _data(fields: Fields) -> list[tuple[str, str]]:
    data = []
    for key, value in fields.values.items():
        if key.startswith(DATA_PREFIX) and len(key) > len(DATA_PREFIX):
            if len(value) > DATA_VALUE_LENGTH:
                raise invalid_parameters(f"{key} is over {DATA_VALUE_LENGTH} characters")
            data.append((key[len(DATA_PREFIX) :], value))
    return data


def new_message(fields: Fields, base_url: str) -> PlanfixMessage:
    """cmd=newMessage as the core takes it; invalid parameters (400) for what does not fit."""
    return PlanfixMessage(
        provider_id=fields.provider_id(),
        planfix_token=fields.token(),
        chat_id=fields.required("chatId"),
        text=fields.values.get("message", ""),
        channel=fields.text("channel"),
        title=fields.text("title"),
        contact=_contact(fields),
        attachments=attachments(fields.pairs),
        is_echo=fields.flag("isEcho"),
        user_email=fields.text("userEmail"),
        data=_data(fields),
        base_url=base_url,
    )
