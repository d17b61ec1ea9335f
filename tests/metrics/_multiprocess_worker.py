"""One worker process of the multiprocess-mode test: ``python _multiprocess_worker.py CALLS APP JOURNAL``.

PROMETHEUS_MULTIPROC_DIR is set by the test before this process starts, as a process manager would.
"""

from __future__ import annotations

import sys

from bedrock_budget.metrics import PrometheusListener
from bedrock_budget.pricing import default_price_table
from bedrock_budget.records import CallRecord
from bedrock_budget.usage import Usage

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"


def main(calls: int, app: str, journal: int) -> None:
    listener = PrometheusListener()
    usage = Usage(input_tokens=100, output_tokens=10)
    cost = default_price_table().price(HAIKU, usage)
    for i in range(calls):
        listener(
            CallRecord(
                operation="Converse",
                model_id=HAIKU,
                requested_model_id=HAIKU,
                region="us-east-1",
                route="in_region",
                attribution={"app": app, "user": f"u{i}"},
                usage=usage,
                cost=cost,
                outcome="ok",
                latency_seconds=0.1,
            )
        )
    listener.store_metrics.journal(depth=journal)
    listener.store_metrics.error("settle", "timeout")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
