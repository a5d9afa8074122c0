"""Architecture rules that code review alone would let slip (DESIGN.md §2)."""

from __future__ import annotations

import ast
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
        "InvalidCronError",
        "InvalidDurationError",
        "InvalidExpressionError",
        "NotFoundError",
        "StoreError",
        "ValidationError",
        "WaylineError",
        "__version__",
    ]
    for name in wayline.__all__:
        assert hasattr(wayline, name), name
