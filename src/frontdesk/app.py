"""create_app(settings): one HTTP origin serving every protocol surface."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import timedelta

from litestar import Litestar

from frontdesk import __version__
from frontdesk.core import file_links
from frontdesk.core.maintenance import sweep
from frontdesk.delivery.service import delivering
from frontdesk.protocols.planfix_chat.routes import ENDPOINTS as PLANFIX_CHAT
from frontdesk.protocols.pyrus_ext_v1.errors import EXCEPTION_HANDLERS
from frontdesk.protocols.pyrus_ext_v1.routes import ENDPOINTS as PYRUS_EXT_V1
from frontdesk.protocols.pyrus_v4.routes import ENDPOINTS as PYRUS_V4
from frontdesk.settings import Settings
from frontdesk.storage.blobs import BlobStore
from frontdesk.storage.database import open_database
from frontdesk.web import openapi, ops
from frontdesk.web.admin_api import ENDPOINTS as ADMIN_API
from frontdesk.web.context import AppContext
from frontdesk.web.endpoints import (
    ASGIApp,
    Endpoint,
    Receive,
    Scope,
    Send,
    asgi_app,
    head_as_get,
)
from frontdesk.web.ratelimit import RateLimiter
from frontdesk.web.router import Router

log = logging.getLogger(__name__)

ENDPOINTS: tuple[Endpoint, ...] = (*PYRUS_EXT_V1, *PYRUS_V4, *PLANFIX_CHAT, *ADMIN_API)


#: the first maintenance sweep runs this long after start (or one interval, if shorter)
FIRST_SWEEP_AFTER_SECONDS = 60.0


async def _maintain(ctx: AppContext) -> None:
    ttl = timedelta(seconds=ctx.settings.unattached_file_ttl_seconds)
    days = ctx.settings.delivery_history_days
    history = timedelta(days=days) if days else None
    interval = ctx.settings.maintenance_interval_seconds
    # not at once: a start (several workers', or another process's migrations) is no time
    # for clean-up writes, and nothing it sweeps is urgent
    await asyncio.sleep(min(interval, FIRST_SWEEP_AFTER_SECONDS))
    while True:
        try:
            await sweep(ctx.db, ctx.blobs, ttl, history)
        except Exception:
            log.exception("Maintenance sweep failed; will retry")
        await asyncio.sleep(interval)


def create_app(settings: Settings) -> FrontdeskApp:
    """The ASGI app. The database is opened on startup (it must be migrated already)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = await open_database(
            settings.effective_database_url,
            synchronous=settings.sqlite_synchronous,
            pool_size=settings.pg_pool_size,
        )
        ctx = AppContext(
            settings=settings,
            db=db,
            blobs=BlobStore(settings.effective_files_dir),
            limiter=RateLimiter(settings.rate_limit_requests, settings.rate_limit_window_seconds),
        )
        app.state.ctx = ctx
        if settings.secret_key:  # every process signs file links with the key in the database
            await db.write(file_links.set_key, settings.secret_key)
        maintenance = asyncio.create_task(_maintain(ctx))
        try:
            if settings.delivery_in_process:
                async with delivering(settings, db):
                    yield
            else:
                yield
        finally:
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
            await db.close()

    app = Litestar(
        route_handlers=[
            ops.healthz,
            ops.readyz,
            ops.openapi_json,
            ops.docs,
        ],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=None,  # the protocols' document is built from their endpoints
        # logging is the process's (app_from_env): Litestar's own config starts a queue
        # listener thread per app, never stopped (a test suite made 1,500 of them)
        logging_config=None,
        debug=False,
    )
    app.state.openapi = openapi.document(ENDPOINTS, "Frontdesk", __version__)
    app.state.docs_page = openapi.docs_page("Frontdesk")
    return FrontdeskApp(app, ENDPOINTS)


class FrontdeskApp:
    """The ASGI app: protocol endpoints are served directly, everything else by Litestar.

    A connector's call goes straight from the server to its endpoint: a dict lookup instead
    of the framework's routing and middleware (docs/decisions.md has the figures).
    """

    def __init__(self, litestar: Litestar, endpoints: Sequence[Endpoint]) -> None:
        self.litestar = litestar
        self.state = litestar.state
        paths = [endpoint.path for endpoint in endpoints]
        assert len(paths) == len(set(paths)), "one Endpoint per path; it may take several methods"
        self._router = Router((endpoint.path, asgi_app(endpoint)) for endpoint in endpoints)

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        return self.litestar.lifespan()

    def _endpoint_for(self, scope: Scope) -> ASGIApp | None:
        found = self._router.match(scope["path"])
        if found is None:
            return None
        serve, params = found
        if params:
            scope["path_params"] = params
        return serve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD":
            scope, send = head_as_get(scope, send)
        serve = self._endpoint_for(scope) if scope["type"] == "http" else None
        if serve is None:
            await self.litestar(scope, receive, send)  # type: ignore[arg-type]
            return
        scope["app"] = self
        await serve(scope, receive, send)


def tune_garbage_collector() -> None:
    """Fewer, cheaper collections for a long-running server.

    The objects made at start-up (the app, its routes, the memoised statements) live as long
    as the process; frozen, no collection walks them again. A larger first generation turns
    the many per-request collections into few. Measured with the getmessage benchmark: p99
    fell from 57-80 ms to 21-25 ms at the same throughput, the pauses having been full
    collections walking every long-lived object.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def app_from_env() -> FrontdeskApp:
    """Factory for uvicorn workers (`uvicorn --factory frontdesk.app:app_from_env`)."""
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level)
    app = create_app(settings)
    tune_garbage_collector()
    return app
