"""The base class of every proxy the wrapper hands out, over both wrapt lines.

wrapt 2 has ``BaseObjectProxy``: a transparent proxy that forwards attributes, ``isinstance``, ``repr``
and operators to the wrapped object and defines no ``__iter__`` of its own. wrapt 1.x (which aiobotocore
2.x, and so every aioboto3 up to 15.5, requires) has only ``ObjectProxy``, the same proxy plus an
``__iter__`` that forwards to the wrapped object — which makes every proxy look iterable
(``isinstance(proxy, collections.abc.Iterable)``) even around a client that is not. On wrapt 1 the base
below switches that ``__iter__`` off again, so a proxy behaves the same whichever wrapt is installed; a
proxy class that is iterable (the stream proxies) defines its own ``__iter__``.

For the type checker the base is ``wrapt.BaseObjectProxy[Any]`` (the stubs wrapt 2 ships).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import wrapt

__all__ = ["ProxyBase"]

if TYPE_CHECKING:
    ProxyBase: TypeAlias = wrapt.BaseObjectProxy[Any]
elif hasattr(wrapt, "BaseObjectProxy"):
    ProxyBase = wrapt.BaseObjectProxy
else:

    class ProxyBase(wrapt.ObjectProxy):
        """wrapt 1.x's ``ObjectProxy`` without the ``__iter__`` that wrapt 2's ``BaseObjectProxy`` dropped."""

        __iter__ = None
