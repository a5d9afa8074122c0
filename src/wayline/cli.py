"""The ``wayline`` command line: ``wayline dev`` runs the local dev server; ``send`` and
``runs list|show|cancel`` talk to a running server's API.

Exit status: 0 on success, 1 when the command failed (the message is on stderr), 2 when
the command line is wrong.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__, cli_client, cli_runops
from .cli_client import Api, CliError, UsageError
from .devserver import logs
from .devserver.claim import StartupError
from .devserver.http_runtime import runtime_from_env, uvicorn_http
from .devserver.server import DevConfig, serve
from .engine.model import RunStatus
from .engine.urls import check_app_url
from .errors import ValidationError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wayline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"wayline {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _client_commands(commands)
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
    board = commands.add_parser(
        "dashboard",
        help="serve the dashboard for a deployed stack on 127.0.0.1 (your AWS credentials)",
    )
    board.add_argument("--stack", required=True, help="CloudFormation stack name of the deploy")
    board.add_argument("--region", default=None, help="AWS region (default: your AWS config)")
    board.add_argument("--port", type=int, default=8289, help="port (default 8289)")
    board.add_argument("--endpoint-url", default=None, help=argparse.SUPPRESS)  # tests: moto
    cli_runops.add_commands(commands)
    return parser


def _dashboard(args: argparse.Namespace) -> int:
    """``wayline dashboard --stack``: read-only, loopback only, the caller's credentials."""
    import uvicorn

    from .aws.stack import dashboard_app
    from .errors import WaylineError

    try:
        runtime = runtime_from_env(os.environ)
        app, found = dashboard_app(args.stack, region=args.region, endpoint_url=args.endpoint_url)
    except (WaylineError, StartupError) as exc:
        sys.stderr.write(f"wayline dashboard: {exc}\n")
        return 1
    logging.getLogger("wayline.dashboard").info(
        "dashboard for stack %s (table %s) on http://127.0.0.1:%d",
        found.stack,
        found.table,
        args.port,
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        http=uvicorn_http(runtime.http),
        loop=runtime.loop,
        log_level="warning",
    )
    try:
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        return 0
    return 0


def _app_url(text: str) -> str:
    """``-u`` URLs pass the same SSRF checks as registered ones (private targets allowed,
    as for every app of the dev server); the error never repeats the URL (credentials)."""
    try:
        return check_app_url(text, field="app URL", allow_private=True)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument(
        "--url",
        default=cli_client.default_url(),
        help=f"the server's URL (env WAYLINE_URL; default {cli_client.DEFAULT_URL}); the "
        "signing key, when the server needs one, comes from WAYLINE_SIGNING_KEY",
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print the API's JSON")

    send = commands.add_parser(
        "send", parents=[server, as_json], help="send an event (env WAYLINE_EVENT_KEY)"
    )
    send.add_argument("name", help="event name, e.g. shop/order.created")
    send.add_argument("--data", default="{}", help="event data, a JSON object (default {})")

    runs = commands.add_parser("runs", help="find, read and cancel runs")
    actions = runs.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", parents=[server, as_json], help="runs, newest first")
    listing.add_argument("--function", help="only runs of this function id")
    listing.add_argument(
        "--status",
        action="append",
        default=[],
        choices=[s.value for s in RunStatus],
        type=lambda text: text.capitalize(),
        help="only runs in this status (repeatable)",
    )
    listing.add_argument("--limit", type=_positive, default=20, help="at most N runs (20)")
    listing.add_argument(
        "--if",
        dest="condition",
        metavar="EXPR",
        help="CEL over the triggering event, e.g. 'event.data.user_id == \"u1\"'",
    )
    listing.add_argument("--cursor", help="the next page, as the previous listing printed it")
    show = actions.add_parser("show", parents=[server, as_json], help="a run and its steps")
    show.add_argument("run_id")
    cancel = actions.add_parser("cancel", parents=[server], help="cancel a run")
    cancel.add_argument("run_id")
    cli_runops.add_runs_commands(actions)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 1000, got {text!r}")
    return value


def _run_client(args: argparse.Namespace) -> int:
    api = Api(args.url, cli_client.env_signing_key())
    out, err = sys.stdout, sys.stderr
    try:
        if args.command == "send":
            cli_client.send(api, args.name, args.data, as_json=args.json, out=out)
        elif args.action == "list":
            cli_client.list_runs(
                api,
                function=args.function,
                statuses=args.status,
                limit=args.limit,
                condition=args.condition,
                cursor=args.cursor,
                as_json=args.json,
                out=out,
                err=err,
            )
        elif args.action == "show":
            cli_client.show_run(api, args.run_id, as_json=args.json, out=out)
        else:
            cli_client.cancel_run(api, args.run_id, out=out)
    except UsageError as exc:
        print(f"wayline: error: {exc}", file=err)
        return 2
    except CliError as exc:
        print(f"wayline: {exc}", file=err)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "handler", None) is not None:
        return cli_runops.run(args)
    if args.command in ("send", "runs"):
        return _run_client(args)
    logs.configure(os.environ.get("WAYLINE_LOG_LEVEL", "INFO"))
    if args.command == "dashboard":
        return _dashboard(args)
    if args.command == "dev":
        return _dev(args)
    return 0


def _dev(args: argparse.Namespace) -> int:
    try:
        runtime = runtime_from_env(os.environ)
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
            http=runtime.http,
        )
        runtime.run(serve(config))
    except KeyboardInterrupt:
        return 0
    except StartupError as exc:
        sys.stderr.write(f"wayline dev: {exc}\n")
        return 1
    return 0
