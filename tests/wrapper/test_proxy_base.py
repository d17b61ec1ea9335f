"""The proxies behave the same on wrapt 1.x (``ObjectProxy``) and wrapt 2 (``BaseObjectProxy``).

The main suite runs on wrapt 2 (and was run once against wrapt 1.14 and 1.17 in its place);
tests_aioboto3/test_aioboto3.py checks the async proxy the same way on wrapt 1.x in .venv-aioboto3.
"""

from __future__ import annotations

import collections.abc
import copy
from typing import Any

import botocore.client
import pytest
import wrapt

from bedrock_budget.wrapper.proxy import BudgetedClient, unwrap
from bedrock_budget.wrapper.proxy_base import ProxyBase
from bedrock_budget.wrapper.streams import MeteredEventStream, StreamSettlement


def test_the_base_is_the_installed_wrapts_proxy() -> None:
    if hasattr(wrapt, "BaseObjectProxy"):
        assert ProxyBase is wrapt.BaseObjectProxy
    else:
        assert issubclass(ProxyBase, wrapt.ObjectProxy)
    for proxy_class in (BudgetedClient, MeteredEventStream):
        assert issubclass(proxy_class, ProxyBase)


def test_the_client_proxy_is_the_client_and_not_iterable(client: Any, raw_client: Any) -> None:
    assert type(client) is BudgetedClient
    assert isinstance(client, botocore.client.BaseClient)
    assert isinstance(client, type(raw_client))
    assert client.__class__ is type(raw_client)
    assert unwrap(client) is raw_client
    assert client.meta is raw_client.meta
    assert client.exceptions is raw_client.exceptions
    assert client.can_paginate("converse") is False
    assert client == raw_client
    assert hash(client) == hash(raw_client)
    # wrapt 1's ObjectProxy forwards __iter__; the base takes it away again, as wrapt 2's does.
    assert not isinstance(client, collections.abc.Iterable)
    with pytest.raises(TypeError, match="not iterable"):
        iter(client)
    # A proxy is not copied by accident (both wrapt lines refuse).
    with pytest.raises(NotImplementedError):
        copy.copy(client)
    # Attributes the proxy does not define are set on the client, its own stay on the proxy.
    client.custom_attribute = 1
    assert raw_client.custom_attribute == 1
    del client.custom_attribute
    assert not hasattr(raw_client, "custom_attribute")


def test_the_stream_proxy_iterates_and_forwards() -> None:
    class Stream:
        closed = False

        def __iter__(self) -> Any:
            return iter([{"a": 1}, {"b": 2}])

        def close(self) -> None:
            self.closed = True

    fed: list[dict[str, Any]] = []
    finished: list[bool] = []
    stream = Stream()
    proxy = MeteredEventStream(stream, StreamSettlement(fed.append, lambda done, *_: finished.append(done)))
    assert isinstance(proxy, Stream)
    assert isinstance(proxy, collections.abc.Iterable)
    assert list(proxy) == [{"a": 1}, {"b": 2}]
    assert fed == [{"a": 1}, {"b": 2}]
    assert finished == [True]
    with proxy as entered:
        assert entered is proxy
    assert stream.closed
    assert finished == [True]
