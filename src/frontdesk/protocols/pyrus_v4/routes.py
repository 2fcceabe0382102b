"""Every API v4 endpoint, gathered from the modules that serve them."""

from __future__ import annotations

from frontdesk.protocols.pyrus_v4 import auth, files, forms, people, tasks, telephony
from frontdesk.web.endpoints import Endpoint

ENDPOINTS: tuple[Endpoint, ...] = (
    *auth.ENDPOINTS,
    *people.ENDPOINTS,
    *files.ENDPOINTS,
    *telephony.ENDPOINTS,
    *forms.ENDPOINTS,
    *tasks.ENDPOINTS,
)
