"""The ``wayline`` command line: ``wayline dev`` runs the local dev server."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from .devserver.claim import StartupError
from .devserver.server import DevConfig, serve
from .engine.urls import check_app_url
from .errors import ValidationError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wayline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="run the local dev server (SQLite, one process)")
    dev.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    dev.add_argument("--port", type=int, default=8288, help="port (default 8288)")
    dev.add_argument(
        "-u",
        "--sdk-url",
        dest="urls",
        action="append",
        default=[],
        metavar="APP_URL",
        type=_app_url,
        help="serve URL of an app to sync (repeatable; loopback and private addresses "
        "allowed, cloud metadata and link-local never)",
    )
    dev.add_argument(
        "--db",
        default=os.environ.get("WAYLINE_DEV_DB", ".wayline/dev.sqlite3"),
        help="SQLite file holding all state (default .wayline/dev.sqlite3; ':memory:' for none)",
    )
    dev.add_argument(
        "--retry-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="retry failed steps after this fixed interval instead of the "
        "backoff table (15s, 30s, 1m ...)",
    )
    dev.add_argument(
        "--signing-key",
        default=os.environ.get("WAYLINE_SIGNING_KEY") or os.environ.get("INNGEST_SIGNING_KEY"),
        help="sign calls to apps and require it on the API (env "
        "WAYLINE_SIGNING_KEY / INNGEST_SIGNING_KEY)",
    )
    dev.add_argument(
        "--signing-key-fallback",
        default=os.environ.get("WAYLINE_SIGNING_KEY_FALLBACK")
        or os.environ.get("INNGEST_SIGNING_KEY_FALLBACK"),
    )
    dev.add_argument(
        "--event-key",
        dest="event_keys",
        action="append",
        default=[],
        help="accept only these event keys on /e/{key} (default: any)",
    )
    dev.add_argument(
        "--test-api",
        action="store_true",
        help="enable POST /test/clock (move the server clock forward) for tests",
    )
    dev.add_argument(
        "--app",
        default=None,
        metavar="MODULE:ATTR",
        help="also serve this ASGI app in-process and sync it, e.g. examples.quickstart.app:app",
    )
    dev.add_argument("--app-port", type=int, default=3000, help="port for --app (default 3000)")
    return parser


def _app_url(text: str) -> str:
    """``-u`` URLs pass the same SSRF checks as registered ones (private targets allowed,
    as for every app of the dev server); the error never repeats the URL (credentials)."""
    try:
        return check_app_url(text, field="app URL", allow_private=True)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("WAYLINE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "dev":
        config = DevConfig(
            host=args.host,
            port=args.port,
            urls=tuple(args.urls),
            db=args.db,
            retry_interval_s=args.retry_interval,
            signing_key=args.signing_key,
            signing_key_fallback=args.signing_key_fallback,
            event_keys=tuple(args.event_keys),
            test_api=args.test_api,
            app=args.app,
            app_port=args.app_port,
        )
        try:
            asyncio.run(serve(config))
        except KeyboardInterrupt:
            return 0
        except StartupError as exc:
            sys.stderr.write(f"wayline dev: {exc}\n")
            return 1
    return 0
