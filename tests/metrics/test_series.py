"""The per-call series counted in plain slots: the same exposition as prometheus_client's own metrics gave,
exact under threads, beside other metrics in one registry, and in multiprocess mode."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
import threading
import time
from bisect import bisect_left
from collections import Counter as Tally
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    enable_created_metrics,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families

import bedrock_budget as bb
from bedrock_budget.metrics import PrometheusListener
from bedrock_budget.metrics import instruments as instruments_module
from bedrock_budget.metrics.instruments import DURATION_BUCKETS
from bedrock_budget.records import CallRecord
from bedrock_budget.usage import Usage
from bedrock_budget.wrapper.operations import BILLABLE

from ._exposition_cases import CONFIGS, exposition, without_created
from .conftest import HAIKU, SONNET, make_record, sample

DATA = Path(__file__).with_name("data")
WORKER = Path(__file__).with_name("_multiprocess_worker.py")
Parsed = list[tuple[str, str, str, list[tuple[str, tuple[tuple[str, str], ...], float]]]]


#: Families of the store health collector: one series set per Redis store of the whole process, so they
#: depend on what else the process did.
PROCESS_WIDE = (
    "bedrock_budget_store_breaker_",
    "bedrock_budget_store_evicted_",
    "bedrock_budget_store_definitions_",
)


def parse(text: str) -> Parsed:
    return [
        (
            family.name,
            family.type,
            family.documentation,
            [(s.name, tuple(s.labels.items()), s.value) for s in family.samples],
        )
        for family in text_string_to_metric_families(text)
        if not family.name.startswith(PROCESS_WIDE)
    ]


def assert_same(
    actual: Parsed, expected: Parsed, *, approx_names: tuple[str, ...] = (), ordered: bool = True
) -> None:
    """Same families, help, types, samples and label order; values equal (NaN equal to NaN), or within
    1e-12 for sums of floats whose rounding depends on the order of addition. ``ordered=False``: series in
    any order (threads see combinations first in any order)."""
    assert [f[:3] for f in actual] == [f[:3] for f in expected]
    for (name, _, _, got), (_, _, _, want) in zip(actual, expected, strict=True):
        if not ordered:
            got, want = sorted(got, key=lambda s: s[:2]), sorted(want, key=lambda s: s[:2])
        assert [s[:2] for s in got] == [s[:2] for s in want], name
        for (sample_name, labels, value), (_, _, wanted) in zip(got, want, strict=True):
            if math.isnan(wanted):
                assert math.isnan(value), (sample_name, labels)
            elif sample_name in approx_names:
                assert value == pytest.approx(wanted, rel=1e-12, abs=0), (sample_name, labels)
            else:
                assert value == wanted, (sample_name, labels)


def golden(config: str) -> str:
    sections = (DATA / "exposition_before.txt").read_text().split("### ")
    return next(s.split("\n", 1)[1] for s in sections if s.startswith(config + "\n"))


COST = "bedrock_budget_cost_usd_total"
SUMS = (
    "bedrock_budget_request_duration_seconds_sum",
    "bedrock_budget_time_to_first_token_seconds_sum",
)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_the_exposition_is_the_one_prometheus_client_metrics_gave(config: str) -> None:
    text = exposition(config)
    # Money is summed exactly now and rounded once; before, each call's float was added.
    assert_same(parse(without_created(text)), parse(golden(config)), approx_names=(COST,))
    # Every counter and histogram series still has its _created sample, as prometheus_client's have.
    totals = {
        (s.name.removesuffix("_total").removesuffix("_count"), tuple(sorted(s.labels.items())))
        for f in text_string_to_metric_families(text)
        if f.type in ("counter", "histogram") and not f.name.startswith(PROCESS_WIDE)
        for s in f.samples
        if s.name.endswith(("_total", "_count"))
    }
    created = {
        (s.name.removesuffix("_created"), tuple(sorted(s.labels.items())))
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name.endswith("_created")
    }
    assert totals == created


def test_cost_is_the_exact_sum_rounded_once(registry: CollectorRegistry) -> None:
    listener = PrometheusListener(registry)
    sent = [make_record(usage=Usage(input_tokens=7 * i + 1, output_tokens=3 * i)) for i in range(500)]
    for record in sent:
        listener(record)
    femto = sum(r.cost.total_femto for r in sent if r.cost is not None)
    assert sample(registry, COST, model=HAIKU, app="chat") == femto / 10**15


def native(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make new listeners write prometheus_client metrics, as they do in multiprocess mode."""
    monkeypatch.setattr(instruments_module, "multiprocess_mode", lambda: True)


def odd_records() -> list[CallRecord]:
    """Latencies prometheus_client's Histogram treats in its own way: NaN (counted in no bucket), negative,
    infinite, exactly on a bound."""
    found = []
    for latency in (float("nan"), -1.0, float("inf"), 0.25, 0.0):
        found.append(make_record(latency_seconds=latency))
    for ttft in (-0.5, float("inf"), 0.1):
        found.append(make_record(operation="ConverseStream", time_to_first_token_seconds=ttft))
    found.append(make_record(model=SONNET, outcome="partial", latency_seconds=float("nan")))
    return found


def test_odd_latencies_land_where_prometheus_client_puts_them(monkeypatch: pytest.MonkeyPatch) -> None:
    counted = CollectorRegistry()
    counting = PrometheusListener(counted)
    native(monkeypatch)
    kept = CollectorRegistry()
    natives = PrometheusListener(kept)
    for record in odd_records():
        counting(record)
        natives(record)
    assert_same(
        parse(without_created(generate_latest(counted).decode())),
        parse(without_created(generate_latest(kept).decode())),
        approx_names=(COST,),
    )


def test_a_histogram_with_a_negative_bound_has_no_sum_as_in_prometheus_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counted = CollectorRegistry()
    PrometheusListener(counted, duration_buckets=(-1.0, 0.5))(make_record())
    native(monkeypatch)
    kept = CollectorRegistry()
    PrometheusListener(kept, duration_buckets=(-1.0, 0.5))(make_record())
    assert "bedrock_budget_request_duration_seconds_sum" not in generate_latest(counted).decode()
    assert_same(
        parse(without_created(generate_latest(counted).decode())),
        parse(without_created(generate_latest(kept).decode())),
    )
    with pytest.raises(ValueError, match="sorted"):
        PrometheusListener(CollectorRegistry(), duration_buckets=(1.0, 0.5))


def threaded(work: list[Any], threads: int, target: Any) -> None:
    """Run ``target(item)`` for every item, split over ``threads`` threads released together."""
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run(part: list[Any]) -> None:
        start.wait()
        try:
            for item in part:
                target(item)
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(work[i::threads],)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not errors, errors
    assert not any(worker.is_alive() for worker in workers)


class YieldingUsage:
    """A record's usage that lets other threads run while the listener reads its input tokens, so an
    update of the counters that is not atomic loses counts."""

    def __init__(self, usage: Usage) -> None:
        self._usage = usage

    @property
    def input_tokens(self) -> int:
        time.sleep(0)
        return self._usage.input_tokens

    def __getattr__(self, name: str) -> Any:
        return getattr(self._usage, name)


def test_exact_counts_from_eight_threads_equal_the_records(
    registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = PrometheusListener(registry, user_labels=["u0", "u1"])
    sent = [
        make_record(
            model=(HAIKU, SONNET)[i % 2],
            app=f"app-{i % 5}",
            user=f"u{i % 3}",
            outcome=("ok", "ok", "partial", "error")[i % 4],
            operation=("Converse", "ConverseStream")[i % 2],
            usage=Usage(input_tokens=i % 97, output_tokens=i % 13, cache_read_tokens=i % 5),
            latency_seconds=(0.01, 0.3, 4.0, 70.0)[i % 4],
            time_to_first_token_seconds=0.2 if i % 2 else None,
        )
        for i in range(8 * 2500)
    ]
    sent = [dataclasses.replace(r, usage=YieldingUsage(r.usage)) if i % 2 else r for i, r in enumerate(sent)]  # type: ignore[arg-type]
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, inside the listener too
    try:
        threaded(sent, 8, listener)
    finally:
        sys.setswitchinterval(0.005)

    requests = Tally[tuple[str, ...]]()
    tokens = Tally[tuple[str, ...]]()
    femto = Tally[tuple[str, ...]]()
    durations = Tally[tuple[str, ...]]()
    for r in sent:
        app, user = r.attribution["app"], r.attribution["user"]
        user = user if user in ("u0", "u1") else "other"
        requests[(r.operation, r.model_id or "", app, r.outcome, user)] += 1
        tokens[(r.model_id or "", app, "input", user)] += r.usage.input_tokens
        tokens[(r.model_id or "", app, "cache_read", user)] += r.usage.cache_read_tokens
        femto[(r.model_id or "", app, user)] += r.cost.total_femto if r.cost is not None else 0
        bound = DURATION_BUCKETS[bisect_left(DURATION_BUCKETS, r.latency_seconds)]
        durations[(r.operation, r.model_id or "", str(bound))] += 1
    for (operation, model, app, outcome, user), count in requests.items():
        labels = {"operation": operation, "model": model, "app": app, "outcome": outcome, "user": user}
        assert sample(registry, "bedrock_budget_requests_total", **labels) == count
    for (model, app, kind, user), count in tokens.items():
        assert (
            sample(registry, "bedrock_budget_tokens_total", model=model, app=app, type=kind, user=user)
            == count
        )
    for (model, app, user), total in femto.items():
        assert sample(registry, COST, model=model, app=app, user=user) == total / 10**15
    for operation, model, le in durations:
        # Buckets are cumulative; the record latencies fall on four distinct buckets, counted apart here.
        below = sum(
            n for (o, m, b), n in durations.items() if (o, m) == (operation, model) and float(b) <= float(le)
        )
        assert (
            sample(
                registry,
                "bedrock_budget_request_duration_seconds_bucket",
                operation=operation,
                model=model,
                le=le,
            )
            == below
        )
    assert sample(registry, "bedrock_budget_label_overflow_total", label="user") == sum(
        1 for r in sent if r.attribution["user"] == "u2"
    )
    # And the same exposition as prometheus_client's own (thread-safe) metrics fed the same records.
    native(monkeypatch)
    kept = CollectorRegistry()
    natives = PrometheusListener(kept, user_labels=["u0", "u1"])
    for record in sent:
        natives(record)
    assert_same(
        parse(without_created(generate_latest(registry).decode())),
        parse(without_created(generate_latest(kept).decode())),
        approx_names=(COST, *SUMS),
        ordered=False,
    )


CONVERSE = BILLABLE["converse"]


def converse_response(i: int) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 100 + i % 50, "outputTokens": i % 7, "totalTokens": 100 + i % 50 + i % 7},
        "ResponseMetadata": {"RequestId": f"r-{i}"},
    }


def test_wrapped_calls_from_eight_threads_count_what_their_records_say() -> None:
    """The driver hands a plain call to the listener without building its record; a client that also has a
    record listener builds them. Both registries must say the same."""
    fast, recorded = CollectorRegistry(), CollectorRegistry()
    kept: list[CallRecord] = []
    lock = threading.Lock()

    def keep(record: CallRecord) -> None:
        with lock:
            kept.append(record)

    client = bb.wrap(_client(), listeners=[PrometheusListener(fast)])
    slow = bb.wrap(_client(), listeners=[PrometheusListener(recorded), keep])
    meters = (client.bedrock_budget_meter, slow.bedrock_budget_meter)
    assert meters[0]._observers is not None
    assert meters[1]._observers is None

    def send(i: int) -> None:
        for meter in meters:
            response = converse_response(i)
            request = {
                "modelId": "us." + HAIKU,
                "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
            }
            with bb.attribute(app=f"app-{i % 3}"):
                meter.call(CONVERSE, lambda response=response, **_: response, request, "us-east-1")

    threaded(list(range(8 * 500)), 8, send)
    assert len(kept) == 8 * 500
    assert (
        sum(
            sample(
                fast,
                "bedrock_budget_requests_total",
                operation="Converse",
                model=HAIKU,
                app=f"app-{a}",
                outcome="ok",
            )
            for a in range(3)
        )
        == 4000
    )
    femto = sum(r.cost.total_femto for r in kept if r.cost is not None)
    assert sum(sample(fast, COST, model=HAIKU, app=f"app-{a}") for a in range(3)) == pytest.approx(
        femto / 10**15, rel=1e-12
    )
    counts = [
        value
        for family in parse(generate_latest(fast).decode())
        for name, _, value in family[3]
        if name == "bedrock_budget_request_duration_seconds_count"
    ]
    assert counts == [4000]

    # Latencies differ between the two clients: compare everything but the duration buckets and sums.
    def comparable(registry: CollectorRegistry) -> Parsed:
        parsed = parse(without_created(generate_latest(registry).decode()))
        return [
            (n, t, d, [s for s in samples if not s[0].endswith(("_bucket", "_sum"))])
            for n, t, d, samples in parsed
        ]

    assert_same(comparable(fast), comparable(recorded), approx_names=(COST,), ordered=False)


def _client() -> Any:
    import boto3

    return boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_the_listener_beside_user_metrics_in_one_registry(registry: CollectorRegistry) -> None:
    mine = Counter("app_jobs", "Jobs.", ["kind"], registry=registry)
    latency = Histogram("app_latency_seconds", "Latency.", registry=registry)
    listener = PrometheusListener(registry)
    mine.labels("a").inc(3)
    latency.observe(0.2)
    listener(make_record())
    text = generate_latest(registry).decode()
    assert sample(registry, "app_jobs_total", kind="a") == 3
    assert sample(registry, "app_latency_seconds_count") == 1
    assert (
        sample(
            registry,
            "bedrock_budget_requests_total",
            operation="Converse",
            model=HAIKU,
            app="chat",
            outcome="ok",
        )
        == 1
    )
    assert text.index("app_jobs_total") < text.index("bedrock_budget_requests_total")
    # The registry still refuses a second metric of one of our names, either way round.
    with pytest.raises(ValueError, match="Duplicated"):
        Counter("bedrock_budget_tokens", "Mine.", registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        Histogram("bedrock_budget_request_duration_seconds", "Mine.", registry=registry)
    taken = CollectorRegistry()
    Counter("bedrock_budget_requests", "Mine.", registry=taken)
    with pytest.raises(ValueError, match="Duplicated"):
        PrometheusListener(taken)
    # A second listener on the registry shares the series rather than registering them again.
    PrometheusListener(registry)(make_record())
    assert (
        sample(
            registry,
            "bedrock_budget_requests_total",
            operation="Converse",
            model=HAIKU,
            app="chat",
            outcome="ok",
        )
        == 2
    )


def test_created_samples_follow_prometheus_client_switch(registry: CollectorRegistry) -> None:
    PrometheusListener(registry)(make_record(operation="ConverseStream", time_to_first_token_seconds=0.3))
    disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        assert "_created" not in generate_latest(registry).decode()
    finally:
        enable_created_metrics()  # type: ignore[no-untyped-call]
    text = generate_latest(registry).decode()
    for name in ("requests", "tokens", "cost_usd", "request_duration_seconds", "time_to_first_token_seconds"):
        assert f"bedrock_budget_{name}_created{{" in text


def test_multiprocess_mode_sums_tokens_cost_and_latencies_of_every_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    plan = [(30, "chat"), (20, "search"), (5, "chat")]
    for calls, app in plan:
        subprocess.run([sys.executable, str(WORKER), str(calls), app, "0"], env=env, check=True, timeout=60)
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    one = make_record(usage=Usage(input_tokens=100, output_tokens=10))
    assert one.cost is not None
    for app, calls in (("chat", 35), ("search", 20)):
        assert (
            sample(registry, "bedrock_budget_tokens_total", model=HAIKU, app=app, type="input") == 100 * calls
        )
        assert (
            sample(registry, "bedrock_budget_tokens_total", model=HAIKU, app=app, type="output") == 10 * calls
        )
        assert sample(registry, COST, model=HAIKU, app=app) == pytest.approx(
            calls * float(one.cost.total_usd)
        )
    labels = {"operation": "Converse", "model": HAIKU}
    assert sample(registry, "bedrock_budget_request_duration_seconds_count", **labels) == 55
    assert sample(registry, "bedrock_budget_request_duration_seconds_bucket", le="0.1", **labels) == 55
    assert sample(registry, "bedrock_budget_request_duration_seconds_sum", **labels) == pytest.approx(5.5)
