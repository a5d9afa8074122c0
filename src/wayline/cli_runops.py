"""``wayline`` subcommands that act on runs, events, functions and signals (issue 9).

Each is one call to the REST API of ``wayline dev`` (or of a deployed stack's api function,
with ``--url``): the CLI decides nothing the API does not. Replies are printed as JSON; a
refused request prints the API's error to stderr and exits 1.

    wayline runs rerun ID [--from start|failed-step]
    wayline runs replay --function F --status Failed --since T [--until T] [--if EXPR]
                        [--from start|failed-step] [--dry-run]
    wayline events replay ID
    wayline functions pause|resume APP FUNCTION
    wayline signal NAME [--data JSON]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from typing import Any
from urllib.parse import urlsplit

import httpx

from . import signing

_Subparsers = Any  # argparse's _SubParsersAction is private; its add_parser is all we use
DEFAULT_URL = "http://127.0.0.1:8288"


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("WAYLINE_URL", DEFAULT_URL),
        help=f"the Wayline API (env WAYLINE_URL, default {DEFAULT_URL})",
    )
    parser.add_argument(
        "--signing-key",
        default=os.environ.get("WAYLINE_SIGNING_KEY") or os.environ.get("INNGEST_SIGNING_KEY"),
        help="the API's signing key (env WAYLINE_SIGNING_KEY / INNGEST_SIGNING_KEY)",
    )


def _from(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="from_",
        choices=["start", "failed-step"],
        default="start",
        help="rerun from the start, or redrive: reuse completed steps, run the failed one on",
    )


def add_runs_commands(runs: _Subparsers) -> None:
    """``wayline runs rerun`` and ``wayline runs replay`` under the ``runs`` group."""
    rerun = runs.add_parser("rerun", help="rerun one run (or redrive it from its failed step)")
    rerun.add_argument("run_id")
    _from(rerun)
    _connection(rerun)
    rerun.set_defaults(handler=_rerun)

    replay = runs.add_parser("replay", help="rerun the runs of a function that match a filter")
    replay.add_argument("--function", required=True, help="composite function id (app-fn)")
    replay.add_argument(
        "--status", action="append", required=True, help="run status to match (repeatable)"
    )
    replay.add_argument("--since", required=True, help="ISO-8601 start of the time range")
    replay.add_argument("--until", default=None, help="ISO-8601 end (default now)")
    replay.add_argument("--if", dest="if_", default=None, help="CEL condition over `event`")
    replay.add_argument("--dry-run", action="store_true", help="count the runs, change nothing")
    _from(replay)
    _connection(replay)
    replay.set_defaults(handler=_replay)


def add_commands(commands: _Subparsers) -> None:
    """``wayline events replay``, ``wayline functions pause|resume``, ``wayline signal``."""
    events = commands.add_parser("events", help="act on stored events")
    event_commands = events.add_subparsers(dest="events_command", required=True)
    replay = event_commands.add_parser("replay", help="send a stored event again, as new")
    replay.add_argument("event_id")
    _connection(replay)
    replay.set_defaults(handler=_replay_event)

    functions = commands.add_parser("functions", help="pause or resume a function")
    fn_commands = functions.add_subparsers(dest="functions_command", required=True)
    for action in ("pause", "resume"):
        sub = fn_commands.add_parser(action, help=f"{action} a function")
        sub.add_argument("app_id")
        sub.add_argument("function_id")
        _connection(sub)
        sub.set_defaults(handler=_pause, action=action)

    signal = commands.add_parser("signal", help="resume the run waiting on a signal")
    signal.add_argument("name")
    signal.add_argument("--data", default="null", help="JSON payload (default null)")
    _connection(signal)
    signal.set_defaults(handler=_signal)


def run(args: argparse.Namespace) -> int:
    """Run the handler a subcommand above set; returns the exit code."""
    try:
        return int(args.handler(args))
    except httpx.HTTPError as exc:
        _err(f"wayline: cannot reach {_without_credentials(args.url)}: {exc}")
        return 1


# --------------------------------------------------------------------------- handlers


def _call(args: argparse.Namespace, method: str, path: str, body: object = None) -> int:
    headers = {}
    if args.signing_key:
        headers["authorization"] = f"Bearer {signing.hash_signing_key(args.signing_key)}"
    with httpx.Client(base_url=args.url, timeout=30.0) as client:
        resp = client.request(method, path, json=body, headers=headers)
    try:
        payload = resp.json()
    except ValueError:
        payload = {"error": resp.text[:500]}
    if resp.status_code >= 400:
        message = payload.get("error") if isinstance(payload, dict) else payload
        _err(f"wayline: {resp.status_code}: {message}")
        return 1
    data = payload.get("data", payload) if isinstance(payload, dict) else payload
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return 0


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


def _err(message: str) -> None:
    sys.stderr.write(message + "\n")


def _mode(value: str) -> str:
    return "failed_step" if value == "failed-step" else "start"


def _rerun(args: argparse.Namespace) -> int:
    return _call(args, "POST", f"/v1/runs/{args.run_id}/rerun", {"from": _mode(args.from_)})


def _replay(args: argparse.Namespace) -> int:
    until = args.until or dt.datetime.now(dt.UTC).isoformat()
    body = {
        "function_id": args.function,
        "status": args.status,
        "since": args.since,
        "until": until,
        "from": _mode(args.from_),
        "dry_run": args.dry_run,
    }
    if args.if_:
        body["if"] = args.if_
    return _call(args, "POST", "/v1/reruns", body)


def _replay_event(args: argparse.Namespace) -> int:
    return _call(args, "POST", f"/v1/events/{args.event_id}/replay")


def _pause(args: argparse.Namespace) -> int:
    path = f"/v1/apps/{args.app_id}/functions/{args.function_id}/{args.action}"
    return _call(args, "POST", path)


def _signal(args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.data)
    except ValueError as exc:
        _err(f"wayline: --data is not valid JSON: {exc}")
        return 2
    return _call(args, "POST", "/v1/signals", {"signal": args.name, "data": data})
