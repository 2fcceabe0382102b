"""The frontdesk command: admin commands print their results and fail in one clear line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from frontdesk.cli import main


@pytest.fixture
def cli(database_url, tmp_path, monkeypatch, capsys):
    """Run `frontdesk ARGS...` in-process against the test database; returns (code, out, err)."""
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", database_url)
    monkeypatch.setenv("FRONTDESK_DATA_DIR", str(tmp_path / "var"))

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _json(output: str) -> dict:
    return json.loads(output)


def test_user_add_prints_id_email_and_security_key(cli):
    code, out, _ = cli(
        "user",
        "add",
        "--email",
        "Ann@Example.com",
        "--first-name",
        "Ann",
        "--last-name",
        "Lee",
        "--work-phone",
        "+7 (933) 876-20-30",
        "--password",
        "pw",
        "--json",
    )
    assert code == 0
    result = _json(out)
    assert result["email"] == "ann@example.com"
    assert isinstance(result["user_id"], int)
    assert len(result["security_key"]) >= 24


def test_duplicate_user_is_one_line_error(cli):
    args = ("user", "add", "--email", "a@b.c", "--first-name", "A", "--last-name", "B")
    assert cli(*args)[0] == 0
    code, out, err = cli(*args)
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1 and "already exists" in err
    assert "Traceback" not in err


def test_form_add_with_choice_field(cli):
    code, out, _ = cli(
        "form",
        "add",
        "--name",
        "Support",
        "--field",
        "Subject:text",
        "--field",
        "MessageType:choice:Telegram|VK",
        "--json",
    )
    assert code == 0
    assert isinstance(_json(out)["form_id"], int)


@pytest.mark.parametrize("field", ["Subject", "Subject:colour", "Kind:choice", ":text"])
def test_bad_field_specs_are_refused(cli, field):
    code, _, err = cli("form", "add", "--name", "F", "--field", field)
    assert code == 1
    assert err.startswith("frontdesk: error:") and err.count("\n") == 1


def test_extension_add_rotate_and_accounts(cli):
    _, out, _ = cli("form", "add", "--name", "F", "--field", "Subject:text", "--json")
    form_id = _json(out)["form_id"]
    code, out, _ = cli("extension", "add", "--name", "Bridge", "--url", "https://x.test/", "--json")
    assert code == 0
    extension = _json(out)
    assert extension["client_id"].startswith("ext@") and extension["secret"]
    code, out, _ = cli("extension", "rotate-secret", str(extension["extension_id"]), "--json")
    assert code == 0 and _json(out)["secret"] != extension["secret"]

    ext = str(extension["extension_id"])
    code, out, _ = cli(
        "account",
        "add",
        "--extension",
        ext,
        "--account-id",
        "bot1",
        "--form",
        str(form_id),
        "--routing",
        "always_new",
        "--json",
    )
    assert code == 0
    assert _json(out) == {
        "account_id": "bot1",
        "name": "bot1",
        "form_id": form_id,
        "routing": "always_new",
        "enabled": True,
    }
    code, out, _ = cli("account", "disable", "--extension", ext, "--account-id", "bot1", "--json")
    assert code == 0 and _json(out)["enabled"] is False
    assert cli("account", "enable", "--extension", ext, "--account-id", "bot1")[0] == 0


def test_account_errors(cli):
    _, out, _ = cli("extension", "add", "--name", "Bridge", "--json")
    ext = str(_json(out)["extension_id"])
    code, _, err = cli("account", "add", "--extension", ext, "--account-id", "a", "--form", "999")
    assert code == 1 and "No form 999" in err
    code, _, err = cli("account", "enable", "--extension", ext, "--account-id", "missing")
    assert code == 1 and "missing" in err
    code, _, err = cli("extension", "rotate-secret", "999")
    assert code == 1 and "No extension 999" in err


def test_demo_is_idempotent_and_prints_credentials(cli):
    code, out, _ = cli("demo", "--json")
    assert code == 0
    first = _json(out)
    assert first == {
        "extension": {"client_id": "unique12345@login.edu", "secret": "czWhgtoLnm****"},
        "account_id": "uniqueID12345",
        "agent": {
            "email": "agent@frontdesk.local",
            "password": "frontdesk-demo",
            "security_key": "demo-security-key-0000000000000000",
            "work_phone": "200",
        },
        "planfix": {
            "provider_id": "superchat",
            "planfix_token": "303cb962ac59075b964b07152d234b70",
        },
    }
    code, out, _ = cli("demo", "--json")
    assert code == 0 and _json(out) == first


def test_unmigrated_database_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    code = main(["extension", "add", "--name", "x"])
    err = capsys.readouterr().err
    assert code == 1
    assert "frontdesk migrate" in err


def test_migrate_then_commands_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    assert main(["migrate"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["extension", "add", "--name", "x"]) == 0


def test_python_dash_m_frontdesk():
    result = subprocess.run(
        [sys.executable, "-m", "frontdesk", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    for command in ("serve", "migrate", "demo", "user", "form", "extension", "account"):
        assert command in result.stdout


def test_user_rotate_key_prints_a_new_key(cli):
    args = ("user", "add", "--email", "r@b.c", "--first-name", "R", "--last-name", "B", "--json")
    created = _json(cli(*args)[1])
    code, out, _ = cli("user", "rotate-key", str(created["user_id"]), "--json")
    assert code == 0
    rotated = _json(out)
    assert rotated["user_id"] == created["user_id"]
    assert len(rotated["security_key"]) >= 24
    assert rotated["security_key"] != created["security_key"]
    code, out, err = cli("user", "rotate-key", "999999")
    assert code == 1 and out == "" and "No user 999999" in err
