"""Label-value policies that keep every metric's series count bounded, whatever the traffic looks like.

Each policy maps a raw value (a model id, an app name, a user id) to a label value from a finite set. The
decision for a value is cached, so the per-call cost is one dict lookup once a value has been seen;
values that are refused are not cached, so a flood of distinct ids cannot grow memory either.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable
from typing import Final, Protocol

from bedrock_budget.errors import ConfigurationError

OTHER: Final = "other"
NONE: Final = "none"

# Never cache more refusals/answers than this; beyond it every lookup is recomputed (still cheap).
_CACHE_LIMIT: Final = 4096


class _Finder(Protocol):
    def find(self, base_id: str) -> object | None: ...


class ModelLabels:
    """Model ids → label: the canonical id for models in the price table, ``other`` for anything else
    (mistyped ids, ARNs of custom models, models added after the table was built), ``none`` for calls
    without a model (ApplyGuardrail)."""

    def __init__(self, price_table: _Finder) -> None:
        self._table = price_table
        self._cache: dict[str | None, str] = {None: NONE, "": NONE}

    def __call__(self, model_id: str | None) -> str:
        label = self._cache.get(model_id)
        if label is not None:
            return label
        assert model_id is not None
        spec = self._table.find(model_id)
        canonical = getattr(spec, "id", None)
        label = canonical if isinstance(canonical, str) and canonical else OTHER
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[model_id] = label
        return label

    def known(self) -> int:
        """Distinct model labels handed out so far (``other``/``none`` included)."""
        return len(set(self._cache.values()))


class CappedLabels:
    """At most ``limit`` distinct values keep their own label, admitted in the order they are first seen
    (or exactly the values of an allow-list); every other value becomes ``other``. A missing value is
    ``none``."""

    def __init__(self, limit: int | Iterable[str]) -> None:
        self._lock = threading.Lock()
        self._labels: dict[str, str] = {"": NONE}
        if isinstance(limit, int):
            if isinstance(limit, bool) or limit < 0:
                raise ValueError(f"label cap must be a non-negative int, not {limit!r}")
            self.limit = limit
            self.fixed = False
        else:
            values = [_check_value(v) for v in limit]
            self._labels.update((v, v) for v in values)
            self.limit = len(values)
            self.fixed = True
        self._admitted = 0 if not self.fixed else self.limit
        self.overflowed = 0

    def __call__(self, value: str | None) -> str:
        if not value:
            return NONE
        label = self._labels.get(value)
        if label is not None:
            return label
        return self._admit(value)

    def _admit(self, value: str) -> str:
        with self._lock:
            label = self._labels.get(value)
            if label is not None:
                return label
            if self.fixed or self._admitted >= self.limit or value in (OTHER, NONE):
                self.overflowed += 1
                return OTHER
            self._admitted += 1
            self._labels[value] = value
            return value

    @property
    def admitted(self) -> int:
        return self._admitted

    def settings(self) -> tuple[object, ...]:
        """What two policies must share to write into the same metric series."""
        if self.fixed:
            return ("allow", frozenset(k for k in self._labels if k))
        return ("cap", self.limit)


class TopUsers:
    """Per-user labels for the heaviest spenders only.

    A bounded heavy-hitter sketch (Misra-Gries style, pruned in batches so each call costs O(1)
    amortised) weighs users by cost. Every ``rank_every`` calls the sketch is ranked, and a user becomes
    labelled once its weight reaches the ``n``-th largest. At most ``n`` users are ever labelled per
    process and a labelled user is never relabelled (so counter series stay monotonic); spend before
    admission stays under ``other``.
    """

    def __init__(self, n: int, *, sketch_size: int | None = None, rank_every: int = 1024) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"top_n must be a positive int, not {n!r}")
        self.limit = n
        self._size = sketch_size or max(1000, 20 * n)
        if self._size < n:
            raise ValueError("sketch_size must be at least top_n")
        self._rank_every = max(1, rank_every)
        self._weights: dict[str, int] = {}
        self._labelled: dict[str, str] = {}
        self._threshold: int | None = None
        self._since_rank = 0
        self._lock = threading.Lock()

    def __call__(self, user: str | None, weight: int) -> str:
        if not user:
            return NONE
        label = self._labelled.get(user)
        if label is not None:
            return label
        with self._lock:
            return self._observe(user, weight)

    def _observe(self, user: str, weight: int) -> str:
        label = self._labelled.get(user)
        if label is not None:
            return label
        weights = self._weights
        total = weights.get(user, 0) + weight
        weights[user] = total
        if len(weights) > self._size:
            self._prune()
        self._since_rank += 1
        if self._since_rank >= self._rank_every:
            self._rank()
        threshold = self._threshold
        if (
            threshold is not None
            and total >= threshold
            and len(self._labelled) < self.limit
            and user not in (OTHER, NONE)
        ):
            self._labelled[user] = user
            weights.pop(user, None)
            return user
        return OTHER

    def _prune(self) -> None:
        # Keep the heavier half and subtract what the lightest survivor had, as Misra-Gries does; the
        # batch makes pruning O(1) per call on average.
        keep = heapq.nlargest(self._size // 2, self._weights.items(), key=lambda kv: kv[1])
        floor = keep[-1][1] if keep else 0
        self._weights = {user: w - floor for user, w in keep if w > floor}

    def _rank(self) -> None:
        self._since_rank = 0
        free = self.limit - len(self._labelled)
        if free <= 0:
            self._threshold = None
            return
        top = heapq.nlargest(free, self._weights.values())
        self._threshold = max(1, top[-1]) if top else None

    @property
    def admitted(self) -> int:
        return len(self._labelled)

    def settings(self) -> tuple[object, ...]:
        return ("top", self.limit)


def _check_value(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"label allow-list values must be non-empty strings, not {value!r:.80}")
    if len(value) > 256:
        raise ValueError(f"label allow-list value {value[:40]!r}... is longer than 256 characters")
    return value


def user_policy(user_labels: bool | Iterable[str], top_n: int | None) -> CappedLabels | TopUsers | None:
    """The user-label policy the options ask for: ``None`` (off, the default), an allow-list, or the
    ``top_n`` heaviest spenders. Unbounded per-user labels are refused."""
    try:
        if user_labels is False:
            if top_n is not None:
                return TopUsers(top_n)
            return None
        if user_labels is True:
            if top_n is None:
                raise ConfigurationError(
                    "user_labels=True needs top_n=N (label only the N heaviest users); unbounded per-user "
                    "labels would explode the series count"
                )
            return TopUsers(top_n)
        if isinstance(user_labels, str):
            raise ConfigurationError("user_labels takes a list of user ids, not one string")
        if top_n is not None:
            raise ConfigurationError("give either a user_labels allow-list or top_n, not both")
        return CappedLabels(user_labels)
    except ValueError as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(str(exc)) from exc
