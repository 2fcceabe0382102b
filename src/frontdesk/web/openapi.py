"""The OpenAPI document of the protocol endpoints, built from their declarations.

Each endpoint names its JSON body's msgspec Struct; the schema comes from msgspec, with the
fields the body requires marked (they are optional in the Struct so that a request missing
several is told all their names at once).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import msgspec

from frontdesk.web.endpoints import Endpoint


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(definitions[ref.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


def body_schema(body_type: type[Any]) -> dict[str, Any]:
    """The body's JSON Schema, self-contained, with its required fields marked."""
    schema = msgspec.json.schema(body_type)
    definitions = schema.pop("$defs", {})
    own = definitions.get(body_type.__name__)
    if own is not None:
        own["required"] = list(getattr(body_type, "required", ()))
    inlined: dict[str, Any] = _inline(schema, definitions)
    return inlined


_ERROR = {
    "type": "object",
    "properties": {"error_code": {"type": "string"}, "error": {"type": "string"}},
    "required": ["error_code", "error"],
}
_JSON = "application/json"


def _path_parameters(path: str) -> list[dict[str, Any]]:
    names = [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
    ]


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "tags": list(endpoint.tags),
        "responses": {
            "200": {"description": "Success"},
            "default": {"description": "Error", "content": {_JSON: {"schema": _ERROR}}},
        },
    }
    parameters = _path_parameters(endpoint.path)
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body_type is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {_JSON: {"schema": body_schema(endpoint.body_type)}},
        }
    return operation


def document(endpoints: Iterable[Endpoint], title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the protocol endpoints."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        if not endpoint.in_schema:
            continue
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", endpoint.path)
        for method in endpoint.methods:
            if method == "GET" and endpoint.body_type is not None:
                continue  # a GET alias of a JSON method (token by query) is not advertised
            paths.setdefault(path, {})[method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Pyrus- and Planfix-compatible helpdesk API",
        },
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


#: Swagger UI from a CDN, pinned to one release and checked by the browser against the hashes
#: of that release's npm package (sha384 of swagger-ui-dist 5.35.0's files): a CDN serving
#: other bytes, or a moving "@5", cannot run its script on a page with the API document
SWAGGER_UI = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.35.0"
SWAGGER_CSS_SRI = "sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I"
SWAGGER_JS_SRI = "sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9"


def docs_page(title: str) -> str:
    """Swagger UI for /openapi.json (its scripts come from a CDN, see SWAGGER_UI)."""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title} API</title>
<link rel="stylesheet" href="{SWAGGER_UI}/swagger-ui.css"
 integrity="{SWAGGER_CSS_SRI}" crossorigin="anonymous">
</head><body><div id="swagger-ui"></div>
<script src="{SWAGGER_UI}/swagger-ui-bundle.js"
 integrity="{SWAGGER_JS_SRI}" crossorigin="anonymous"></script>
<script>SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui"}});</script>
<noscript>The API document is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body></html>"""
