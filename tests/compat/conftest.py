"""Fixtures for the compatibility suite (see :mod:`harness`)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from .harness import Compat

_COMPAT_KEY = pytest.StashKey[Compat]()


@pytest.fixture
def compat(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Compat]:
    """A fresh app + `wayline dev` pair for this test (started by `compat.serve`).

    Everything it started is stopped at teardown; on failure the tail of the
    server's log is attached to the report.
    """
    harness = Compat(tmp_path)
    request.node.stash[_COMPAT_KEY] = harness
    try:
        yield harness
    finally:
        harness.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    harness = item.stash.get(_COMPAT_KEY, None)
    if report.failed and harness is not None and harness.server is not None:
        report.sections.append(("wayline dev log", harness.server_tail(80)))
    return report
