"""Following the budgets published in the store (``bb.wrap(client, store=URI, budgets="store")``).

A process loads the published set when it starts, then a daemon thread reads the set's version every
``refresh_seconds`` (one ``HGET``; default 1 s) and, when it moved, loads the new set and hands it to the
ledger (:meth:`Ledger.set_budgets`): new calls are held against the new limits at once, calls in flight
keep their holds, and capacity leases granted under the old limits are closed so the next ones are sized
by the new limits. A change therefore reaches every process within ``refresh_seconds`` plus one read.

Why a poll rather than a version carried in each reserve reply: a process admitting calls from capacity
leases makes no store call for seconds at a time, an idle process makes none at all, and on a cluster the
reserve script can only read keys of the call's own slot — a poll bounds propagation whatever the traffic,
for one small read per process per second.

A set that cannot be read (invalid, or of a newer format) is logged and skipped: the process keeps
enforcing the last good set. While the store is unreachable the process keeps its set too; calls follow
the ledger's outage policy as always. With nothing published yet, nothing is enforced (spend is still
tracked) and a warning says so; the first publication is picked up like any change.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Final

from bedrock_budget._registries import WeakRegistry
from bedrock_budget.budgets.model import Budget
from bedrock_budget.budgets.published import read as read_published
from bedrock_budget.errors import BedrockBudgetError, ConfigurationError, StoreError
from bedrock_budget.stores.base import Store

log = logging.getLogger("bedrock_budget.ledger")

DEFAULT_REFRESH_SECONDS: Final = 1.0
#: ``budgets="store"`` in ``wrap``: the budgets published in the store.
FROM_STORE: Final = "store"

_FOLLOWERS: WeakRegistry[DefinitionsFollower] = WeakRegistry()


class StoreBudgets:
    """``bb.wrap(client, store=URI, budgets=bb.StoreBudgets(refresh_seconds=0.5))``: the budgets published
    in the store, re-read when they change (``budgets="store"`` is the same with the default interval)."""

    def __init__(self, refresh_seconds: float = DEFAULT_REFRESH_SECONDS) -> None:
        if isinstance(refresh_seconds, bool) or not isinstance(refresh_seconds, int | float):
            raise ConfigurationError(f"refresh_seconds must be a number, not {refresh_seconds!r}")
        if not 0.05 <= refresh_seconds <= 3600:
            raise ConfigurationError(f"refresh_seconds must be between 0.05 and 3600, not {refresh_seconds}")
        self.refresh_seconds = float(refresh_seconds)

    def __repr__(self) -> str:
        return f"StoreBudgets(refresh_seconds={self.refresh_seconds})"


def budgets_option(
    given: Iterable[Budget] | str | Path | StoreBudgets, *, store: object, ledger: object
) -> tuple[Iterable[Budget] | str | Path, StoreBudgets | None]:
    """``wrap()``'s ``budgets=`` split into the budgets given (none for the store's) and, for
    ``budgets="store"`` or a :class:`StoreBudgets`, what to follow; raises when following lacks a store or
    comes with a shared ledger. The same for sync and async clients."""
    if isinstance(given, StoreBudgets):
        follow: StoreBudgets | None = given
    elif isinstance(given, str) and given == FROM_STORE:
        follow = StoreBudgets()
    else:
        return given, None
    if store is None or ledger is not None:
        raise ConfigurationError(
            'budgets="store" enforces the budgets published in a store: give store="redis://..." too, and '
            "no ledger= (a shared ledger follows them with ledger.follow_published())"
        )
    return (), follow


class DefinitionsFollower:
    """Keeps a ledger's budgets equal to the store's published set (see the module docstring)."""

    def __init__(
        self, store: Store, apply: Callable[[Sequence[Budget]], None], *, refresh_seconds: float
    ) -> None:
        self.store = store
        # A ledger's bound method is held weakly: a ledger dropped without close() must not be kept alive
        # (and polled for) by its follower's thread, which ends once the ledger is gone.
        self._apply: Callable[[], Callable[[Sequence[Budget]], None] | None] = (
            weakref.WeakMethod(apply) if inspect.ismethod(apply) else (lambda: apply)
        )
        self.refresh_seconds = refresh_seconds
        #: The version this process enforces (0: none published when last read).
        self.version = 0
        self._seen = 0  # the last version read, applied or not
        #: Versions seen but not applied (unreadable), and store reads that failed.
        self.rejected = 0
        self.read_errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._warned_none = False
        self._failing = False
        _FOLLOWERS.add(self)

    def refresh(self) -> bool:
        """Read the version and load the set when it moved; True when a new set was applied. Never raises
        for store errors or unreadable sets (it logs them and keeps the set it has)."""
        with self._lock:
            try:
                version = self.store.definitions_version()
                if version == self._seen and (version or self._warned_none):
                    self._recovered()
                    return False
                found = read_published(self.store)
            except StoreError as exc:
                self.read_errors += 1
                if not self._failing:
                    self._failing = True
                    log.warning(
                        "cannot read the budget definitions (%s); keeping version %d", exc, self.version
                    )
                return False
            except BedrockBudgetError as exc:  # published but unreadable: keep the last good set
                self.rejected += 1
                log.error("ignoring budget definitions version %d: %s", version, exc)
                self._seen = version  # logged once; the next publication is read again
                return False
            self._recovered()
            if found is None:  # never published (or removed by hand): enforce nothing, say so once
                if not self._warned_none:
                    self._warned_none = True
                    log.warning(
                        "no budget definitions are published in %s; enforcing none until "
                        "`bedrock-budget budgets apply FILE --store URI` publishes some",
                        self.store.name,
                    )
                return False
            apply = self._apply()
            if apply is None:
                self._stop.set()
                return False
            apply(found.budgets)
            previous, self.version = self.version, found.version
            self._seen = found.version
            log.info("budget definitions version %d applied (was %d)", found.version, previous)
            return True

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.warning("reading the budget definitions again (version %d)", self.version)

    def start(self) -> None:
        """Load the set now, then follow it from a daemon thread."""
        self.refresh()
        self._start_thread()

    def _start_thread(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="bedrock-budget-definitions", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        """Whether the follower's thread is following the store (started, not stopped, owner alive)."""
        return self._thread is not None and not self._stop.is_set() and self._apply() is not None

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            if self._apply() is None:  # the ledger is gone
                return
            try:
                self.refresh()
            except Exception:  # a fault in applying must not end the thread: the next tick tries again
                log.exception("applying the budget definitions failed")

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._thread = None

    def after_fork(self) -> None:
        # The parent's thread did not survive the fork; the child follows the definitions with its own.
        self._lock = threading.Lock()
        if self._thread is not None and not self._stop.is_set():
            self._start_thread()


def followers() -> list[DefinitionsFollower]:
    """The followers of this process that are running (for the definitions metrics)."""
    return [follower for follower in _FOLLOWERS.snapshot() if follower.running]


def _after_fork_in_child() -> None:
    # Registered after every renewal of ``_registries`` (imported above), so the threads started here find
    # the registry's and the stores' locks free.
    for follower in _FOLLOWERS.snapshot():
        follower.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
