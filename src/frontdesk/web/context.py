"""What every request handler needs, built once per process by create_app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request

from frontdesk.settings import Settings
from frontdesk.storage.blobs import BlobStore
from frontdesk.storage.database import Database
from frontdesk.web.ratelimit import RateLimiter


@dataclass
class AppContext:
    settings: Settings
    db: Database
    blobs: BlobStore
    limiter: RateLimiter


def context(request: Request[Any, Any, Any]) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
