"""Peak memory with 100,000 distinct users: a wrapped client with a per-user wildcard budget
(``scope={"user": "*"}``) on the memory store, and a PrometheusListener when ``bedrock_budget.metrics``
exists, makes one call per user (the boto3 call itself answers from memory, so only our state grows).

Measured in two fresh interpreters, after the client is built and warmed: one under tracemalloc (peak of
the Python heap during the calls), one without it (resident set growth and peak, which tracemalloc's own
bookkeeping would inflate; its calls/s are printed too, though the two runs share the machine).

Run alone: ``.venv/bin/python bench/memory_users.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from report import Row, render

USERS = 100_000

SCRIPT = textwrap.dedent(
    """
    import gc, json, sys, time, tracemalloc
    import boto3
    import bedrock_budget as bb

    USERS, TRACE = int(sys.argv[1]), sys.argv[2] == "trace"
    MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
    MESSAGES = [{"role": "user", "content": [{"text": "Summarise the quarterly report in one line."}]}]
    RESPONSE = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Revenue grew."}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 1200, "outputTokens": 40, "totalTokens": 1240},
        "metrics": {"latencyMs": 120},
        "ResponseMetadata": {"RequestId": "r-1", "HTTPStatusCode": 200, "HTTPHeaders": {}},
    }

    def status(field):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    client = boto3.client("bedrock-runtime", region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
    client.converse = lambda **kwargs: RESPONSE  # the service answers from memory: only our state grows
    listeners, metrics = [], False
    try:
        from prometheus_client import CollectorRegistry
        from bedrock_budget.metrics import PrometheusListener
        listeners.append(PrometheusListener(registry=CollectorRegistry()))
        metrics = True
    except ImportError:
        pass
    budget = bb.Budget("per-user", scope={"user": "*"}, window="month", limit_usd="5")
    wrapped = bb.wrap(client, budgets=[budget], store="memory://", listeners=listeners)
    for i in range(200):
        with bb.attribute(user=f"warm-{i}"):
            wrapped.converse(modelId=MODEL, messages=MESSAGES, inferenceConfig={"maxTokens": 256})
    gc.collect()
    rss_before = status("VmRSS")
    if TRACE:
        tracemalloc.start()
        traced_before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    for i in range(USERS):
        with bb.attribute(user=f"user-{i:06d}"):
            wrapped.converse(modelId=MODEL, messages=MESSAGES, inferenceConfig={"maxTokens": 256})
    elapsed = time.perf_counter() - started
    result = {"metrics": metrics, "seconds": elapsed, "rss_before": rss_before, "rss_after": status("VmRSS"),
              "hwm": status("VmHWM")}
    if TRACE:
        current, peak = tracemalloc.get_traced_memory()
        result.update(traced_current=current - traced_before, traced_peak=peak - traced_before)
    print(json.dumps(result))
    """
)


def _start(mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(USERS), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(process: subprocess.Popen[str]) -> dict[str, float]:
    try:
        out, err = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"memory benchmark failed: {err[-2000:]}")
    data: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return data


def run() -> list[Row]:
    # Both interpreters run at once (the traced one is several times slower); memory figures do not mind.
    processes = [_start("rss"), _start("trace")]
    plain, traced = (_result(p) for p in processes)
    mib = 1024 * 1024
    listener = "PrometheusListener + " if plain["metrics"] else ""
    growth = (plain["rss_after"] - plain["rss_before"]) / mib
    return [
        Row(
            "memory: 100k users, tracemalloc peak",
            traced["traced_peak"] / mib,
            "MiB",
            note=f"{listener}per-user budget on memory://; "
            f"{traced['traced_current'] / USERS:,.0f} B per user still held after the calls",
        ),
        Row(
            "memory: 100k users, RSS growth",
            growth,
            "MiB",
            note=f"peak RSS (VmHWM) {plain['hwm'] / mib:.0f} MiB; {growth * mib / USERS:,.0f} B per user; "
            f"{USERS / plain['seconds']:,.0f} calls/s through the whole pipeline",
        ),
    ]


if __name__ == "__main__":
    print(render(run()))
