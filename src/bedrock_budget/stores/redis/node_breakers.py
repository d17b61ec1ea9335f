"""One circuit breaker per cluster master, seen from outside as one breaker.

A master that hangs makes only the operations on its own slots fail fast; the other masters keep serving
theirs. :class:`NodeBreakers` gives the ledger, the settler and the health metrics the interface of one
:class:`~bedrock_budget.stores.breaker.CircuitBreaker`: its state is the worst of its nodes', its
transitions are their sum, a recovery listener hears every node's recovery, and :meth:`try_now` probes
every node whose circuit is not closed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from bedrock_budget._registries import renew_after_fork
from bedrock_budget.stores.breaker import STATES, BreakerState, CircuitBreaker


class NodeBreakers:
    """The breakers of a cluster's nodes, made on first use of each node (see the module docstring)."""

    def __init__(
        self, name: str, probe_interval: float, probe_for: Callable[[Any], Callable[[], None]]
    ) -> None:
        self.name = name
        self.probe_interval = probe_interval
        #: Builds the probe that pings one master (a redis-py ``ClusterNode``); only when it is first seen,
        #: never on the calls that find its breaker.
        self._probe_for = probe_for
        self._lock = threading.Lock()
        self._nodes: dict[str, CircuitBreaker] = {}
        self._listeners: list[Callable[[], object]] = []
        renew_after_fork(self)

    def node(self, node: Any) -> CircuitBreaker:
        """The breaker of a master (a redis-py ``ClusterNode``; its ``name`` is ``host:port``)."""
        breaker = self._nodes.get(node.name)
        if breaker is None:
            with self._lock:
                breaker = self._nodes.get(node.name)
                if breaker is None:
                    breaker = CircuitBreaker(
                        self._probe_for(node),
                        name=f"{self.name} node {node.name}",
                        probe_interval=self.probe_interval,
                    )
                    for listener in self._listeners:
                        breaker.on_close(listener)
                    self._nodes[node.name] = breaker
        return breaker

    @property
    def state(self) -> BreakerState:
        states = {breaker.state for breaker in list(self._nodes.values())}
        return "open" if "open" in states else "half-open" if "half-open" in states else "closed"

    @property
    def transitions(self) -> dict[BreakerState, int]:
        total: dict[BreakerState, int] = dict.fromkeys(STATES, 0)
        for breaker in list(self._nodes.values()):
            for state, count in breaker.transitions.items():
                total[state] += count
        return total

    def on_close(self, callback: Callable[[], object]) -> None:
        with self._lock:
            self._listeners.append(callback)
            for breaker in self._nodes.values():
                breaker.on_close(callback)

    def try_now(self) -> bool:
        # Every node is probed, not only up to the first that still fails.
        results = [breaker.try_now() for breaker in list(self._nodes.values())]
        return all(results)

    def stop(self) -> None:
        for breaker in list(self._nodes.values()):
            breaker.stop()

    def _after_fork(self) -> None:
        # A parent's thread may have held the lock at the fork; the child has only the forking thread. (Each
        # master's breaker renews its own.)
        self._lock = threading.Lock()
