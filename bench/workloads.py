"""What the load generator sends: one request body per method, with one value varied per request.

A workload is a method's path and the document's example body, in which one field (the
conversation's key: getmessage's `channel_id`, a call's `external_id`) is replaced per request.
"existing" keys are the ones `engines.prepared_token` made beforehand; "new" keys were never
sent before, so every request starts a conversation (a new task).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

ACCOUNT_ID = "uniqueID12345"  # the demo account (src/frontdesk/core/demo.py)
EXISTING_PREFIX = "bench-existing-"
KEY_MARK = "__KEY__"


@dataclass(frozen=True)
class Workload:
    name: str
    path: str
    #: the body, with KEY_MARK where the varied key goes
    body: dict[str, Any]
    #: which API's token it needs: "v1" (the demo extension) or "v4" (the demo agent)
    api: str

    def parts(self) -> tuple[str, str]:
        """The JSON body split around the key: head + '"<key>"' + tail."""
        text = json.dumps(self.body, separators=(",", ":"))
        head, tail = text.split(f'"{KEY_MARK}"')
        return head, tail

    def body_for(self, key: str) -> bytes:
        head, tail = self.parts()
        return f'{head}"{key}"{tail}'.encode()


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

#: scenario -> (workload, "existing" | "new")
SCENARIOS: dict[str, tuple[Workload, str]] = {
    "getmessage_existing": (GETMESSAGE, "existing"),
    "getmessage_new": (GETMESSAGE, "new"),
    "call_new": (CALL, "new"),
    "call_repeated": (CALL, "existing"),
}
