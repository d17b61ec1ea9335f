"""The store suites run over the backend matrix of tests/backends.py; ``store`` is the first store of the
test's backend."""

from __future__ import annotations

import pytest

from backends import Backend
from bedrock_budget.stores import Store


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.make()
