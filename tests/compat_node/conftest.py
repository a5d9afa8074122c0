"""Fixtures for the Node compatibility suite (see :mod:`.node_harness`)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from .node_harness import APP_DIR, NodeCompat, NodeToolingError, ensure_node_modules

_NODE_COMPAT_KEY = pytest.StashKey[NodeCompat]()


@pytest.fixture(scope="session")
def node_app_dir() -> Path:
    """``tests/compat_node/app`` with ``node_modules`` installed (``npm ci``, once).

    A missing node/npm or a failed install FAILS every test that needs it:
    this suite is never skipped.
    """
    try:
        return ensure_node_modules(APP_DIR)
    except NodeToolingError as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)


@pytest.fixture
def node_compat_unstarted(
    request: pytest.FixtureRequest, tmp_path: Path, node_app_dir: Path
) -> Iterator[NodeCompat]:
    """A Node app + ``wayline dev`` pair for this test; call ``start(...)`` on it.

    Everything it started is stopped (by the pids started here) at teardown; on
    failure the tails of both logs are attached to the report.
    """
    harness = NodeCompat(tmp_path, node_app_dir)
    request.node.stash[_NODE_COMPAT_KEY] = harness
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def node_compat(node_compat_unstarted: NodeCompat) -> NodeCompat:
    """The pair started in dev mode (no signing key), all functions registered."""
    node_compat_unstarted.start()
    return node_compat_unstarted


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    harness = item.stash.get(_NODE_COMPAT_KEY, None)
    if report.failed and harness is not None:
        report.sections.extend(harness.report_sections())
    return report
