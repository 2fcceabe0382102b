"""user, form, extension and account administration."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from frontdesk.cli.delivery import register_account_connect, register_extension_show
from frontdesk.cli.output import CommandError, emit
from frontdesk.core import extension_hooks, extensions, forms, users
from frontdesk.core.field_values import FIELD_TYPES
from frontdesk.core.forms import FieldSpec
from frontdesk.settings import Settings
from frontdesk.storage.database import open_database

T = TypeVar("T")


async def write(work: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    """Run one unit of work against the configured database."""
    settings = Settings.from_env()
    db = await open_database(settings.effective_database_url)
    try:
        return await db.write(work, *args, **kwargs)
    finally:
        await db.close()


def parse_field(spec: str) -> FieldSpec:
    """CODE:TYPE or CODE:TYPE:option|option|..."""
    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise CommandError(f"--field {spec!r}: expected CODE:TYPE[:choice|choice...]")
    choices = tuple(c.strip() for c in parts[2].split("|") if c.strip()) if len(parts) > 2 else ()
    return FieldSpec(parts[0], parts[1], parts[0], choices)


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _register_users(commands: Any) -> None:
    user = commands.add_parser("user", help="agents").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="add an agent; prints the security key once")
    add.add_argument("--email", required=True)
    add.add_argument("--first-name", required=True)
    add.add_argument("--last-name", required=True)
    add.add_argument("--work-phone", help="matched against a PBX internal_number")
    add.add_argument("--password", help="for the web UI")
    _json_flag(add)
    add.set_defaults(handler=user_add)
    rotate = user.add_parser(
        "rotate-key", help="a new API v4 security key; tokens issued with the old one stop working"
    )
    rotate.add_argument("user_id", type=int, metavar="ID")
    _json_flag(rotate)
    rotate.set_defaults(handler=user_rotate_key)


async def user_add(args: argparse.Namespace) -> None:
    new = await write(
        users.add_user,
        args.email,
        args.first_name,
        args.last_name,
        work_phone=args.work_phone,
        password=args.password,
    )
    emit({"user_id": new.user_id, "email": new.email, "security_key": new.security_key}, args.json)


async def user_rotate_key(args: argparse.Namespace) -> None:
    key = await write(users.rotate_security_key, args.user_id)
    emit({"user_id": args.user_id, "security_key": key}, args.json)


def _register_forms(commands: Any) -> None:
    form = commands.add_parser("form", help="forms").add_subparsers(dest="action", required=True)
    add = form.add_parser("add", help="add a form with fields")
    add.add_argument("--name", required=True)
    add.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="CODE:TYPE[:a|b]",
        help="repeat for each field; types: " + ", ".join(FIELD_TYPES),
    )
    _json_flag(add)
    add.set_defaults(handler=form_add)


async def form_add(args: argparse.Namespace) -> None:
    specs = [parse_field(spec) for spec in args.field]
    form_id = await write(forms.add_form, args.name, specs)
    emit({"form_id": form_id}, args.json)


def _register_extensions(commands: Any) -> None:
    ext = commands.add_parser("extension", help="extensions (connectors)").add_subparsers(
        dest="action", required=True
    )
    add = ext.add_parser("add", help="add an extension; prints its client_id and secret")
    add.add_argument("--name", required=True)
    add.add_argument("--url", help="the extension service's base URL (for webhooks)")
    _json_flag(add)
    add.set_defaults(handler=extension_add)
    set_url = ext.add_parser("set-url", help="where webhooks go; deliveries not sent follow")
    set_url.add_argument("extension_id", type=int)
    set_url.add_argument("url", help="the extension service's base URL")
    _json_flag(set_url)
    set_url.set_defaults(handler=extension_set_url)
    rotate = ext.add_parser("rotate-secret", help="new secret; revokes every token issued")
    rotate.add_argument("extension_id", type=int)
    _json_flag(rotate)
    rotate.set_defaults(handler=extension_rotate)
    register_extension_show(ext)


async def extension_add(args: argparse.Namespace) -> None:
    new = await write(extensions.add_extension, args.name, args.url)
    emit(
        {"extension_id": new.extension_id, "client_id": new.client_id, "secret": new.secret},
        args.json,
    )


async def extension_set_url(args: argparse.Namespace) -> None:
    done = await write(extensions.set_base_url, args.extension_id, args.url)
    emit(
        {"extension_id": args.extension_id, "url": done.url, "repointed": done.repointed},
        args.json,
    )


async def extension_rotate(args: argparse.Namespace) -> None:
    secret = await write(extensions.rotate_secret, args.extension_id)
    emit({"extension_id": args.extension_id, "secret": secret}, args.json)


def _register_accounts(commands: Any) -> None:
    acc = commands.add_parser("account", help="extension accounts").add_subparsers(
        dest="action", required=True
    )
    add = acc.add_parser("add", help="connect an account of an extension to a form")
    add.add_argument("--extension", type=int, required=True, metavar="ID")
    add.add_argument("--account-id", required=True)
    add.add_argument("--form", type=int, required=True, metavar="FORM_ID")
    add.add_argument("--name")
    add.add_argument("--routing", choices=extensions.ROUTINGS, default="reuse_open")
    _json_flag(add)
    add.set_defaults(handler=account_add)
    for action, enabled in (("enable", True), ("disable", False)):
        toggle = acc.add_parser(action, help=f"{action} an account")
        toggle.add_argument("--extension", type=int, required=True, metavar="ID")
        toggle.add_argument("--account-id", required=True)
        _json_flag(toggle)
        toggle.set_defaults(handler=account_toggle, enabled=enabled)
    register_account_connect(acc)


async def account_add(args: argparse.Namespace) -> None:
    account = await write(
        extensions.add_account,
        args.extension,
        args.account_id,
        args.form,
        name=args.name,
        routing=args.routing,
    )
    emit(
        {
            "account_id": account.account_id,
            "name": account.name,
            "form_id": account.form_id,
            "routing": account.routing,
            "enabled": account.enabled,
        },
        args.json,
    )


async def account_toggle(args: argparse.Namespace) -> None:
    """Enable or disable, and tell the extension (POST /toggle, through the outbox)."""
    notified = await write(
        extension_hooks.toggle_account, args.extension, args.account_id, args.enabled
    )
    emit(
        {"account_id": args.account_id, "enabled": args.enabled, "toggle_queued": notified},
        args.json,
    )


def register(commands: Any) -> None:
    _register_users(commands)
    _register_forms(commands)
    _register_extensions(commands)
    _register_accounts(commands)
