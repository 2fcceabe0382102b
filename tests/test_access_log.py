"""`serve --access-log`: every request is logged, and no credential sent in a query string."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from frontdesk.web.access_log import redacted

from factories import served


@pytest.mark.parametrize(
    "path, shown",
    [
        ("/v1/getmessage", "/v1/getmessage"),
        ("/v4/forms/1/register?item_count=5", "/v4/forms/1/register?item_count=5"),
        (
            "/v1/token?client_id=bot%40example.com&secret=s3cr%26t",
            "/v1/token?client_id=bot%40example.com&secret=***",
        ),
        (
            "/v4/auth?login=a%40b.c&Security_Key=k&person_id=3",
            "/v4/auth?login=a%40b.c&Security_Key=***&person_id=3",
        ),
        ("/f/1?expires=99&sig=abc", "/f/1?expires=99&sig=***"),
        ("/x?secret=a&secret=b", "/x?secret=***&secret=***"),
        ("/x?sec%72et=a", "/x?sec%72et=***"),  # (the name as a server decodes it)
        ("/x?secret", "/x?secret"),
    ],
)
def test_secret_query_values_are_hidden(path: str, shown: str) -> None:
    assert redacted(path) == shown


def test_the_served_access_log_holds_no_credentials(database_url: str, tmp_path: Path) -> None:
    secret, key = "czWhgtoLnm****", "demo-security-key-0000000000000000"
    with served(database_url, tmp_path, "--demo", "--access-log") as base:
        token = httpx.get(
            f"{base}/v1/token", params={"client_id": "unique12345@login.edu", "secret": secret}
        )
        assert token.status_code == 200, token.text
        auth = httpx.get(
            f"{base}/v4/auth", params={"login": "agent@frontdesk.local", "security_key": key}
        )
        assert auth.status_code == 200, auth.text
    # (the banner above them shows the demo credentials, as `make run` should)
    log = "\n".join(
        line for line in (tmp_path / "serve.log").read_text().splitlines() if " HTTP/1.1" in line
    )
    assert 'GET /v1/token?client_id=unique12345%40login.edu&secret=*** HTTP/1.1" 200' in log
    assert "GET /v4/auth?login=agent%40frontdesk.local&security_key=*** HTTP/1.1" in log
    for credential in (secret, "czWhgtoLnm", key, token.json()["access_token"]):
        assert credential not in log
