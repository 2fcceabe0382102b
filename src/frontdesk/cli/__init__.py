"""The `frontdesk` command: serve, migrate, demo and the admin commands.

Every failure prints one line to stderr and exits non-zero; -v adds the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import traceback
from collections.abc import Sequence

import uvloop
from pydantic import ValidationError

from frontdesk.cli import admin, delivery, planfix, server
from frontdesk.cli.output import CommandError
from frontdesk.errors import FrontdeskError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="frontdesk",
        description="Self-hosted helpdesk speaking the Pyrus and Planfix protocols. "
        "Settings come from FRONTDESK_* environment variables "
        "(FRONTDESK_DATABASE_URL, FRONTDESK_DATA_DIR, ...).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    server.register(commands)
    admin.register(commands)
    delivery.register(commands)
    planfix.register(commands)
    return parser


def _database_missing(exc: BaseException) -> bool:
    text = str(exc)
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = args.handler(args)
        if asyncio.iscoroutine(result):
            # the loop `frontdesk serve` runs on: `frontdesk worker` sends as fast as it does
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                result = runner.run(result)
        return int(result or 0)
    except KeyboardInterrupt:
        return 130
    except (FrontdeskError, CommandError, ValidationError, ValueError, OSError) as exc:
        message = exc.message if isinstance(exc, FrontdeskError) else str(exc)
        print(f"frontdesk: error: {' '.join(message.split())}", file=sys.stderr)
    except Exception as exc:
        if _database_missing(exc):
            print(
                "frontdesk: error: the database is not migrated; run `frontdesk migrate`",
                file=sys.stderr,
            )
        else:
            print(f"frontdesk: error: {type(exc).__name__}: {exc}", file=sys.stderr)
    if args.verbose:
        traceback.print_exc()
    return 1
