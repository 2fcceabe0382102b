"""The loop the delivery worker and the attachment fetcher share."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


async def run_steps(
    step: Callable[[], Awaitable[int]], idle: Callable[[], Awaitable[None]], log: logging.Logger
) -> None:
    """Step until cancelled, idling when a step started nothing; a failing step (the database
    down) is logged and retried."""
    while True:
        try:
            started = await step()
        except Exception:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # asked to stop: an error on the way out must not keep it going
            log.exception("%s step failed; will retry", log.name)
            started = 0
        if not started:
            await idle()
