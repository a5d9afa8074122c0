"""Fixtures for the functional suite (see :mod:`functional.support`).

``framework`` is module-scoped and parametrized over FastAPI, Flask and Django, so each
scenario module starts one app + ``wayline dev`` pair per framework and runs every test
(each flavour) against it. On failure the tail of the server's log is attached to the report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from compat.harness import Compat

from .support import FRAMEWORKS, Dev, Framework


@pytest.fixture(scope="module", params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> Framework:
    """The web framework serving this module's app: fastapi, flask or django."""
    value: Framework = request.param
    return value


@pytest.fixture
def compat(tmp_path: Path) -> Iterator[Compat]:
    """A fresh app + ``wayline dev`` pair for one test (started by ``compat.serve_app``)."""
    harness = Compat(tmp_path)
    try:
        yield harness
    finally:
        harness.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and isinstance(item, pytest.Function):
        for value in item.funcargs.values():
            harness = value.compat if isinstance(value, Dev) else value
            if isinstance(harness, Compat) and harness.server is not None:
                report.sections.append(("wayline dev log", harness.server_tail(80)))
    return report
