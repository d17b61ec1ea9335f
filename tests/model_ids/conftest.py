"""Fixtures: real boto3 control-plane clients, stubbed with botocore's Stubber or pointed over HTTP at the
loopback control plane in ``_support``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from ._support import FakeClock, FakeControlPlane, make_client, serve_control_plane


@pytest.fixture(autouse=True)
def _no_ambient_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's bearer token or profile must not change how the test clients sign or where they go.
    for name in ("AWS_BEARER_TOKEN_BEDROCK", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def bedrock_stub() -> Iterator[tuple[Any, Stubber]]:
    client = make_client("bedrock")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def agent_stub() -> Iterator[tuple[Any, Stubber]]:
    client = make_client("bedrock-agent")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def control_plane_server() -> Iterator[FakeControlPlane]:
    with serve_control_plane() as plane:
        yield plane


@pytest.fixture
def http_clients(control_plane_server: FakeControlPlane) -> Iterator[Callable[..., Any]]:
    """``factory(service, region="us-east-1")`` → a real boto3 client pointed at the loopback server."""
    made: list[Any] = []

    def factory(service: str, region: str = "us-east-1") -> Any:
        client = make_client(service, region, control_plane_server.url)
        made.append(client)
        return client

    yield factory
    for client in made:
        client.close()
