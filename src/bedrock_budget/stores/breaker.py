"""A circuit breaker for a store that stops answering.

Without one, every operation against a hung store (a frozen server, a network black hole) waits for the
socket timeout, plus a retry, before the outage policy applies: with the defaults about 2 s per reserve
and as much again per settle, on every call. With it, the first failure opens the circuit, and until the
store answers again every operation fails at once with
:class:`~bedrock_budget.errors.StoreUnavailableError`, so the ledger applies its outage policy
(``on_store_error``) in microseconds: ``deny`` refuses the call, ``allow`` lets it proceed and journals its
spend.

States:

- ``closed``: operations go to the store. A failure to reach it (connection refused or reset, a timeout,
  a cluster that is down or read-only) opens the circuit. Other errors (a bad script, a full server) leave
  it closed: the store answered.
- ``open``: operations fail at once. One background thread per store probes it every ``probe_interval``
  seconds (default :data:`DEFAULT_PROBE_INTERVAL`).
- ``half-open``: a probe is in flight (a ``PING``, bounded by the store's socket timeout). Operations
  still fail at once; callers never wait for a probe. It answers: ``closed``, and whoever subscribed with
  :meth:`CircuitBreaker.on_close` is told (the ledger replays its outage journal then). It fails: ``open``.

Only calls already waiting on the store when it hangs pay the timeout; calls that start after the first
failure do not. The trade-off is recovery time: calls use the store again up to ``probe_interval`` after
it is back. State is per process: a forked child starts closed. A Redis Cluster store keeps one breaker
per master (:mod:`bedrock_budget.stores.redis.node_breakers`).

Time: a breaker reads the time and waits between probes through its ``clock`` (:class:`BreakerClock`),
the real monotonic clock unless another is given, so a test can step it through probes one by one
instead of racing a real interval.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Final, Literal, Protocol

from bedrock_budget._registries import WeakRegistry, renew_after_fork
from bedrock_budget.errors import StoreUnavailableError

log = logging.getLogger("bedrock_budget.store")

BreakerState = Literal["closed", "open", "half-open"]
STATES: Final[tuple[BreakerState, ...]] = ("closed", "open", "half-open")
DEFAULT_PROBE_INTERVAL: Final = 0.5


class BreakerClock(Protocol):
    """The time a breaker reads (how long the circuit has been open) and waits on (between probes)."""

    def monotonic(self) -> float: ...

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Wait ``seconds``, or less if ``stop`` is set meanwhile; True when ``stop`` is set."""
        ...


class MonotonicClock:
    """The real clock: :func:`time.monotonic`, and waits on the stop event itself."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        return stop.wait(seconds)


REAL_CLOCK: Final[BreakerClock] = MonotonicClock()


class Breaker(Protocol):
    """What the ledger and the health metrics use of a breaker: a :class:`CircuitBreaker`, or one per
    cluster master seen as one (``stores.redis.node_breakers``)."""

    @property
    def state(self) -> BreakerState: ...

    @property
    def transitions(self) -> dict[BreakerState, int]: ...

    def on_close(self, callback: Callable[[], object]) -> None: ...

    def try_now(self) -> bool: ...


class StoreHealth(Protocol):
    """What the store health metrics read from a store (see ``metrics.store_health``)."""

    @property
    def name(self) -> str: ...

    @property
    def breaker(self) -> Breaker | None: ...

    def evicted_keys(self) -> int | None: ...


_HEALTH: WeakRegistry[StoreHealth] = WeakRegistry()


def watch(store: StoreHealth) -> None:
    """List a store for the health metrics until it closes (:func:`unwatch`) or is collected."""
    _HEALTH.add(store)


def unwatch(store: StoreHealth) -> None:
    """A closed store leaves the health metrics at once: it may live on for a while (a thread that still
    holds it), and its figures must not stand in for a live store of the same name."""
    _HEALTH.discard(store)


def watched() -> list[StoreHealth]:
    """The open stores listed with :func:`watch`."""
    return _HEALTH.snapshot()


class CircuitBreaker:
    """The breaker of one store; ``probe`` raises unless the store answers (see the module docstring).
    ``clock``: what it reads the time from and waits on between probes (default: the real clock)."""

    def __init__(
        self,
        probe: Callable[[], None],
        *,
        name: str,
        probe_interval: float = DEFAULT_PROBE_INTERVAL,
        clock: BreakerClock = REAL_CLOCK,
    ) -> None:
        if not probe_interval > 0:
            raise ValueError(f"probe_interval must be positive, not {probe_interval}")
        self._probe = probe
        self._clock = clock
        self.name = name
        self.probe_interval = float(probe_interval)
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._reason = ""
        self._opened_at = 0.0
        self._stopped = threading.Event()
        self._generation = 0  # one probe thread per outage
        self._listeners: list[Callable[[], object]] = []
        #: Transitions into each state since the breaker was made.
        self.transitions: dict[BreakerState, int] = dict.fromkeys(STATES, 0)
        renew_after_fork(self)

    @property
    def state(self) -> BreakerState:
        return self._state

    def check(self) -> None:
        """Raise :class:`StoreUnavailableError` at once unless the circuit is closed."""
        if self._state != "closed":
            waited = self._clock.monotonic() - self._opened_at
            every = self.probe_interval
            raise StoreUnavailableError(
                self.name, f"circuit open for {waited:.1f} s after {self._reason}; probing every {every:g} s"
            )

    def failed(self, reason: str) -> None:
        """An operation could not reach the store: open the circuit and start probing."""
        with self._lock:
            if self._state != "closed" or self._stopped.is_set():
                return
            self._reason = reason
            self._opened_at = self._clock.monotonic()
            self._move("open")
            self._generation += 1
            threading.Thread(
                target=self._probe_until_closed,
                args=(self._generation,),
                name="bedrock-budget-store-probe",
                daemon=True,
            ).start()
        log.warning(
            "budget store %s unreachable (%s); failing fast while probing every %g s",
            self.name,
            reason,
            self.probe_interval,
        )

    def try_now(self) -> bool:
        """Probe the store in the calling thread unless the circuit is closed (waiting at most the store's
        timeouts); True when it is closed afterwards. For callers off the hot path that should reach the
        store if it can be reached, such as a flush at shutdown."""
        if self._state == "closed":
            return True
        try:
            self._probe()
        except Exception:
            return False
        self._close()
        return True

    def recovered(self) -> None:
        """The store answered a probe made elsewhere (an async store pings on its own event loop, where
        :meth:`try_now` would wait for itself): close the circuit."""
        self._close()

    def on_close(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` (on the probe thread) whenever the circuit closes again. Bound methods are held
        weakly, so subscribing does not keep their object alive."""
        if hasattr(callback, "__self__") and hasattr(callback, "__func__"):
            ref = weakref.WeakMethod(callback)

            def weak() -> object:
                method = ref()
                return None if method is None else method()

            self._listeners.append(weak)
        else:
            self._listeners.append(callback)

    def _move(self, state: BreakerState) -> None:
        self._state = state
        self.transitions[state] += 1

    def _probe_until_closed(self, generation: int) -> None:
        while not self._clock.wait(self._stopped, self.probe_interval):
            with self._lock:
                if self._state == "closed" or generation != self._generation:
                    return  # closed by try_now, or another outage has its own probe
                self._move("half-open")
            try:
                self._probe()
            except Exception as exc:
                with self._lock:
                    if self._state == "half-open":
                        self._move("open")
                        self._reason = f"{type(exc).__name__}: {exc}"
                continue
            self._close()
            return

    def _close(self) -> None:
        with self._lock:
            if self._state == "closed":
                return
            self._move("closed")
        log.warning("budget store %s answers again; circuit closed", self.name)
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("a listener of the budget store's recovery failed")

    def stop(self) -> None:
        """Stop probing (the store is closing). Idempotent."""
        self._stopped.set()

    def _after_fork(self) -> None:
        # The probe thread stayed in the parent: the child starts closed and finds out for itself.
        self._lock = threading.Lock()
        self._generation += 1
        self._state = "closed"
