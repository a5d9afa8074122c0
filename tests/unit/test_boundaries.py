"""Architecture rules that code review alone would let slip (DESIGN.md §2)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import wayline

SRC = Path(wayline.__file__).parent
ENGINE_FORBIDDEN = {
    "boto3",
    "botocore",
    "sqlite3",
    "httpx",
    "requests",
    "urllib3",
    "aiohttp",
    "socket",
    "starlette",
    "fastapi",
    "flask",
    "django",
    "uvicorn",
    "os",
    "time",
    "random",
    "threading",
    "asyncio",
    "subprocess",
}
"""The engine core does no I/O, reads no clock, no environment and no randomness."""
ENGINE_IMPURE_ALLOWED = {"service.py"}
"""service.py is the one impure module, but it too only reaches the world through ports."""


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


ENGINE_FILES = sorted((SRC / "engine").glob("*.py"))


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: p.name)
def test_engine_imports_no_io_library(path: Path) -> None:
    forbidden = imported_roots(path) & ENGINE_FORBIDDEN
    assert not forbidden, f"engine/{path.name} imports {sorted(forbidden)}"


def test_engine_does_not_import_adapters() -> None:
    for path in ENGINE_FILES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                target = node.module
                assert not target.startswith(
                    ("store", "devserver", "wayline.store", "wayline.devserver")
                ), (path.name, target)


def test_engine_files_were_found() -> None:
    assert len(ENGINE_FILES) >= 10


def test_public_api_is_pinned() -> None:
    assert sorted(wayline.__all__) == [
        "AuthError",
        "Backoff",
        "Batch",
        "CallInfo",
        "CallInput",
        "Cancel",
        "Checkpointing",
        "Concurrency",
        "ConfigError",
        "Context",
        "Debounce",
        "Event",
        "EventSender",
        "EventType",
        "FetchResponse",
        "Function",
        "InvalidCronError",
        "InvalidDurationError",
        "InvalidExpressionError",
        "Middleware",
        "NonDeterminismError",
        "NonRetriableError",
        "NotFoundError",
        "Priority",
        "RateLimit",
        "RetryAfterError",
        "SendEventsError",
        "SerializationError",
        "Singleton",
        "StepError",
        "StepInfo",
        "StoreError",
        "SubscriptionToken",
        "SyncContext",
        "Throttle",
        "Timeouts",
        "TriggerCron",
        "TriggerEvent",
        "ValidationError",
        "Wayline",
        "WaylineError",
        "Webhook",
        "WebhookSignature",
        "__version__",
    ]
    for name in wayline.__all__:
        assert hasattr(wayline, name), name


SDK_FILES = sorted((SRC / "sdk").glob("*.py"))
SDK_FORBIDDEN = {
    "boto3",
    "botocore",
    "fastapi",
    "flask",
    "django",
    "starlette",
    "sqlite3",
    "uvicorn",
}
"""The SDK runs inside users' apps: no AWS SDK, no web framework, no storage."""
SDK_WAYLINE_ALLOWED = {
    "wayline.engine.ids",
    "wayline.engine.durations",
    "wayline.signing",
    "wayline.errors",
}
"""Pure helpers it shares with the server; never the engine service, stores or dev server."""


def wayline_imports(path: Path) -> set[str]:
    """Absolute names of the ``wayline`` modules a file under ``src/wayline/sdk`` imports."""
    package = ["wayline", "sdk"]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "wayline")
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if module.split(".")[0] != "wayline":
                continue
            for alias in node.names:
                # `from wayline import signing` imports the module wayline.signing
                found.add(
                    f"{module}.{alias.name}" if module in ("wayline", "wayline.engine") else module
                )
    return found


@pytest.mark.parametrize("path", SDK_FILES, ids=lambda p: p.name)
def test_sdk_imports_no_framework_aws_or_storage(path: Path) -> None:
    forbidden = imported_roots(path) & SDK_FORBIDDEN
    assert not forbidden, f"sdk/{path.name} imports {sorted(forbidden)}"
    outside = {
        m
        for m in wayline_imports(path)
        if not m.startswith("wayline.sdk") and m not in SDK_WAYLINE_ALLOWED
    }
    assert not outside, f"sdk/{path.name} imports {sorted(outside)}"


def test_sdk_files_were_found() -> None:
    assert len(SDK_FILES) >= 10


def test_importing_wayline_loads_no_framework() -> None:
    """``import wayline`` in a fresh interpreter pulls in no web framework or AWS SDK."""
    code = (
        "import sys, wayline, wayline.sdk.comm\n"
        f"print(sorted(m for m in {sorted(SDK_FORBIDDEN)!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_server_side_does_not_load_the_sdk() -> None:
    """Engine, stores and handlers import ``wayline.errors``: the SDK must not come along."""
    code = "import sys, wayline.errors\nprint(sorted(m for m in sys.modules if 'wayline.sdk' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
