from __future__ import annotations

from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.testing import FakeBedrock
from fake_bedrock_fixtures import Records


@pytest.fixture
def raw_client(fake: FakeBedrock) -> Any:
    return fake.client()


@pytest.fixture
def client(raw_client: Any, records: Records) -> Any:
    return bb.wrap(raw_client, listeners=[records])
