"""The client commands of the ``wayline`` CLI: ``send`` and ``runs list|show|cancel``.

They speak the server's HTTP API (``wayline dev`` or a deployed stack's API), the same one
the dashboard uses. Failures follow the ``gh``/``aws`` conventions: the message on stderr,
exit status 1 for an error (the server said no, or could not be reached) and 2 for a
command line that does not parse (``UsageError``, and argparse's own).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import quote

import httpx

from . import signing
from .errors import AuthError

DEFAULT_URL = "http://127.0.0.1:8288"
TIMEOUT_S = 30.0
SUMMARY_COLUMNS = ("RUN ID", "FUNCTION", "STATUS", "CREATED", "ENDED")


class CliError(Exception):
    """A command failed: exit status 1, the message on stderr."""


class UsageError(CliError):
    """The command line is wrong: exit status 2."""


def default_url() -> str:
    return os.environ.get("WAYLINE_URL") or DEFAULT_URL


def env_signing_key() -> str | None:
    return os.environ.get("WAYLINE_SIGNING_KEY") or os.environ.get("INNGEST_SIGNING_KEY")


def env_event_key() -> str:
    return os.environ.get("WAYLINE_EVENT_KEY") or os.environ.get("INNGEST_EVENT_KEY") or "cli"


def bearer(signing_key: str) -> str:
    """The token SDKs present: the key's hash, or the key itself when it is not hex."""
    try:
        return signing.hash_signing_key(signing_key)
    except AuthError:
        return signing.strip_key_prefix(signing_key)


@dataclass(frozen=True)
class Api:
    url: str
    signing_key: str | None = None

    def request(self, method: str, path: str, **kw: Any) -> Any:
        headers = {"user-agent": "wayline-cli"}
        if self.signing_key:
            headers["authorization"] = f"Bearer {bearer(self.signing_key)}"
        try:
            resp = httpx.request(
                method, self.url.rstrip("/") + path, headers=headers, timeout=TIMEOUT_S, **kw
            )
        except httpx.HTTPError as exc:
            raise CliError(
                f"cannot reach the Wayline server at {self.url}: {type(exc).__name__}"
                " (is `wayline dev` running? set --url or WAYLINE_URL)"
            ) from None
        body = _json(resp)
        if resp.status_code >= 400:
            raise CliError(self._failure(resp.status_code, body))
        return body

    def _failure(self, status: int, body: Any) -> str:
        message = body.get("error") if isinstance(body, Mapping) else None
        text = str(message or f"the server answered HTTP {status}")
        if status == 401:
            text += " (set WAYLINE_SIGNING_KEY to the server's signing key)"
        return text


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


# -- commands ------------------------------------------------------------------------------


def send(api: Api, name: str, data: str, *, as_json: bool, out: TextIO) -> None:
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise UsageError(f"--data is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise UsageError('--data must be a JSON object, e.g. --data \'{"user_id": "u1"}\'')
    body = api.request("POST", f"/e/{env_event_key()}", json={"name": name, "data": payload})
    if as_json:
        _dump(body, out)
        return
    for event_id in body.get("ids", []):
        print(f"sent {name}: event {event_id}", file=out)


def list_runs(
    api: Api,
    *,
    function: str | None,
    statuses: Sequence[str],
    limit: int,
    as_json: bool,
    out: TextIO,
    err: TextIO,
    condition: str | None = None,
    cursor: str | None = None,
) -> None:
    params: dict[str, str] = {"limit": str(limit)}
    for name, value in (
        ("function_id", function),
        ("status", ",".join(statuses)),
        ("if", condition),
        ("cursor", cursor),
    ):
        if value:
            params[name] = value
    body = api.request("GET", "/v1/runs", params=params)
    runs = body.get("data", [])
    metadata = body.get("metadata", {})
    if as_json:
        _dump(runs, out)
    elif runs:
        rows = [
            (r["run_id"], r["function_id"], r["status"], r.get("created_at"), r.get("ended_at"))
            for r in runs
        ]
        _table(SUMMARY_COLUMNS, rows, out)
    else:
        print("no runs found", file=err)
    if condition:
        print(f"(--if read {metadata.get('scanned', 0)} runs)", file=err)
    if metadata.get("cursor"):
        print(f"(more runs: --cursor {metadata['cursor']})", file=err)


def show_run(api: Api, run_id: str, *, as_json: bool, out: TextIO) -> None:
    run = api.request("GET", f"/v1/runs/{_segment(run_id)}")["data"]
    if as_json:
        _dump(run, out)
        return
    for label, value in (
        ("Run", run["run_id"]),
        ("Function", run["function_id"]),
        ("Status", run["status"]),
        ("Event", run.get("event_id")),
        ("Created", run.get("created_at")),
        ("Ended", run.get("ended_at")),
        ("Next retry", run.get("next_retry_at")),
        ("Cancelled", run.get("cancel_reason")),
        ("Error", _error_line(run["output"]) if run["status"] == "Failed" else None),
    ):
        if value is not None:
            print(f"{label + ':':<12}{value}", file=out)
    print(file=out)
    steps = run.get("steps", [])
    if not steps:
        print("(no steps yet)", file=out)
    else:
        headers = ("STEP", "STATUS", "ATTEMPTS", "STARTED", "DURATION", "DETAIL")
        _table(headers, _step_rows(steps), out)
    failures = run.get("call_failures", [])
    if failures:
        print("\nFailed calls to the app (outside any step):", file=out)
        _table(("ATTEMPT", "AT", "ERROR", "RETRY AT"), _failure_rows(failures), out)


def cancel_run(api: Api, run_id: str, *, out: TextIO) -> None:
    run = api.request("DELETE", f"/v1/runs/{_segment(run_id)}")["data"]
    if run["status"] == "Cancelled":
        print(f"run {run['run_id']} is cancelled", file=out)
    else:
        print(f"run {run['run_id']} had already finished: {run['status']}", file=out)


# -- rendering ------------------------------------------------------------------------------


def _step_rows(steps: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for step in steps:
        history = step.get("history") or []
        detail = _error_line(step["error"]) if step.get("error") else _output_line(step)
        duration = _duration(history[-1] if history else None, step)
        rows.append(
            (
                step["name"],
                step["status"],
                str(step.get("attempts") or len(history) or ""),
                step.get("started_at") or "",
                duration,
                detail,
            )
        )
        if len(history) > 1:
            for attempt in history:
                note = _error_line(attempt["error"]) if attempt.get("error") else ""
                if attempt.get("retry_at"):
                    note += f" (retry at {attempt['retry_at']})"
                rows.append(
                    (
                        f"  attempt {attempt['attempt']}",
                        attempt["status"],
                        "",
                        attempt["started_at"],
                        f"{attempt['duration_ms']} ms",
                        note.strip(),
                    )
                )
    return rows


def _failure_rows(failures: Sequence[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (
            str(f["attempt"]),
            f["started_at"],
            _error_line(f.get("error")),
            f.get("retry_at") or "no retry",
        )
        for f in failures
    ]


def _duration(attempt: Mapping[str, Any] | None, step: Mapping[str, Any]) -> str:
    if attempt is not None:
        return f"{attempt['duration_ms']} ms"
    return "" if step.get("ended_at") else "..."


def _error_line(error: Any) -> str:
    if isinstance(error, Mapping):
        name, message = error.get("name"), error.get("message")
        if name or message:
            return f"{name or 'Error'}: {message or ''}".strip()
    return _short(error)


def _output_line(step: Mapping[str, Any]) -> str:
    if step.get("output") is None:
        return ""
    return "-> " + _short(json.dumps(step["output"], ensure_ascii=False))


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."


def _table(headers: Sequence[str], rows: Sequence[Sequence[str | None]], out: TextIO) -> None:
    cells = [[str(c) if c is not None else "-" for c in row] for row in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def _dump(value: Any, out: TextIO) -> None:
    json.dump(value, out, indent=2, ensure_ascii=False)
    out.write("\n")


def _segment(run_id: str) -> str:
    """``run_id`` as one URL path segment (a ``/`` in it must not reach another route)."""
    return quote(run_id, safe="")
