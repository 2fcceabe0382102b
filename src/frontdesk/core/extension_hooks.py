"""What Frontdesk tells an extension service about its accounts: `toggle`, through the outbox.

(`authorize` is a conversation, not a notification: frontdesk.delivery.authorize makes it.)
"""

from __future__ import annotations

import msgspec

from frontdesk.core import extensions, outbox
from frontdesk.core.replies import endpoint_url
from frontdesk.storage.sql import Tx

TOGGLE = "toggle"


async def toggle_account(tx: Tx, extension_id: int, account_id: str, enabled: bool) -> bool:
    """Enable or disable the account and queue `POST /toggle {account_id, enabled}` to the
    extension; True when a webhook was queued (the extension has a URL)."""
    await extensions.set_account_enabled(tx, extension_id, account_id, enabled)
    extension = await extensions.get_extension(tx, extension_id)
    base_url = extension["base_url"]
    if not base_url:
        return False
    await outbox.enqueue(
        tx,
        kind=TOGGLE,
        url=endpoint_url(str(base_url), TOGGLE),
        body=msgspec.json.encode({"account_id": account_id, "enabled": enabled}),
        # behind any message of the account still on its way? no: toggles have their own
        # order, and a disabled account's messages still go out (they were written before)
        ordering_key=f"toggle:{extension_id}:{account_id}",
        extension_id=extension_id,
    )
    return True
