"""planfix add | list | set-url | rotate-token: the chat systems that post to /webchat/api."""

from __future__ import annotations

import argparse
from typing import Any

from frontdesk.cli.admin import write
from frontdesk.cli.output import emit
from frontdesk.core import planfix
from frontdesk.core.extensions import ROUTINGS


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def register(commands: Any) -> None:
    group = commands.add_parser("planfix", help="Planfix chat integrations (chat systems)")
    actions = group.add_subparsers(dest="action", required=True)
    add = actions.add_parser(
        "add", help="let a chat system post to /webchat/api; prints its planfix_token once"
    )
    add.add_argument("--provider-id", required=True, help="the chat system's providerId")
    add.add_argument("--url", required=True, help="where agents' answers are sent (newMessage)")
    add.add_argument("--token", required=True, help="the chat system's key, sent with answers")
    add.add_argument("--form", type=int, metavar="FORM_ID", help="default: a new empty form")
    add.add_argument(
        "--default-agent", metavar="EMAIL", help="who echo messages without a known userEmail are"
    )
    add.add_argument("--routing", choices=ROUTINGS, default="reuse_open")
    _json_flag(add)
    add.set_defaults(handler=planfix_add)
    listing = actions.add_parser("list", help="every integration (keys are not shown)")
    _json_flag(listing)
    listing.set_defaults(handler=planfix_list)
    set_url = actions.add_parser("set-url", help="where answers go; those not sent follow")
    set_url.add_argument("--provider-id", required=True)
    set_url.add_argument("--url", required=True, help="the chat system's endpoint for newMessage")
    _json_flag(set_url)
    set_url.set_defaults(handler=planfix_set_url)
    rotate = actions.add_parser(
        "rotate-token", help="a new planfix_token; the old one stops working at once"
    )
    rotate.add_argument("--provider-id", required=True)
    _json_flag(rotate)
    rotate.set_defaults(handler=planfix_rotate)


async def planfix_add(args: argparse.Namespace) -> None:
    new = await write(
        planfix.add_integration,
        args.provider_id,
        args.url,
        args.token,
        form_id=args.form,
        default_agent_email=args.default_agent,
        routing=args.routing,
    )
    emit(
        {
            "integration_id": new.integration_id,
            "provider_id": new.provider_id,
            "planfix_token": new.planfix_token,
            "form_id": new.form_id,
        },
        args.json,
    )


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}


async def planfix_list(args: argparse.Namespace) -> None:
    rows = await write(planfix.list_integrations)
    if args.json:
        emit({"integrations": [_shown(row) for row in rows]}, True)
        return
    for row in rows:
        url = row["provider_url"] or "(answers not sent)"
        print(f"{row['id']:>4}  {row['provider_id']:<24} form {row['form_id']:<4} {url}")


async def planfix_rotate(args: argparse.Namespace) -> None:
    token = await write(planfix.rotate_token, args.provider_id)
    emit({"provider_id": args.provider_id, "planfix_token": token}, args.json)


async def planfix_set_url(args: argparse.Namespace) -> None:
    done = await write(planfix.set_url, args.provider_id, args.url)
    emit({"provider_id": args.provider_id, "url": done.url, "repointed": done.repointed}, args.json)
