"""A pytest plugin that turns every skip into a failure: the suite may never pass by skipping a test (a
missing service, a missing extra, a ``pytest.skip`` or ``importorskip`` anywhere). Expected failures
(``xfail``) count as failures too. tests/conftest.py loads it; tests/test_no_skips.py proves it works."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

NOTE = "a skip is a failure in this suite"


def _reason(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail(report: Any) -> None:
    wanted = getattr(report, "wasxfail", None)
    reason = f"xfail: {wanted}" if wanted is not None else _reason(report)
    if wanted is not None:
        del report.wasxfail
    report.outcome = "failed"
    report.longrepr = f"{NOTE}: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped:
        _fail(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if report.skipped:
        _fail(report)
