"""The worked examples of the AWS Bedrock pricing page, reproduced from the bundled price files.

Examples whose page figure uses a rate the price databases no longer list are marked ``seed_rounding`` in
the data file with the reason; for those the test checks the price files' own result (``computed_usd``).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from bedrock_budget.pricing import PriceTable, default_price_table
from bedrock_budget.usage import Usage

EXAMPLES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "worked_examples.yaml").read_text())


def price_example(table: PriceTable, kind: str, inputs: dict[str, Any]) -> Decimal:
    if kind == "token":
        usage = Usage(
            input_tokens=inputs["input_tokens"],
            output_tokens=inputs["output_tokens"],
            cache_read_tokens=inputs.get("cache_read_tokens", 0),
            cache_write_tokens=inputs.get("cache_write_tokens", 0),
        )
        return table.price(
            inputs["model_id"],
            usage,
            region=inputs.get("region", "us-east-1"),
            batch=inputs.get("batch", False),
        ).total_usd
    if kind == "guardrail":
        return table.price_guardrail(dict.fromkeys(inputs["policies"], inputs["text_units"])).total_usd
    if kind == "provisioned":
        return table.price_provisioned(
            inputs["model_id"],
            model_units=inputs["model_units"],
            commitment=inputs["commitment"],
            hours=inputs["hours"],
            region=inputs.get("region", "us-east-1"),
        ).total_usd
    if kind == "custom_model_import":
        return table.price_custom_model_import(
            custom_model_units=inputs["custom_model_units"],
            active_windows=inputs["active_windows"],
            storage_months=inputs.get("storage_months", 0),
            region=inputs.get("region", "us-east-1"),
        ).total_usd
    raise AssertionError(f"unknown example kind {kind!r}")


def test_examples_cover_every_kind() -> None:
    assert {example["kind"] for example in EXAMPLES} == {
        "token",
        "guardrail",
        "provisioned",
        "custom_model_import",
    }
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("example", EXAMPLES, ids=[example["name"] for example in EXAMPLES])
def test_worked_example(example: dict[str, Any]) -> None:
    total = price_example(default_price_table(), example["kind"], example["inputs"])
    if example.get("seed_rounding"):
        assert example.get("notes"), "a deviation from the page must say why"
        assert total == Decimal(example["computed_usd"])
        assert total != Decimal(example["expected_usd"])
    else:
        assert total == Decimal(example["expected_usd"])
