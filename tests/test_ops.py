"""Liveness, readiness and the OpenAPI document."""

from __future__ import annotations

import re


async def test_healthz_and_readyz(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ok"}


async def test_readyz_is_503_when_the_database_is_gone(client):
    await client.app.state.ctx.db.close()
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"


async def test_openapi_document_describes_every_v1_method_and_body(client):
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    for method in (
        "token",
        "task",
        "comment",
        "getmessage",
        "call",
        "attachcallrecord",
        "files/upload",
    ):
        assert f"/v1/{method}" in paths, method
    body = paths["/v1/getmessage"]["post"]["requestBody"]["content"]["application/json"]
    schema = body["schema"]
    assert schema["required"] == ["account_id", "channel_id"]
    assert "message_text" in schema["properties"]
    mappings = schema["properties"]["mappings"]  # (a list, or null for none)
    mapping = next(s for s in mappings.get("anyOf", [mappings]) if s.get("type") == "array")[
        "items"
    ]
    assert "code" in mapping["properties"]
    assert "200" in paths["/v1/getmessage"]["post"]["responses"]
    assert "get" in paths["/v1/files/download/{file_id}"]
    assert paths["/v1/files/download/{file_id}"]["get"]["parameters"][0]["name"] == "file_id"


async def test_docs_page_shows_the_document(client):
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in page.text and 'url: "/openapi.json"' in page.text
    # what comes from elsewhere is one release, and the browser checks its bytes
    tags = re.findall(r"<(?:script|link)\b[^>]*>", page.text)
    external = [tag for tag in tags if "http" in tag]
    assert len(external) == 2
    for tag in external:
        assert re.search(r'integrity="sha384-[A-Za-z0-9+/]{64}"', tag), tag
        assert 'crossorigin="anonymous"' in tag
        assert re.search(r"@\d+\.\d+\.\d+/", tag), tag


async def test_every_get_of_the_server_answers_head_alike_without_a_body(client):
    """RFC 9110 §9.3.2: HEAD is served wherever GET is (uptime monitors ask with HEAD)."""
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        got = await client.get(path)
        head = await client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert head.headers["content-length"] == str(len(got.content)), path
        assert head.headers["content-type"] == got.headers["content-type"], path
        assert head.content == b""


async def test_a_head_answer_sends_no_body_bytes_to_the_server(client):
    """What the app hands the server for a HEAD: the GET's head, then an empty body (the
    test client and uvicorn each drop a HEAD's body themselves, so this is asked of the app
    directly)."""
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    for path in ("/healthz", "/v1/files/download/1"):  # (Litestar's, and an endpoint's)
        sent.clear()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "HEAD",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"test")],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        await client.app(scope, receive, send)
        start, *bodies = sent
        length = dict(start["headers"])[b"content-length"]  # type: ignore[call-overload]
        assert int(length) > 0, path
        assert [body["body"] for body in bodies] == [b""], path


async def test_a_wrong_method_on_a_framework_route_names_the_served_ones(client):
    """RFC 9110: a 405 carries Allow (Litestar's own 405 had none)."""
    refused = await client.post("/healthz")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, HEAD, OPTIONS"  # (Litestar answers OPTIONS)
    assert refused.json() == {
        "error_code": "invalid_request",
        "error": "POST is not served here; use GET or HEAD or OPTIONS",
    }
    assert (await client.options("/healthz")).status_code == 204
