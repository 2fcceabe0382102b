"""`frontdesk serve --demo` as a real process, and every curl example of the Extensions API v1
document replayed verbatim with real curl — only the host and the bearer token replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(database_url, tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "FRONTDESK_DATABASE_URL": database_url,
        "FRONTDESK_DATA_DIR": str(tmp_path / "var"),
    }
    log = tmp_path / "serve.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "frontdesk", "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base, process, log)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_until_healthy(base: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"frontdesk serve exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("frontdesk serve did not become healthy in 60 s")


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
