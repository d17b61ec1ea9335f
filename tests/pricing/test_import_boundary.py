"""Pricing a call never loads the code that maintains the price files (the Price List converter, ``prices
update``, the command-line check): that code lives in ``bedrock_budget.pricing.maintenance`` so the
wrapped client does not pay for it."""

from __future__ import annotations

import subprocess
import sys

_PRICE_AND_WRAP = """
import sys

import bedrock_budget as bb
from bedrock_budget.pricing import load_price_table
from bedrock_budget.pricing.planning import plan_capacity
from bedrock_budget.usage import Usage

table = bb.default_price_table()
table.price("us.amazon.nova-micro-v1:0", Usage(input_tokens=1000, output_tokens=200))
table.rate_card("anthropic.claude-3-haiku-20240307-v1:0", region="eu-west-1")
load_price_table(discount_percent="10").price("amazon.nova-micro-v1:0", Usage(input_tokens=1))
bb.wrap  # loads the wrapper, resolver and everything else a wrapped client uses
print(",".join(sorted(name for name in sys.modules if name.startswith("bedrock_budget.pricing.maintenance"))))
"""


def test_pricing_and_wrapping_never_import_the_maintenance_package() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PRICE_AND_WRAP], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
