"""Fixtures for the SDK end-to-end suite: Wayline SDK apps against a real ``wayline dev``.

Reuses the compatibility suite's harness (``compat.harness``): it starts the app in a
thread, a ``wayline dev`` subprocess pointed at it, and offers a client for the server's API.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compat.harness import Compat


@pytest.fixture
def compat(tmp_path: Path) -> Iterator[Compat]:
    """A fresh app + ``wayline dev`` pair (started by ``compat.serve_app``)."""
    harness = Compat(tmp_path)
    try:
        yield harness
    finally:
        harness.close()
