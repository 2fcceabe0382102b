"""create_app(settings): one HTTP origin serving every protocol surface."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin

from frontdesk import __version__
from frontdesk.core.maintenance import sweep
from frontdesk.protocols.pyrus_ext_v1 import routes as pyrus_ext_v1
from frontdesk.protocols.pyrus_ext_v1.errors import EXCEPTION_HANDLERS
from frontdesk.settings import Settings
from frontdesk.storage.blobs import BlobStore
from frontdesk.storage.database import open_database
from frontdesk.web import ops
from frontdesk.web.context import AppContext
from frontdesk.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)


async def _maintain(ctx: AppContext) -> None:
    ttl = timedelta(seconds=ctx.settings.unattached_file_ttl_seconds)
    while True:
        try:
            await sweep(ctx.db, ctx.blobs, ttl)
        except Exception:
            log.exception("Maintenance sweep failed; will retry")
        await asyncio.sleep(ctx.settings.maintenance_interval_seconds)


def create_app(settings: Settings) -> Litestar:
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
        maintenance = asyncio.create_task(_maintain(ctx))
        try:
            yield
        finally:
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
            await db.close()

    app = Litestar(
        route_handlers=[
            pyrus_ext_v1.router,
            ops.healthz,
            ops.readyz,
        ],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="Frontdesk",
            version=__version__,
            description="Pyrus- and Planfix-compatible helpdesk API",
            path="/",
            render_plugins=[
                JsonRenderPlugin(path="/openapi.json"),
                SwaggerRenderPlugin(path="/docs"),
            ],
        ),
        request_max_body_size=4 * 1024 * 1024,
        debug=False,
    )
    return app


def app_from_env() -> Litestar:
    """Factory for uvicorn workers (`uvicorn --factory frontdesk.app:app_from_env`)."""
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level)
    return create_app(settings)
