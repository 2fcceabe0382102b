"""worker, deliveries, extension show, account connect."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import mimetypes
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from frontdesk.app import tune_garbage_collector
from frontdesk.cli.output import CommandError, emit
from frontdesk.core import extensions, files, outbox, outbox_admin, replies
from frontdesk.delivery.authorize import connect_account
from frontdesk.delivery.service import delivering, outbound_from
from frontdesk.settings import Settings
from frontdesk.storage.blobs import BlobStore
from frontdesk.storage.database import Database, open_database

#: read size when copying a file into the store
FILE_CHUNK = 1024 * 1024


@asynccontextmanager
async def database() -> AsyncIterator[tuple[Settings, Database]]:
    settings = Settings.from_env()
    db = await open_database(settings.effective_database_url)
    try:
        yield settings, db
    finally:
        await db.close()


def register(commands: Any) -> None:
    worker = commands.add_parser(
        "worker", help="send the outbox (run beside `serve` with FRONTDESK_DELIVERY_IN_PROCESS=0)"
    )
    worker.set_defaults(handler=run_worker)

    found = commands.add_parser("deliveries", help="outbound webhooks")
    actions = found.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the newest deliveries")
    listing.add_argument("--status", choices=outbox.STATUSES)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=deliveries_list)
    show = actions.add_parser("show", help="a delivery, its request and every attempt")
    show.add_argument("delivery", type=int, metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=deliveries_show)
    again = actions.add_parser("redeliver", help="send finished deliveries again")
    again.add_argument("deliveries", type=int, nargs="+", metavar="ID")
    again.add_argument("--json", action="store_true")
    again.set_defaults(handler=deliveries_redeliver)
    register_reply(commands)


def register_reply(commands: Any) -> None:
    reply = commands.add_parser(
        "reply", help="answer the customer in a task: a comment sent to its chat channels"
    )
    reply.add_argument("task_id", type=int, metavar="TASK_ID")
    reply.add_argument("--text", default="")
    reply.add_argument("--file", action="append", default=[], type=Path, metavar="PATH")
    reply.add_argument("--as", dest="author", metavar="EMAIL", help="the agent who answers")
    reply.add_argument("--json", action="store_true")
    reply.set_defaults(handler=reply_to_customer)


def register_account_connect(accounts: Any) -> None:
    connect = accounts.add_parser(
        "connect", help="POST /authorize to the extension; create the account it answers"
    )
    connect.add_argument("--extension", type=int, required=True, metavar="ID")
    connect.add_argument("--form", type=int, required=True, metavar="FORM_ID")
    connect.add_argument(
        "--credential", action="append", default=[], metavar="CODE=VALUE", help="repeatable"
    )
    connect.add_argument("--routing", choices=extensions.ROUTINGS, default="reuse_open")
    connect.add_argument("--json", action="store_true")
    connect.set_defaults(handler=account_connect)


def register_extension_show(extension_commands: Any) -> None:
    show = extension_commands.add_parser("show", help="an extension and its last pulse")
    show.add_argument("extension_id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=extension_show)


async def run_worker(_args: argparse.Namespace) -> None:
    # SIGTERM (what Docker, systemd and Kubernetes send) stops the worker as Ctrl-C does: the
    # sends under way end and the rows claimed ahead go back. Left to its default it killed
    # the process, and those rows waited for their leases, counted as an attempt.
    stopping = asyncio.Event()
    with contextlib.suppress(NotImplementedError):  # (no such handlers on Windows)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    async with database() as (settings, db), delivering(settings, db):
        # as `frontdesk serve` does: with the collector untuned, full collections walking
        # every long-lived object cost a sixth of the worker's CPU (bench/deliveries.py)
        tune_garbage_collector()
        await stopping.wait()  # until SIGTERM, or interrupted (SIGINT)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}


async def deliveries_list(args: argparse.Namespace) -> None:
    async with database() as (_settings, db):
        rows = await db.read(outbox_admin.list_deliveries, args.status, args.limit)
    if args.json:
        emit({"deliveries": [_jsonable(row) for row in rows]}, True)
        return
    for row in rows:
        error = f"  {row['last_error']}" if row["last_error"] else ""
        print(
            f"{row['id']:>6}  {row['status']:<7} {row['attempts']}/{row['max_attempts']}  "
            f"{row['kind']:<12} {row['url']}{error}"
        )


async def deliveries_show(args: argparse.Namespace) -> None:
    async with database() as (_settings, db):
        shown = await db.read(outbox_admin.show_delivery, args.delivery)
    shown["attempt_log"] = [_jsonable(attempt) for attempt in shown["attempt_log"]]
    emit(_jsonable(shown), args.json)


async def deliveries_redeliver(args: argparse.Namespace) -> None:
    async with database() as (_settings, db):
        done = await db.write(outbox_admin.redeliver, args.deliveries)
    emit({"redelivered": done}, args.json)


async def extension_show(args: argparse.Namespace) -> None:
    async with database() as (_settings, db):
        row = await db.read(extensions.get_extension, args.extension_id)
    shown = {k: row[k] for k in ("id", "name", "client_id", "base_url", "pulse_at", "pulse_result")}
    emit(_jsonable(shown), args.json)


def _credentials(pairs: list[str]) -> list[tuple[str, str]]:
    parsed = []
    for pair in pairs:
        code, sep, value = pair.partition("=")
        if not sep or not code:
            raise CommandError(f"--credential {pair!r}: expected CODE=VALUE")
        parsed.append((code, value))
    return parsed


async def account_connect(args: argparse.Namespace) -> None:
    credentials = _credentials(args.credential)
    async with database() as (settings, db):
        outbound = outbound_from(settings)
        try:
            connected = await connect_account(
                db, outbound, args.extension, args.form, credentials, args.routing
            )
        finally:
            await outbound.close()
    emit(
        {
            "account_id": connected.account_id,
            "name": connected.account_name,
            "form_id": connected.form_id,
        },
        args.json,
    )


async def _store_file(settings: Settings, db: Database, path: Path, user_id: int | None) -> int:
    """The file's bytes into the file store, streamed, then its row; returns the file id."""
    blobs = BlobStore(settings.effective_files_dir)
    writer = blobs.writer(settings.max_upload_bytes)
    try:
        with path.open("rb") as source:
            while chunk := source.read(FILE_CHUNK):
                await writer.write(chunk)
        blob = await writer.finish()
    except BaseException:
        await writer.discard()
        raise
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return await files.keep_upload(db, blobs, blob, path.name, content_type, user_id=user_id)


async def reply_to_customer(args: argparse.Namespace) -> None:
    async with database() as (settings, db):
        author = None
        if args.author:
            author = await db.read(replies.author_by_email, args.author)
        user_id = None if author is None else author.user_id
        file_ids = [await _store_file(settings, db, path, user_id) for path in args.file]
        sent = await db.write(replies.reply_to_customer, args.task_id, args.text, file_ids, author)
    emit(
        {"task_id": args.task_id, "comment_id": sent.comment_id, "sendmessage_queued": sent.queued},
        args.json,
    )
