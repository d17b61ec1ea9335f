"""Fixtures for the extract tests; the response and event builders live in ``builders.py``."""

from __future__ import annotations

import pytest

from bedrock_budget.extract import RequestInfo


@pytest.fixture
def bare_request() -> RequestInfo:
    """A text request that says nothing: estimates from it are zero-sized."""
    return RequestInfo("InvokeModel", "anthropic")
