"""create_app(settings): one HTTP origin serving every protocol surface."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import unquote

from litestar import Litestar, asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from frontdesk import __version__
from frontdesk.core.maintenance import sweep
from frontdesk.protocols.pyrus_ext_v1.errors import EXCEPTION_HANDLERS
from frontdesk.protocols.pyrus_ext_v1.routes import ENDPOINTS as PYRUS_EXT_V1
from frontdesk.settings import Settings
from frontdesk.storage.blobs import BlobStore
from frontdesk.storage.database import open_database
from frontdesk.web import openapi, ops
from frontdesk.web.context import AppContext
from frontdesk.web.endpoints import Endpoint, asgi_app
from frontdesk.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)

ENDPOINTS: tuple[Endpoint, ...] = (*PYRUS_EXT_V1,)


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
            *(_mounted(endpoint) for endpoint in ENDPOINTS),
            ops.healthz,
            ops.readyz,
            ops.openapi_json,
            ops.docs,
        ],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=None,  # the protocols' document is built from their endpoints
        debug=False,
    )
    app.state.openapi = openapi.document(ENDPOINTS, "Frontdesk", __version__)
    app.state.docs_page = openapi.docs_page("Frontdesk")
    return app


def _mounted(endpoint: Endpoint) -> ASGIRouteHandler:
    """A Litestar route that hands the request, untouched, to the endpoint's ASGI app.

    A path with a parameter ("/v1/files/download/{file_id}") is mounted at its fixed prefix
    and the rest of the path becomes the parameter.
    """
    serve = asgi_app(endpoint)
    prefix, brace, param = endpoint.path.partition("{")
    name = param.split(":")[0].rstrip("}")

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        if brace:
            raw = scope.get("raw_path") or scope["path"].encode()
            rest = raw.decode("latin-1").split("?")[0][len(prefix) :]
            scope["path_params"] = {name: unquote(rest)}
        await serve(scope, receive, send)  # type: ignore[arg-type]

    mount_path = prefix.rstrip("/") if brace else endpoint.path
    return asgi(mount_path, name=endpoint.path, copy_scope=False, is_mount=bool(brace))(route)


def app_from_env() -> Litestar:
    """Factory for uvicorn workers (`uvicorn --factory frontdesk.app:app_from_env`)."""
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level)
    return create_app(settings)
