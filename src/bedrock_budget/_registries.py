"""Process-wide registries of live objects, safe across threads and forks.

A forked child has only the thread that forked: a lock another thread of the parent held at the fork would
stay held for ever, and state about the parent's threads (a probe running) would be wrong. Objects given to
:func:`renew_after_fork` are told, in the child, before anything else of this package runs there.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class RenewedAfterFork(Protocol):
    def _after_fork(self) -> None: ...


_RENEWED: weakref.WeakSet[RenewedAfterFork] = weakref.WeakSet()


def renew_after_fork(renewed: RenewedAfterFork) -> None:
    """Call ``renewed._after_fork()`` in every child forked while it lives."""
    _RENEWED.add(renewed)


class WeakRegistry(Generic[T]):
    """The live objects of a kind, listed while other threads add and remove them (a bare WeakSet copied
    while another thread adds to it raises "changed size during iteration")."""

    def __init__(self) -> None:
        self._items: weakref.WeakSet[T] = weakref.WeakSet()
        self._lock = threading.Lock()
        renew_after_fork(self)

    def add(self, item: T) -> None:
        with self._lock:
            self._items.add(item)

    def discard(self, item: T) -> None:
        with self._lock:
            self._items.discard(item)

    def snapshot(self) -> list[T]:
        with self._lock:
            return list(self._items)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()


def _in_child() -> None:
    for renewed in list(_RENEWED):
        renewed._after_fork()


os.register_at_fork(after_in_child=_in_child)
