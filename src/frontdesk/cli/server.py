"""serve, migrate, demo."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from frontdesk.cli import workers
from frontdesk.cli.output import emit
from frontdesk.core import demo
from frontdesk.settings import Settings
from frontdesk.storage import migrate
from frontdesk.storage.blobs import BlobStore
from frontdesk.storage.database import is_sqlite, open_database
from frontdesk.web import access_log
from frontdesk.web.http_protocol import HttpProtocol


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="migrate the database and serve HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers", type=int, default=1, help="processes (on SQLite keep 1: one writer is fastest)"
    )
    serve.add_argument("--demo", action="store_true", help="load the demo data first")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(handler=run_serve)

    migrate_cmd = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate_cmd.set_defaults(handler=run_migrate)

    demo_cmd = commands.add_parser("demo", help="load the demo data (idempotent)")
    demo_cmd.add_argument("--json", action="store_true")
    demo_cmd.set_defaults(handler=run_demo)


async def run_migrate(_args: argparse.Namespace) -> None:
    settings = Settings.from_env()
    await migrate.upgrade(settings.effective_database_url)
    print(f"database is up to date: {_redacted(settings.effective_database_url)}")


async def seed_demo(settings: Settings) -> demo.DemoCredentials:
    await migrate.upgrade(settings.effective_database_url)
    db = await open_database(settings.effective_database_url)
    try:
        return await db.write(demo.seed, BlobStore(settings.effective_files_dir))
    finally:
        await db.close()


async def run_demo(args: argparse.Namespace) -> None:
    credentials = await seed_demo(Settings.from_env())
    emit(credentials.as_json(), args.json)


def _redacted(url: str) -> str:
    """The URL without its password, for printing."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.split(':', 1)[0]}:***@{host}"


def _banner(args: argparse.Namespace, credentials: demo.DemoCredentials | None) -> str:
    base = f"http://{args.host}:{args.port}"
    lines = [
        f"Frontdesk on {base}",
        f"  Pyrus Extensions API v1: {base}/v1/   (POST {base}/v1/token)",
        f"  Pyrus API v4:            {base}/v4/   (POST {base}/v4/auth)",
        f"  Planfix chat API:        {base}/webchat/api",
        f"  API documents:           {base}/docs   {base}/openapi.json",
        f"  Health:                  {base}/healthz   {base}/readyz",
    ]
    if credentials is not None:
        agent = credentials.agent
        lines += [
            "Demo credentials:",
            f"  extension client_id: {credentials.client_id}",
            f"  extension secret:    {credentials.secret}",
            f"  account_id:          {credentials.account_id}",
            f"  agent:               {agent['email']} / {agent['password']} "
            f"(work phone {agent['work_phone']}, security key {agent['security_key']})",
            f"  planfix provider:    {credentials.planfix['provider_id']} "
            f"(planfix_token {credentials.planfix['planfix_token']})",
            "Try:",
            f"  curl -s -X POST {base}/v1/token -H 'Content-Type: application/json' "
            f'-d \'{{"client_id": "{credentials.client_id}", '
            f'"secret": "{credentials.secret}"}}\'',
        ]
    return "\n".join(lines)


def run_serve(args: argparse.Namespace) -> None:
    settings = Settings.from_env()
    url = settings.effective_database_url
    asyncio.run(migrate.upgrade(url))
    credentials = asyncio.run(seed_demo(settings)) if args.demo else None
    if args.workers > 1 and is_sqlite(url):
        print(
            "warning: several workers on one SQLite file contend for its write lock; "
            "use PostgreSQL to scale out",
            file=sys.stderr,
        )
    print(_banner(args, credentials), flush=True)
    options: dict[str, Any] = {
        "app": "frontdesk.app:app_from_env",
        "factory": True,
        "loop": "uvloop",
        "http": HttpProtocol,  # httptools, a response's writes joined
        "access_log": args.access_log,
        "log_config": access_log.log_config(),
        "log_level": settings.log_level.lower(),
        "timeout_graceful_shutdown": 10,
    }
    workers.serve(options, args.host, args.port, args.workers)
