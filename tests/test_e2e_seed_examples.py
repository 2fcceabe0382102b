"""`frontdesk serve --demo` as a real process, and every curl example of the Extensions API v1
document replayed verbatim with real curl — only the host and the bearer token replaced.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from factories import served

SEED = Path(__file__).parent / "fixtures" / "seeds" / "pyrus-extensions-api-v1.txt"
DOC_HOST = "https://extensions.pyrus.com"

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


def seed_examples() -> list[list[str]]:
    """The curl commands of the document, as argument lists."""
    commands = []
    for line in SEED.read_text().splitlines():
        if line.startswith("curl "):
            commands.append(shlex.split(line.replace(" \\ ", " ")))
    return commands


@pytest.fixture
def server(database_url, tmp_path):
    with served(database_url, tmp_path, "--demo") as base:
        yield base


def run_curl(args: list[str], base: str, token: str, upload_file: Path) -> tuple[int, str, str]:
    """Run one document example: host and token replaced, the Windows path made real."""
    replaced = []
    for arg in args[1:]:
        arg = arg.replace(DOC_HOST, base).replace("<your_access_token>", token)
        arg = re.sub(r"=@C:\\.*$", f"=@{upload_file}", arg)
        replaced.append(arg)
    result = subprocess.run(
        ["curl", "-sS", "-D", "-", *replaced],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
    status = int(head.split()[1])
    return status, head.lower(), body


def test_every_curl_example_of_the_document_works(server, tmp_path):
    examples = {args[3].rsplit("/v1/", 1)[1]: args for args in seed_examples()}
    assert set(examples) == {
        "token",
        "task",
        "comment",
        "getmessage",
        "call",
        "attachcallrecord",
        "files/upload",
        "files/download/123",
    }
    upload_file = tmp_path / "filename.jpg"
    upload_file.write_bytes(b"\xff\xd8\xff\xe0 a jpeg")

    status, _, body = run_curl(examples.pop("token"), server, "", upload_file)
    assert status == 200, body
    token = json.loads(body)["access_token"]

    answers = {}
    for name, args in examples.items():
        status, head, body = run_curl(args, server, token, upload_file)
        assert status == 200, f"{name}: {status} {body}"
        answers[name] = (head, body)
        if not name.startswith("files/download"):
            assert "error_code" not in json.loads(body), f"{name}: {body}"

    task = json.loads(answers["task"][1])
    assert task["task_ids"] == [task["tasks"][0]["task_id"]]
    message = json.loads(answers["getmessage"][1])["tasks"][0]
    assert message["is_new_task"] is True
    call = json.loads(answers["call"][1])["tasks"][0]
    assert call["responsible_person"]["work_phone"] == "200"
    # the caller of the demo's call task: the example joins that conversation
    assert (call["task_id"], call["is_new_task"]) == (45873, False)
    uploaded = json.loads(answers["files/upload"][1])
    assert uploaded["md5_hash"] == hashlib.md5(upload_file.read_bytes()).hexdigest()
    head, body = answers["files/download/123"]
    assert body == "hello world!"
    assert "content-length: 12" in head
    assert "content-type: application/octet-stream" in head
    assert 'content-disposition: attachment; filename="test.txt"' in head


def test_examples_replay_again_after_restart(server, tmp_path):
    """The demo is idempotent and the examples stay valid after they ran once."""
    examples = {args[3].rsplit("/v1/", 1)[1]: args for args in seed_examples()}
    upload_file = tmp_path / "filename.jpg"
    upload_file.write_bytes(b"x")
    _, _, body = run_curl(examples["token"], server, "", upload_file)
    token = json.loads(body)["access_token"]
    for name in ("getmessage", "attachcallrecord", "comment", "getmessage"):
        status, _, body = run_curl(examples[name], server, token, upload_file)
        assert status == 200 and "error_code" not in body, f"{name}: {body}"
    second = json.loads(body)["tasks"][0]
    assert second["is_new_task"] is False


def test_the_banner_names_every_surface_and_the_demo_keys(server, tmp_path):
    banner = (tmp_path / "serve.log").read_text()
    for line in (
        f"Pyrus Extensions API v1: {server}/v1/",
        f"Pyrus API v4:            {server}/v4/",
        f"Planfix chat API:        {server}/webchat/api",
        "extension client_id: unique12345@login.edu",
        "security key demo-security-key-0000000000000000",
        "planfix provider:    superchat (planfix_token 303cb962ac59075b964b07152d234b70)",
    ):
        assert line in banner, line
