"""The calls behind ``data/exposition_before.txt``: what the PrometheusListener of commit 7303544 exposed for
them (``_created`` samples left out), when every series was a prometheus_client ``Counter``/``Histogram``
child updated on each call. The test feeds the same calls to today's listener.

Regenerate only to add cases, and only with a listener known to be right::

    PYTHONPATH=src:tests python -m metrics._exposition_cases > tests/metrics/data/exposition_before.txt
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bedrock_budget.records import CallRecord
from bedrock_budget.usage import Usage

from .conftest import HAIKU, SONNET, make_record, with_budgets

#: Listener options of each registry in the file, by its section name.
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "capped": {"app_labels": 2, "user_labels": ["alice"], "duration_buckets": (0.1, 1.0, 10.0)},
}


def records() -> Iterator[CallRecord]:
    usage = Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=500, cache_write_tokens=300)
    for latency in (0.0, 1e-9, 0.05, 0.42, 0.1, 2.5, 299.9, 300.0, 301.0, 9999.0):
        yield make_record(usage=usage, latency_seconds=latency)
    for ttft in (0.01, 0.05, 0.2, 0.75, 31.0):
        yield make_record(
            operation="ConverseStream", latency_seconds=ttft * 2, time_to_first_token_seconds=ttft
        )
    yield make_record(operation="ConverseStream", outcome="partial", latency_seconds=7.0)
    for i in range(7):
        yield make_record(
            model=SONNET, app="search", user="alice", usage=Usage(input_tokens=3 + i, output_tokens=11 * i)
        )
    yield make_record(app="batch", user="bob", usage=Usage(input_tokens=123_456_789, output_tokens=987_654))
    yield make_record(app="tools", user="carol", outcome="error", usage=Usage())
    yield make_record(app=None, user=None)
    yield make_record(model="anthropic.claude-nonexistent-v1:0", priced=False)
    yield make_record(model=None, operation="ApplyGuardrail", priced=False, unpriced=None)
    yield make_record(model=HAIKU, priced=False, unpriced="image size 9999x9999 has no price")
    for budget in ("chat-daily", None):
        yield make_record(outcome="blocked", usage=Usage(), priced=False, unpriced=None, blocked_by=budget)
    yield with_budgets(make_record(downgraded_from=SONNET), downgraded_by="chat-daily")
    yield make_record(clamped_from=4096, clamped_to=512, clamped_by="clamp-a")
    yield make_record(budget_warnings=("shadow-a", "shadow-b"))
    yield make_record(operation="InvokeModel", app="chat", latency_seconds=0.3)


def exposition(config: str) -> str:
    from prometheus_client import CollectorRegistry, generate_latest

    from bedrock_budget.metrics import PrometheusListener

    registry = CollectorRegistry()
    listener = PrometheusListener(registry, **CONFIGS[config])
    for record in records():
        listener(record)
    return generate_latest(registry).decode()


def without_created(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if "_created" not in line)


if __name__ == "__main__":
    for name in CONFIGS:
        print(f"### {name}")
        print(without_created(exposition(name)), end="")
