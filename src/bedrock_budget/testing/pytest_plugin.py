"""pytest fixtures for the fake Bedrock.

Registered through the ``pytest11`` entry point, so installing bedrock-budget makes ``fake_bedrock``
and ``fake_bedrock_client`` available to any test suite. Importing this module is cheap: the server
code loads only when a fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

    from . import FakeBedrock

__all__ = ["fake_bedrock", "fake_bedrock_client"]


@pytest.fixture
def fake_bedrock() -> Iterator[FakeBedrock]:
    """A running :class:`~bedrock_budget.testing.FakeBedrock`, fresh for each test.

    The test fails at teardown if the fake itself raised while answering (for example a usage callable
    that crashed), since those calls were answered with InternalServerException.
    """
    from . import FakeBedrock

    with FakeBedrock() as fake:
        yield fake
        errors = fake.server_errors
    if errors:
        pytest.fail(f"fake Bedrock raised while answering: {errors[0]!r}", pytrace=False)


@pytest.fixture
def fake_bedrock_client(fake_bedrock: FakeBedrock) -> BedrockRuntimeClient:
    """A boto3 ``bedrock-runtime`` client talking to :func:`fake_bedrock`."""
    return fake_bedrock.client()
