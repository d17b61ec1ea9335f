"""The per-call series of one registry: requests, tokens, cost and the two latency histograms.

A call adds to one :class:`Slot` (its label combination) under one lock: integer counts, integer
femto-dollars and the histograms' bucket counts. Nothing is converted, summed over label combinations or
turned into prometheus_client samples until a scrape asks, when :class:`CallSeriesCollector` builds the same
families, labels, help text, buckets and ``_created`` samples that prometheus_client's ``Counter`` and
``Histogram`` would show for the same calls. Money is summed exactly and becomes a float once, at the scrape
(prometheus_client would add one rounded float per call).

In prometheus_client's multiprocess mode each process must write its values to the shared directory, so
there every slot writes straight into prometheus_client metrics instead (:class:`NativeSlot`), and the
collector shows those.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Final, Protocol

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram
    from prometheus_client.metrics_core import Metric

    from bedrock_budget.usage import Usage

INF: Final = float("inf")
_FEMTO_PER_USD: Final = 10**15
TOKEN_TYPES: Final = ("input", "output", "cache_read", "cache_write")

#: (operation, model, app, outcome, user or None): one slot's label values.
SlotKey = tuple[str, str, str, str, str | None]


def upper_bounds(buckets: Iterable[float]) -> tuple[float, ...]:
    """A histogram's bucket bounds as prometheus_client's ``Histogram`` takes them: sorted, ``+Inf`` last,
    at least two."""
    bounds = [float(b) for b in buckets]
    if bounds != sorted(bounds):
        raise ValueError("Buckets not in sorted order")
    if bounds and bounds[-1] != INF:
        bounds.append(INF)
    if len(bounds) < 2:
        raise ValueError("Must have at least two buckets")
    return tuple(bounds)


class Family(Protocol):
    """Help text and label names of one metric family."""

    name: str
    doc: str
    labels: tuple[str, ...]


class Slot(Protocol):
    def add(self, usage: Usage, femto: int, latency: float | None, ttft: float | None) -> None:
        """Add one call: its usage, its cost in femto-dollars, and the latencies to observe (``None``:
        none)."""


class _Histogram:
    """One histogram series: per-bucket (not cumulative) counts and the sum."""

    __slots__ = ("counts", "created", "sum")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets
        self.sum = 0.0
        self.created = time.time()


class CountingSlot:
    """The totals of one label combination, added to under the store's lock."""

    __slots__ = (
        "cache_read",
        "cache_write",
        "created",
        "duration",
        "duration_bounds",
        "femto",
        "input",
        "lock",
        "output",
        "requests",
        "ttft",
        "ttft_bounds",
    )

    def __init__(self, store: CallSeries, duration: _Histogram, ttft: _Histogram) -> None:
        self.lock = store.lock
        self.duration_bounds = store.duration_bounds
        self.ttft_bounds = store.ttft_bounds
        self.requests = 0
        self.input = 0
        self.output = 0
        self.cache_read = 0
        self.cache_write = 0
        self.femto = 0
        self.duration = duration
        self.ttft = ttft
        self.created = time.time()

    def add(self, usage: Usage, femto: int, latency: float | None, ttft: float | None) -> None:
        with self.lock:
            self.requests += 1
            self.input += usage.input_tokens
            self.output += usage.output_tokens
            self.cache_read += usage.cache_read_tokens
            self.cache_write += usage.cache_write_tokens
            self.femto += femto
            if latency is not None:
                histogram = self.duration
                histogram.sum += latency
                # As prometheus_client: the first bucket whose bound is >= the value; NaN lands in none.
                if latency <= INF:
                    histogram.counts[bisect_left(self.duration_bounds, latency)] += 1
            if ttft is not None:
                histogram = self.ttft
                histogram.sum += ttft
                if ttft <= INF:
                    histogram.counts[bisect_left(self.ttft_bounds, ttft)] += 1


class CallSeries:
    """Every slot of one registry (in-process mode), and the histograms they share per (operation, model)."""

    def __init__(self, duration_bounds: tuple[float, ...], ttft_bounds: tuple[float, ...]) -> None:
        self.lock = threading.Lock()
        self.duration_bounds = duration_bounds
        self.ttft_bounds = ttft_bounds
        self._slots: dict[SlotKey, CountingSlot] = {}
        self._histograms: dict[tuple[str, str], tuple[_Histogram, _Histogram]] = {}

    def slot(self, key: SlotKey) -> CountingSlot:
        slot = self._slots.get(key)
        if slot is not None:
            return slot
        with self.lock:
            slot = self._slots.get(key)
            if slot is None:
                pair = self._histograms.get((key[0], key[1]))
                if pair is None:
                    pair = (_Histogram(len(self.duration_bounds)), _Histogram(len(self.ttft_bounds)))
                    self._histograms[(key[0], key[1])] = pair
                slot = CountingSlot(self, *pair)
                self._slots[key] = slot
            return slot

    def snapshot(self) -> tuple[list[_SlotValues], list[_HistogramValues]]:
        """The slots' values (in creation order) and the histograms', read under the lock at one instant."""
        with self.lock:
            slots = [
                (key, (s.requests, s.input, s.output, s.cache_read, s.cache_write, s.femto), s.created)
                for key, s in self._slots.items()
            ]
            histograms = [
                (key, (tuple(h.counts), h.sum, h.created), (tuple(t.counts), t.sum, t.created))
                for key, (h, t) in self._histograms.items()
            ]
        return slots, histograms


#: A slot's key, (requests, input, output, cache_read, cache_write, femto) and creation time.
_SlotValues = tuple[SlotKey, tuple[int, int, int, int, int, int], float]
#: One histogram's per-bucket counts, sum and creation time.
_Observed = tuple[tuple[int, ...], float, float]
#: (operation, model) and its duration and time-to-first-token histograms.
_HistogramValues = tuple[tuple[str, str], _Observed, _Observed]


class NativeSlot:
    """One label combination written straight into prometheus_client metrics (multiprocess mode)."""

    __slots__ = ("cache_read", "cache_write", "cost", "duration", "input", "output", "requests", "ttft")

    def __init__(self, natives: NativeSeries, key: SlotKey) -> None:
        operation, model, app, outcome, user = key
        extra = () if user is None else (user,)
        self.requests = natives.requests.labels(operation, model, app, outcome, *extra).inc
        self.input = natives.tokens.labels(model, app, "input", *extra).inc
        self.output = natives.tokens.labels(model, app, "output", *extra).inc
        self.cache_read = natives.tokens.labels(model, app, "cache_read", *extra).inc
        self.cache_write = natives.tokens.labels(model, app, "cache_write", *extra).inc
        self.cost = natives.cost.labels(model, app, *extra).inc
        self.duration = natives.duration.labels(operation, model).observe
        self.ttft = natives.ttft.labels(operation, model).observe

    def add(self, usage: Usage, femto: int, latency: float | None, ttft: float | None) -> None:
        self.requests(1)
        if usage.input_tokens:
            self.input(usage.input_tokens)
        if usage.output_tokens:
            self.output(usage.output_tokens)
        if usage.cache_read_tokens:
            self.cache_read(usage.cache_read_tokens)
        if usage.cache_write_tokens:
            self.cache_write(usage.cache_write_tokens)
        if femto:
            self.cost(femto / 1e15)
        if latency is not None:
            self.duration(latency)
        if ttft is not None:
            self.ttft(ttft)


class NativeSeries:
    """The per-call series as prometheus_client metrics, for multiprocess mode (not registered: the
    collector shows them in its order)."""

    def __init__(
        self, families: Sequence[Family], duration_bounds: Sequence[float], ttft_bounds: Sequence[float]
    ):
        from prometheus_client import Counter, Histogram

        requests, tokens, cost, duration, ttft = families
        self.requests: Counter = Counter(requests.name, requests.doc, requests.labels, registry=None)
        self.tokens: Counter = Counter(tokens.name, tokens.doc, tokens.labels, registry=None)
        self.cost: Counter = Counter(cost.name, cost.doc, cost.labels, registry=None)
        self.duration: Histogram = Histogram(
            duration.name, duration.doc, duration.labels, buckets=duration_bounds, registry=None
        )
        self.ttft: Histogram = Histogram(ttft.name, ttft.doc, ttft.labels, buckets=ttft_bounds, registry=None)
        self._lock = threading.Lock()
        self._slots: dict[SlotKey, NativeSlot] = {}

    def slot(self, key: SlotKey) -> NativeSlot:
        slot = self._slots.get(key)
        if slot is None:
            with self._lock:
                slot = self._slots.get(key)
                if slot is None:
                    slot = NativeSlot(self, key)
                    self._slots[key] = slot
        return slot

    def collect(self) -> Iterator[Metric]:
        for metric in (self.requests, self.tokens, self.cost, self.duration, self.ttft):
            yield from metric.collect()


def multiprocess_mode() -> bool:
    """Whether prometheus_client writes metric values to ``PROMETHEUS_MULTIPROC_DIR`` (decided when it was
    imported)."""
    from prometheus_client import values

    return values.ValueClass is not values.MutexValue


def created_series() -> bool:
    """Whether prometheus_client shows ``_created`` samples (``PROMETHEUS_DISABLE_CREATED_SERIES``,
    ``disable_created_metrics()``)."""
    from prometheus_client import metrics

    return bool(getattr(metrics, "_use_created", True))


def counting_families(
    series: CallSeries, families: Sequence[Family]
) -> tuple[Metric, Metric, Metric, Metric, Metric]:
    """The five per-call families from a snapshot of ``series``: requests, tokens, cost, duration, ttft."""
    from prometheus_client.metrics_core import CounterMetricFamily

    created = created_series()
    requests_f, tokens_f, cost_f, duration_f, ttft_f = families
    requests = CounterMetricFamily(requests_f.name, requests_f.doc, labels=requests_f.labels)
    tokens = CounterMetricFamily(tokens_f.name, tokens_f.doc, labels=tokens_f.labels)
    cost = CounterMetricFamily(cost_f.name, cost_f.doc, labels=cost_f.labels)
    slots, histograms = series.snapshot()
    # Tokens and cost are per (model, app[, user]): summed over operations and outcomes, in the order
    # prometheus_client would have created the series (with the first call of each combination).
    groups: dict[tuple[str, ...], tuple[list[int], float]] = {}
    for (operation, model, app, outcome, user), values, at in slots:
        extra = () if user is None else (user,)
        labels = (operation, model, app, outcome, *extra)
        requests.add_metric(labels, float(values[0]), at if created else None)
        group = groups.get((model, app, *extra))
        if group is None:
            groups[(model, app, *extra)] = (list(values[1:]), at)
        else:
            totals = group[0]
            for i in range(5):
                totals[i] += values[i + 1]
    for group_key, (totals, at) in groups.items():
        for i, kind in enumerate(TOKEN_TYPES):
            labels = (*group_key[:2], kind, *group_key[2:])
            tokens.add_metric(labels, float(totals[i]), at if created else None)
    for group_key, (totals, at) in groups.items():
        # Exact integer femto-dollars, rounded to a float once (int / int rounds correctly).
        cost.add_metric(group_key, totals[4] / _FEMTO_PER_USD, at if created else None)
    duration = _histogram(duration_f, series.duration_bounds, [(k, d) for k, d, _ in histograms], created)
    ttft = _histogram(ttft_f, series.ttft_bounds, [(k, t) for k, _, t in histograms], created)
    return requests, tokens, cost, duration, ttft


def _histogram(
    family: Family, bounds: tuple[float, ...], series: list[tuple[tuple[str, str], _Observed]], created: bool
) -> Metric:
    from prometheus_client.metrics_core import HistogramMetricFamily
    from prometheus_client.utils import floatToGoString

    metric = HistogramMetricFamily(family.name, family.doc, labels=family.labels)
    les: list[str] = [floatToGoString(b) for b in bounds]  # type: ignore[no-untyped-call]
    for labels, (counts, total, at) in series:
        cumulative, acc = [], 0.0
        for le, count in zip(les, counts, strict=True):
            acc += count
            cumulative.append((le, acc))
        if bounds[0] >= 0:
            metric.add_metric(labels, cumulative, total)
        else:
            # prometheus_client's Histogram leaves the sum out when a bucket bound is negative, and keeps
            # the count (the metric family would drop both).
            metric.add_metric(labels, cumulative, None)
            metric.add_sample(family.name + "_count", dict(zip(family.labels, labels, strict=True)), acc)
        if created:
            metric.add_sample(family.name + "_created", dict(zip(family.labels, labels, strict=True)), at)
    return metric


class CallSeriesCollector:
    """Shows every per-call family of one registry, in one order, at scrape time."""

    def __init__(
        self,
        describe: Callable[[], list[Metric]],
        per_call: Callable[[], Iterable[Metric]],
        others: Sequence[Counter],
    ) -> None:
        self._describe = describe
        self._per_call = per_call
        self._others = others

    def describe(self) -> list[Metric]:
        return self._describe()

    def collect(self) -> Iterator[Metric]:
        requests, tokens, cost, duration, ttft = self._per_call()
        yield requests
        yield tokens
        yield cost
        for counter in self._others:
            yield from counter.collect()
        yield duration
        yield ttft
