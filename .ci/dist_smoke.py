"""Checks an installed bedrock-budget from outside the checkout (run by check-dist.sh in a fresh venv).

Usage: python dist_smoke.py CHECKOUT [DEMO_JSON]
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from decimal import Decimal
from pathlib import Path


def main(checkout: Path, demo_json: Path | None) -> None:
    import bedrock_budget as bb

    installed = Path(bb.__file__).resolve().parent
    assert checkout not in installed.parents, f"imported from the checkout: {installed}"
    links = [str(p) for p in installed.rglob("*") if p.is_symlink()]
    assert not links, f"symlinks in the installed package: {links}"

    # Every module imports: a package left out of pyproject's package list fails here, not at a user's.
    for module in pkgutil.walk_packages(bb.__path__, "bedrock_budget."):
        if module.name != "bedrock_budget.testing.pytest_plugin":  # needs pytest, a dev dependency
            importlib.import_module(module.name)

    from bedrock_budget.pricing import BUNDLED_PRICES

    shipped = sorted(p.name for p in BUNDLED_PRICES.glob("*.yaml"))
    reviewed = sorted(p.name for p in (checkout / "prices").glob("*.yaml"))
    assert shipped == reviewed, f"price files shipped {shipped} != reviewed {reviewed}"
    assert installed in BUNDLED_PRICES.parents, f"prices read from {BUNDLED_PRICES}"
    assert (installed / "stores" / "lua" / "reserve.lua").is_file(), "Lua scripts missing"
    assert (installed / "py.typed").is_file(), "py.typed missing"
    assert (installed / "demo" / "budgets.yaml").is_file(), "demo budgets missing"

    # A real boto3 client, wrapped, over HTTP to the local fake Bedrock, priced from the shipped tables.
    from bedrock_budget.testing import FakeBedrock, UsageSpec

    records: list[bb.CallRecord] = []
    with FakeBedrock() as fake:
        # What Bedrock would bill for this request (within its reservation: no overrun warning).
        fake.set_usage("nova", UsageSpec(input_tokens=4, output_tokens=200))
        client = bb.wrap(
            fake.client(),
            listeners=[records.append],
            budgets=[bb.Budget(name="smoke", scope={}, window="day", limit_usd="1.00", action="block")],
        )
        reply = client.converse(
            modelId="us.amazon.nova-micro-v1:0",
            messages=[{"role": "user", "content": [{"text": "hello"}]}],
            inferenceConfig={"maxTokens": 200},
        )
        assert reply["usage"]["inputTokens"] == 4, reply["usage"]
    (record,) = records
    expected = bb.default_price_table().price("us.amazon.nova-micro-v1:0", record.usage).total_usd
    assert (record.usage.input_tokens, record.usage.output_tokens) == (4, 200), record.usage
    assert record.cost is not None, record
    assert record.cost.total_usd == expected > 0, (record.cost, expected)

    if demo_json is not None:
        summary = json.loads(demo_json.read_text())
        assert summary["calls_planned"] > 0, summary
        assert Decimal(summary["spend_usd"]) > 0, summary
        assert summary["spend_usd"] == summary["store_spend_usd"], summary
    print(f"dist smoke: ok ({installed})")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]) if len(sys.argv) > 2 else None)
