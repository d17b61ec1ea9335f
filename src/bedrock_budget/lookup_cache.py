"""The resolver's cache of control-plane lookups: per identifier, bounded, with expiring failures.

Results live ``ttl`` seconds (profiles and provisioned models do not change their model), failures
``negative_ttl`` seconds so an outage or a missing IAM permission does not turn every call into a
control-plane request. Concurrent first lookups of one identifier share one request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from bedrock_budget.model_lookups import ResolveError
from bedrock_budget.resolved_model import ResolvedModel

__all__ = ["LookupCache"]


@dataclass(frozen=True, slots=True)
class _Entry:
    expires: float
    result: ResolvedModel | None
    failure: ResolveError | None

    def unwrap(self, note: str = "") -> ResolvedModel:
        if self.result is not None:
            return self.result
        assert self.failure is not None
        # A fresh exception per raise: one shared instance raised in many threads would pile up tracebacks.
        raise ResolveError(self.failure.reason + note, self.failure.cause)


class _Flight:
    """One in-progress lookup that other threads wait for instead of repeating it."""

    __slots__ = ("_done", "entry")

    def __init__(self) -> None:
        self._done = threading.Event()
        self.entry: _Entry | None = None

    def finish(self, entry: _Entry) -> None:
        self.entry = entry
        self._done.set()

    def wait(self) -> _Entry:
        self._done.wait()
        assert self.entry is not None
        return self.entry


class LookupCache:
    """Lookup results and failures by canonical identifier, least recently used evicted past
    ``max_entries``. Thread-safe."""

    def __init__(
        self, *, ttl: float, negative_ttl: float, clock: Callable[[], float], max_entries: int
    ) -> None:
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._clock = clock
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._inflight: dict[str, _Flight] = {}

    def get(self, key: str, lookup: Callable[[], ResolvedModel], *, shared: bool) -> ResolvedModel:
        """The cached outcome for ``key``, or ``lookup()``'s, which is then cached (a failure, raised as
        :class:`ResolveError`, too). With ``shared`` a lookup already under way in another thread is
        waited for instead of repeated."""
        with self._lock:
            now = self._clock()
            entry = self._entries.get(key)
            if entry is not None:
                if entry.expires > now:
                    self._entries.move_to_end(key)
                    note = f" (cached failure; retried after {entry.expires - now:.0f}s)"
                    return entry.unwrap(note)
                del self._entries[key]
            flight = self._inflight.get(key) if shared else None
            if flight is not None:
                owner = False
            else:
                owner = True
                flight = _Flight()
                if shared:
                    self._inflight[key] = flight
        if not owner:
            return flight.wait().unwrap()
        try:
            entry = self._entry_of(lookup)
        except BaseException as exc:
            with self._lock:
                self._retire(key, flight)
            flight.finish(_Entry(0.0, None, ResolveError(f"lookup failed unexpectedly: {exc!r}", exc)))
            raise
        # Storing the entry and retiring the flight under one lock leaves no window in which a newcomer
        # sees neither and starts a second lookup.
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
            self._retire(key, flight)
        flight.finish(entry)
        return entry.unwrap()

    def forget(self, key: str | None = None) -> None:
        """Drop the entry of one identifier, or every entry."""
        with self._lock:
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)

    def _retire(self, key: str, flight: _Flight) -> None:
        # A nested hop's private flight must never retire another thread's shared one for the same key.
        if self._inflight.get(key) is flight:
            del self._inflight[key]

    def _entry_of(self, lookup: Callable[[], ResolvedModel]) -> _Entry:
        try:
            result = lookup()
        except ResolveError as failure:
            return _Entry(self._clock() + self._negative_ttl, None, failure)
        return _Entry(self._clock() + self._ttl, replace(result, looked_up=True), None)
