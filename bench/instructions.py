"""Instructions per call (valgrind callgrind), for the wrapper rows of ``wrapper.py``: the same Stubber-served
``converse`` unwrapped, wrapped without listeners, with a no-op listener, with a plain-call observer that does
nothing and with a PrometheusListener.

CPU-time ratios on a shared machine move by tens of per cent; an instruction count does not. Each figure is
(instructions of a process making W+N calls) − (the same process making W calls), divided by N, so imports,
client creation and warm-up cancel out. Needs ``valgrind``; not part of ``run.py`` (it takes minutes)::

    .venv/bin/python bench/instructions.py [N [MODE ...]]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

MODES = ("plain", "wrapped", "listener", "observer", "prometheus")
WARMUP = 50


def child(mode: str, calls: int) -> None:
    from botocore.stub import Stubber
    from prometheus_client import CollectorRegistry

    import bedrock_budget as bb
    from bedrock_budget.metrics import PrometheusListener
    from wrapper import MESSAGES, MODEL, RESPONSE, IgnoredPlainCall, stub_client

    client = stub_client()
    listeners: list[object] = {
        "plain": [],
        "wrapped": [],
        "listener": [lambda record: None],
        "observer": [IgnoredPlainCall()],
        "prometheus": [PrometheusListener(registry=CollectorRegistry())],
    }[mode]
    target = client if mode == "plain" else bb.wrap(client, listeners=listeners)
    with Stubber(client) as stubber:
        for _ in range(WARMUP + calls_max()):
            stubber.add_response("converse", RESPONSE)
        for _ in range(WARMUP + calls):
            target.converse(modelId=MODEL, messages=MESSAGES)


def calls_max() -> int:
    return int(os.environ.get("BENCH_CALLS_MAX", "0"))


def instructions(mode: str, calls: int, calls_max: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
             "--child", mode, str(calls)],
            env={**os.environ, "BENCH_CALLS_MAX": str(calls_max), "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
            check=True,
        )  # fmt: skip
        match = re.search(r"Collected : (\d+)", done.stderr)
        if match is None:
            raise RuntimeError(done.stderr[-2000:])
        return int(match.group(1))


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    modes = [m for m in MODES if m in sys.argv[2:]] or MODES
    per_call = {}
    for mode in ("plain", *[m for m in modes if m != "plain"]):
        total = instructions(mode, calls, calls) - instructions(mode, 0, calls)
        per_call[mode] = total / calls
        ratio = per_call[mode] / per_call["plain"]
        print(f"{mode:<11} {per_call[mode]:>12,.0f} instructions per call  {ratio:.3f}x", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
