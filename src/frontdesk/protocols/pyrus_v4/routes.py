"""Every API v4 endpoint, gathered from the modules that serve them."""

from __future__ import annotations

from frontdesk.protocols.pyrus_v4 import auth, people
from frontdesk.web.endpoints import Endpoint

ENDPOINTS: tuple[Endpoint, ...] = (*auth.ENDPOINTS, *people.ENDPOINTS)
