"""Operations endpoints: liveness, readiness, the OpenAPI document and its viewer."""

from __future__ import annotations

import copy
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.response import Response as HTMLResponse

from frontdesk.web.context import context
from frontdesk.web.json_body import json_schema
from frontdesk.web.responses import json_response

DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Frontdesk API</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head><body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
<noscript>The API document is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body></html>"""


@get("/healthz", include_in_schema=False, sync_to_thread=False)
def healthz() -> Response[bytes]:
    """Alive: the process answers."""
    return json_response({"status": "ok"})


@get("/readyz", include_in_schema=False)
async def readyz(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Ready: the database answers."""
    try:
        await context(request).db.ping()
    except Exception as exc:
        return json_response({"status": "unavailable", "error": type(exc).__name__}, status=503)
    return json_response({"status": "ok"})


def openapi_document(app: Litestar, request_bodies: dict[str, Any]) -> dict[str, Any]:
    """Litestar's generated document, with the JSON bodies we decode ourselves described."""
    document: dict[str, Any] = copy.deepcopy(app.openapi_schema.to_schema())
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for path, body_type in request_bodies.items():
        operation = document.get("paths", {}).get(path, {}).get("post")
        if operation is None:
            continue
        schema = json_schema(body_type)
        for name, definition in schema.pop("$defs", {}).items():
            schemas[name] = definition
        ref = schema["$ref"].replace("#/$defs/", "#/components/schemas/")
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": ref}}},
        }
    refs_fixed: dict[str, Any] = _refs_to_components(document)
    return refs_fixed


def _refs_to_components(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                value.replace("#/$defs/", "#/components/schemas/")
                if key == "$ref" and isinstance(value, str)
                else _refs_to_components(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_refs_to_components(item) for item in node]
    return node


@get("/openapi.json", include_in_schema=False)
async def openapi_json(request: Request[Any, Any, Any]) -> Response[bytes]:
    document = request.app.state.get("openapi_document")
    if document is None:
        document = openapi_document(request.app, request.app.state.request_bodies)
        request.app.state.openapi_document = document
    return json_response(document)


@get("/docs", include_in_schema=False, sync_to_thread=False)
def docs() -> HTMLResponse[str]:
    return HTMLResponse(DOCS_PAGE, media_type="text/html")
