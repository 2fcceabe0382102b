"""`frontdesk planfix add | list | rotate-token`, the demo's sample provider, and the
document's sample calls sent by curl to a real `frontdesk serve --demo`."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess

import pytest

from frontdesk.cli import main

from factories import (
    PLANFIX_TOKEN,
    make_agent,
    make_form,
    planfix_call,
    planfix_seed_sample,
    served,
)


@pytest.fixture
def cli(database_url, tmp_path, monkeypatch, capsys):
    """`frontdesk ARGS...` in-process (on a thread: it runs its own event loop)."""
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", database_url)
    monkeypatch.setenv("FRONTDESK_DATA_DIR", str(tmp_path / "var"))

    async def run(*args: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


ADD = ("planfix", "add", "--provider-id", "superchat", "--url", "https://chat.example/pf")


def message(token: str, chat_id: str = "c-1") -> dict[str, str]:
    return {
        "cmd": "newMessage",
        "providerId": "superchat",
        "chatId": chat_id,
        "planfix_token": token,
        "message": "Hi",
    }


async def test_add_prints_the_key_once_and_the_key_works(client, cli):
    await make_agent(client, email="lead@example.com")
    form_id = await make_form(client)
    code, out, err = await cli(
        *ADD,
        "--token",
        "t-1",
        "--form",
        str(form_id),
        "--default-agent",
        "lead@example.com",
        "--json",
    )
    assert code == 0, err
    added = json.loads(out)
    assert re.fullmatch(r"[0-9a-f]{32}", added["planfix_token"])
    assert (added["provider_id"], added["form_id"]) == ("superchat", form_id)
    response = await planfix_call(client, message(added["planfix_token"]))
    assert response.status_code == 200, response.text

    code, out, _ = await cli("planfix", "list", "--json")
    [listed] = json.loads(out)["integrations"]
    assert (listed["provider_id"], listed["provider_url"], listed["form_id"]) == (
        "superchat",
        "https://chat.example/pf",
        form_id,
    )
    assert added["planfix_token"] not in out and "t-1" not in out  # keys are not shown
    code, out, _ = await cli("planfix", "list")
    assert code == 0 and "superchat" in out


async def test_without_a_form_the_provider_gets_one(client, cli):
    code, out, err = await cli(*ADD, "--token", "t-1", "--json")
    assert code == 0, err
    assert isinstance(json.loads(out)["form_id"], int)


async def test_rotate_token_retires_the_old_key_at_once(client, cli):
    _, out, _ = await cli(*ADD, "--token", "t-1", "--json")
    old = json.loads(out)["planfix_token"]
    code, out, _ = await cli("planfix", "rotate-token", "--provider-id", "superchat", "--json")
    assert code == 0
    new = json.loads(out)["planfix_token"]
    assert new != old
    assert (await planfix_call(client, message(old))).status_code == 401
    assert (await planfix_call(client, message(new))).status_code == 200


@pytest.mark.parametrize(
    ("args", "message_part"),
    [
        (("--provider-id", "super~chat", "--url", "https://c.example", "--token", "t"), "~"),
        (("--provider-id", "p", "--url", "ftp://c.example", "--token", "t"), "http"),
        (("--provider-id", "p", "--url", "https://c", "--token", "t", "--form", "999"), "form"),
        (
            (
                "--provider-id",
                "p",
                "--url",
                "https://c",
                "--token",
                "t",
                "--default-agent",
                "x@y.z",
            ),
            "x@y.z",
        ),
    ],
)
async def test_bad_additions_fail_in_one_line(client, cli, args, message_part):
    code, out, err = await cli("planfix", "add", *args)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and message_part in err and "Traceback" not in err


async def test_a_second_provider_of_one_id_and_an_unknown_rotation_fail(client, cli):
    assert (await cli(*ADD, "--token", "t"))[0] == 0
    code, _, err = await cli(*ADD, "--token", "t")
    assert code == 1 and "already exists" in err
    code, _, err = await cli("planfix", "rotate-token", "--provider-id", "nobody")
    assert code == 1 and "nobody" in err


async def test_demo_json_names_the_sample_provider(client, cli):
    code, out, err = await cli("demo", "--json")
    assert code == 0, err
    assert json.loads(out)["planfix"] == {
        "provider_id": "superchat",
        "planfix_token": PLANFIX_TOKEN,
    }
    assert (await cli("demo", "--json"))[1] == out  # idempotent


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_documents_samples_by_curl_against_a_real_server(database_url, tmp_path):
    def curl(path: str, fields: list[tuple[str, str]]) -> tuple[int, dict]:
        form = [arg for key, value in fields for arg in ("--data-urlencode", f"{key}={value}")]
        done = subprocess.run(
            ["curl", "-sS", "-w", "\n%{http_code}", *form, f"{base}{path}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        body, _, status = done.stdout.rpartition("\n")
        return int(status), json.loads(body)

    with served(database_url, tmp_path, "--demo") as base:
        status, created = curl(*planfix_seed_sample("newMessage"))
        assert status == 200 and created["isNewTask"] is True
        status, found = curl(*planfix_seed_sample("getTask"))
        assert (status, found) == (200, {"number": created["number"]})
        status, again = curl(*planfix_seed_sample("newMessage"))
        assert (status, again) == (200, {"number": created["number"], "isNewTask": False})
