"""What the load generator sends: one request body per method, with one value varied per request.

A workload is a method's path and the document's example body, in which one field (the
conversation's key: getmessage's `channel_id`, a call's `external_id`, a Planfix `chatId`) is
replaced per request. "existing" keys are the ones `engines.prepared_token` made beforehand;
"new" keys were never sent before, so every request starts a conversation (a new task).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

ACCOUNT_ID = "uniqueID12345"  # the demo account (src/frontdesk/core/demo.py)
PLANFIX_TOKEN = "303cb962ac59075b964b07152d234b70"  # the demo's Planfix provider, the same
EXISTING_PREFIX = "bench-existing-"
KEY_MARK = "__KEY__"


@dataclass(frozen=True)
class Workload:
    name: str
    path: str
    #: the body, with KEY_MARK where the varied key goes
    body: dict[str, Any]
    #: which API's token it needs: "v1" (the demo extension), "v4" (the demo agent), or
    #: "planfix" (none: the key travels in the body)
    api: str
    content_type: str = "application/json"
    #: in every successful answer; in an answer that made a new task; in one with a warning
    ok_marker: str = '"task_id"'
    new_marker: str = '"is_new_task":true'
    problem_marker: str = '"error_code"'

    def parts(self) -> tuple[str, str]:
        """The body split around the key (head + key + tail; JSON quotes are in head/tail)."""
        if self.content_type == "application/json":
            text = json.dumps(self.body, separators=(",", ":"))
        else:
            text = urlencode(self.body)
        head, tail = text.split(KEY_MARK)
        return head, tail

    def body_for(self, key: str) -> bytes:
        head, tail = self.parts()
        return f"{head}{key}{tail}".encode()


#: The /getmessage example of the Extensions API v1 document (tests/fixtures/seeds), without
#: attachments (files are a separate scenario); channel_id varies.
GETMESSAGE = Workload(
    "getmessage",
    "/v1/getmessage",
    {
        "account_id": ACCOUNT_ID,
        "channel_id": KEY_MARK,
        "sender_name": "Paul Jones",
        "message_type": "Telegram",
        "message_text": "Hello! Could you please move the delivery to Thursday?",
        "mappings": [
            {"code": "SenderName", "value": "Paul Jones"},
            {"code": "Subject", "value": "Hello! Could you please move the delivery to Thursday?"},
        ],
    },
    "v1",
)

#: The integrations/call example of the API v4 telephony document, with an external_id (the
#: PBX's call id) that varies. Its internal number is the demo agent's work phone.
CALL = Workload(
    "call",
    "/v4/integrations/call",
    {
        "account_id": ACCOUNT_ID,
        "from_number": "+79774221338",
        "to_number": "+74953009080",
        "internal_number": "200",
        "external_id": KEY_MARK,
        "mappings": [{"code": "CallStartTime", "value": "2021-12-23T00:11:32Z"}],
    },
    "v4",
)

#: The Planfix chat API document's sample newMessage (tests/fixtures/seeds), without its
#: attachments (files are fetched apart from the request); chatId varies.
NEWMESSAGE = Workload(
    "newmessage",
    "/webchat/api",
    {
        "cmd": "newMessage",
        "providerId": "superchat",
        "chatId": KEY_MARK,
        "planfix_token": PLANFIX_TOKEN,
        "message": "Hello, I have a question",
        "contactId": "57487124",
        "contactName": "Ivan",
        "contactLastName": "Ivanov",
        "contactIco": "https://superchat.io/avatars/183712.png",
        "contactEmail": "ivan@ivanov.com",
        "contactPhone": "79051234567",
        "contactData": "the gas boilers came as expected",
    },
    "planfix",
    content_type="application/x-www-form-urlencoded",
    ok_marker='"number"',
    new_marker='"isNewTask":true',
    problem_marker='"warnings"',
)

#: scenario -> (workload, "existing" | "new")
SCENARIOS: dict[str, tuple[Workload, str]] = {
    "getmessage_existing": (GETMESSAGE, "existing"),
    "getmessage_new": (GETMESSAGE, "new"),
    "call_new": (CALL, "new"),
    "call_repeated": (CALL, "existing"),
    "newmessage_existing": (NEWMESSAGE, "existing"),
    "newmessage_new": (NEWMESSAGE, "new"),
}
