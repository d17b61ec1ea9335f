"""How many calls per second one boto3 client gets from the fake Bedrock (the test bed's own speed, which
bounds every fake-server benchmark).

    .venv/bin/python bench/fake_server_throughput.py [--seconds 2] [--threads 1]

Every call is a real HTTP round trip through botocore (serialisation, SigV4 signing, parsing). With
``--threads N`` the same client is shared by N threads (boto3 clients are thread-safe).

Measured on a 2-vCPU Linux VM (Python 3.11, botocore 1.44.5): converse 570-690 calls/s, invoke_model
530-760 calls/s, with or without extra threads. A bare ``http.client`` keep-alive loop gets about
2,500 requests/s from the same server, so botocore's own per-call work (about 1.4 ms) is the limit.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable

from bedrock_budget.testing import FakeBedrock
from report import Row

MODEL = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "How many calls per second can we make?"}]}]
INVOKE_BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
)


def measure(call: Callable[[], object], seconds: float, threads: int) -> float:
    for _ in range(50):  # warm the connection pool and botocore's caches
        call()
    deadline = time.perf_counter() + seconds
    counts = [0] * threads

    def worker(slot: int) -> None:
        while time.perf_counter() < deadline:
            call()
            counts[slot] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / (time.perf_counter() - started)


def run(seconds: float = 1.0) -> list[Row]:
    rows = []
    with FakeBedrock() as fake:
        client = fake.client()

        def converse() -> object:
            return client.converse(modelId=MODEL, messages=MESSAGES)  # type: ignore[arg-type]

        def invoke_model() -> object:
            response = client.invoke_model(modelId=MODEL, body=INVOKE_BODY)
            return response["body"].read()

        for name, call in (("converse", converse), ("invoke_model", invoke_model)):
            rows.append(Row(f"fake Bedrock: {name}, 1 client", measure(call, seconds, 1), "calls/s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per operation")
    parser.add_argument("--threads", type=int, default=1, help="threads sharing the one client")
    args = parser.parse_args()
    with FakeBedrock() as fake:
        client = fake.client()

        def converse() -> object:
            return client.converse(modelId=MODEL, messages=MESSAGES)  # type: ignore[arg-type]

        def invoke_model() -> object:
            response = client.invoke_model(modelId=MODEL, body=INVOKE_BODY)
            return response["body"].read()

        for name, call in (("converse", converse), ("invoke_model", invoke_model)):
            rate = measure(call, args.seconds, args.threads)
            print(f"{name:<13} {rate:8.0f} calls/s  (1 client, {args.threads} thread(s))")
        print(f"requests served: {fake.request_count}")


if __name__ == "__main__":
    main()
