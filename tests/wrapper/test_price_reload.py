"""``wrap(prices=[...], prices_reload_seconds=...)``: a rewritten price layer is picked up without a new
client, a broken one keeps the old prices, and the budget guard prices with the same table as the meter."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets.ledger import Ledger
from bedrock_budget.errors import ConfigurationError
from bedrock_budget.testing import FakeBedrock, UsageSpec
from bedrock_budget.wrapper.proxy import unwrap
from fake_bedrock_fixtures import Records

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Write one line."}]}]


def layer_text(input_usd: str) -> str:
    return f"""schema_version: 1
provider: anthropic
models:
  - id: {HAIKU}
    name: Claude 3.5 Haiku
    family: claude
    kind: text
    max_output_tokens: 8192
    prices:
      - effective: 2024-11-04
        checked: 2026-12-01
        source: "test layer"
        input: "{input_usd}"
        output: "4.00"
"""


def write(path: Path, text: str, bump: int) -> None:
    path.write_text(text, encoding="utf-8")
    # Coarse file-system clocks: make each rewrite visibly newer than the last.
    stamp = path.stat().st_mtime + bump
    os.utime(path, (stamp, stamp))


def call_cost(client: Any, records: Records) -> Decimal:
    client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 10})
    cost = records[-1].cost
    assert cost is not None
    return cost.total_usd


def meter_of(client: Any) -> Any:
    return client._self_meter


@pytest.fixture
def layer(tmp_path: Path) -> Path:
    folder = tmp_path / "layer"
    folder.mkdir()
    write(folder / "anthropic.yaml", layer_text("1.00"), 0)
    return folder


def test_a_rewritten_layer_is_priced_after_the_next_check(fake: FakeBedrock, layer: Path) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=1_000_000, output_tokens=0))
    records = Records()
    client = bb.wrap(fake.client(), prices=[layer], prices_reload_seconds=0.0, listeners=[records])
    reloader = meter_of(client).price_reloader
    assert call_cost(client, records) == Decimal("1.00")

    write(layer / "anthropic.yaml", layer_text("2.00"), 2)
    call_cost(client, records)  # notices the change; the table loads in the background
    reloader.wait(10)
    assert call_cost(client, records) == Decimal("2.00")
    assert reloader.reloads == 1

    # Half-written or invalid: keep pricing with what loaded last, and say so once.
    write(layer / "anthropic.yaml", "schema_version: 1\nprovider: anthropic\nmodels: [", 4)
    call_cost(client, records)
    reloader.wait(10)
    assert call_cost(client, records) == Decimal("2.00")
    assert reloader.failures == 1

    # Once the file is good again, it is picked up again.
    write(layer / "anthropic.yaml", layer_text("3.00"), 6)
    call_cost(client, records)
    reloader.wait(10)
    assert call_cost(client, records) == Decimal("3.00")


def test_checks_are_spaced_by_the_interval(fake: FakeBedrock, layer: Path) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=1_000_000, output_tokens=0))
    records = Records()
    client = bb.wrap(fake.client(), prices=[layer], prices_reload_seconds=3600.0, listeners=[records])
    write(layer / "anthropic.yaml", layer_text("2.00"), 2)
    call_cost(client, records)
    meter_of(client).price_reloader.wait(10)
    assert call_cost(client, records) == Decimal("1.00")  # not checked again within the hour


def test_the_budget_guard_prices_with_the_reloaded_table(fake: FakeBedrock, layer: Path) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=1_000_000, output_tokens=0))
    ledger = Ledger("memory://", [bb.Budget(name="all", limit_usd="100")])
    client = bb.wrap(fake.client(), prices=[layer], prices_reload_seconds=0.0, ledger=ledger)
    meter = meter_of(client)
    client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 10})
    write(layer / "anthropic.yaml", layer_text("2.00"), 2)
    client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 10})
    meter.price_reloader.wait(10)
    client.converse(modelId=HAIKU, messages=MESSAGES, inferenceConfig={"maxTokens": 10})
    assert meter.guard.price_table is meter.price_table
    assert ledger.read("all").spent_usd == Decimal("4.00")  # 1.00 + 1.00 + 2.00


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prices_reload_seconds": 5.0}, "needs prices=[...]"),
        ({"prices_reload_seconds": -1.0, "prices": ["x"]}, "must be a number of seconds >= 0, got -1.0"),
        ({"prices_reload_seconds": float("nan"), "prices": ["x"]}, "must be a number of seconds >= 0"),
        ({"prices_reload_seconds": True, "prices": ["x"]}, "must be a number of seconds >= 0, got True"),
    ],
)
def test_bad_reload_options_are_refused(fake: FakeBedrock, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        bb.wrap(fake.client(), **options)


def test_off_by_default(fake: FakeBedrock, layer: Path) -> None:
    client = bb.wrap(fake.client(), prices=[layer])
    assert meter_of(client).price_reloader is None
    assert unwrap(client) is not client
