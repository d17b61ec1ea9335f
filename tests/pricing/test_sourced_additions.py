"""The bundled price entries added from dated copies of the AWS pricing page and Price List.

Each expected value is worked out by hand from the sourced rate (the arithmetic is in the comment next to
it), so a typo in prices/*.yaml or a change in how an entry is applied shows up here. The sources are named
in each entry's ``source`` field.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

import bedrock_budget as bb
from bedrock_budget.errors import UnsupportedPricingError
from bedrock_budget.pricing import PriceTable, load_price_table
from bedrock_budget.testing import FakeBedrock
from bedrock_budget.usage import Usage
from fake_bedrock_fixtures import Records

LLAMA_405B = "meta.llama3-1-405b-instruct-v1:0"
LLAMA_70B = "meta.llama3-1-70b-instruct-v1:0"
NOVA_PRO = "amazon.nova-pro-v1:0"
NOVA_REEL_V1_0 = "amazon.nova-reel-v1:0"
NOVA_REEL_V1_1 = "amazon.nova-reel-v1:1"
NOVA_CANVAS = "amazon.nova-canvas-v1:0"
TITAN_IMAGE_V1 = "amazon.titan-image-generator-v1"
TITAN_IMAGE_V2 = "amazon.titan-image-generator-v2:0"
TODAY = dt.date(2026, 11, 22)
MILLION = Usage(input_tokens=1_000_000, output_tokens=1_000_000)


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return load_price_table()


def usd(text: str) -> Decimal:
    return Decimal(text)


# --- Llama 3.1 405B: launch rate, then the reduced rate -------------------------------------------------


def test_llama_405b_reduced_rate_from_2025_07_20(table: PriceTable) -> None:
    usage = Usage(input_tokens=10_000, output_tokens=2_000)
    # 10,000 x $2.40/1M + 2,000 x $2.40/1M = $0.024 + $0.0048
    assert table.price(LLAMA_405B, usage, at=dt.date(2025, 7, 20)).total_usd == usd("0.0288")
    assert table.price(LLAMA_405B, usage, at=TODAY).total_usd == usd("0.0288")
    assert table.price(LLAMA_405B, usage, at=TODAY).context["price_effective"] == "2025-07-20"


def test_llama_405b_history_keeps_the_launch_rate(table: PriceTable) -> None:
    usage = Usage(input_tokens=10_000, output_tokens=2_000)
    # 10,000 x $5.32/1M + 2,000 x $16.00/1M = $0.0532 + $0.032
    cost = table.price(LLAMA_405B, usage, at=dt.date(2025, 7, 19))
    assert cost.total_usd == usd("0.0852")
    assert cost.context["price_effective"] == "2024-07-23"


def test_llama_405b_batch_and_latency_optimized(table: PriceTable) -> None:
    # Batch: 1M x $1.20/1M + 1M x $1.20/1M
    assert table.price(LLAMA_405B, MILLION, batch=True, at=TODAY).total_usd == usd("2.40")
    # Latency-optimized through the us. profile from us-east-2: 1M x $3.00/1M + 1M x $3.00/1M
    optimized = table.price(f"us.{LLAMA_405B}", MILLION, region="us-east-2", latency="optimized", at=TODAY)
    assert optimized.total_usd == usd("6.00")
    # Neither existed in the launch entry.
    with pytest.raises(UnsupportedPricingError, match="batch"):
        table.price(LLAMA_405B, MILLION, batch=True, at=dt.date(2025, 1, 1))
    with pytest.raises(UnsupportedPricingError, match="latency"):
        table.price(LLAMA_405B, MILLION, latency="optimized", at=dt.date(2025, 1, 1))


# --- latency-optimized rates -----------------------------------------------------------------------------


def test_llama_70b_latency_optimized(table: PriceTable) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=500_000)
    # 1,000,000 x $0.90/1M + 500,000 x $0.90/1M = $0.90 + $0.45
    cost = table.price(f"us.{LLAMA_70B}", usage, region="us-east-2", latency="optimized", at=TODAY)
    assert cost.total_usd == usd("1.35")
    # The standard rate is unchanged: 1,000,000 x $0.72/1M + 500,000 x $0.72/1M = $0.72 + $0.36
    assert table.price(LLAMA_70B, usage, at=TODAY).total_usd == usd("1.08")


def test_nova_pro_latency_optimized(table: PriceTable) -> None:
    usage = Usage(input_tokens=20_000, output_tokens=5_000)
    # 20,000 x $1.00/1M + 5,000 x $4.00/1M = $0.02 + $0.02
    cost = table.price(f"us.{NOVA_PRO}", usage, region="us-east-2", latency="optimized", at=TODAY)
    assert cost.total_usd == usd("0.04")
    # Standard: 20,000 x $0.80/1M + 5,000 x $3.20/1M = $0.016 + $0.016
    assert table.price(NOVA_PRO, usage, at=TODAY).total_usd == usd("0.032")


# --- Nova Reel -------------------------------------------------------------------------------------------


def test_nova_reel_priced_per_second_of_video(table: PriceTable) -> None:
    # One 6-second clip (v1:0): 6 x $0.08
    assert table.price(NOVA_REEL_V1_0, Usage(video_seconds=6), at=TODAY).total_usd == usd("0.48")
    # A 2-minute multi-shot video (v1:1, an alias of the same entry): 120 x $0.08
    cost = table.price(NOVA_REEL_V1_1, Usage(video_seconds=120), at=TODAY)
    assert cost.total_usd == usd("9.60")
    assert cost.model_id == NOVA_REEL_V1_0
    assert [(line.dimension, line.quantity, line.usd) for line in cost.lines] == [
        ("video_seconds", 120, usd("9.60"))
    ]


def test_nova_reel_has_no_price_before_launch(table: PriceTable) -> None:
    with pytest.raises(UnsupportedPricingError, match="no price in force"):
        table.price(NOVA_REEL_V1_0, Usage(video_seconds=6), at=dt.date(2024, 12, 2))


def test_start_async_invoke_for_nova_reel_is_priced(fake: FakeBedrock, records: Records) -> None:
    client: Any = bb.wrap(fake.client(), listeners=[records])
    output = {"s3OutputDataConfig": {"s3Uri": "s3://bucket/out"}}
    client.start_async_invoke(
        modelId=NOVA_REEL_V1_1,
        modelInput={
            "taskType": "TEXT_VIDEO",
            "textToVideoParams": {"text": "waves"},
            "videoGenerationConfig": {"durationSeconds": 12, "fps": 24, "dimension": "1280x720"},
        },
        outputDataConfig=output,
    )
    # No durationSeconds: a v1:0 text-to-video clip is 6 seconds long.
    client.start_async_invoke(
        modelId=NOVA_REEL_V1_0,
        modelInput={"taskType": "TEXT_VIDEO", "textToVideoParams": {"text": "waves"}},
        outputDataConfig=output,
    )
    twelve, six = records
    assert twelve.operation == "StartAsyncInvoke"
    assert twelve.unpriced is None
    assert twelve.usage.video_seconds == 12
    assert twelve.estimated  # the price follows the requested duration
    assert twelve.cost is not None
    # 12 x $0.08
    assert twelve.cost.total_usd == usd("0.96")
    assert six.cost is not None
    # 6 x $0.08
    assert six.cost.total_usd == usd("0.48")


# --- image sizes and qualities ---------------------------------------------------------------------------


def test_titan_image_generator_premium_bands(table: PriceTable) -> None:
    premium_large = Usage(images=2, image_size="1024x1024", image_quality="premium")
    # 2 x $0.012
    assert table.price(TITAN_IMAGE_V1, premium_large, at=TODAY).total_usd == usd("0.024")
    assert table.price(TITAN_IMAGE_V2, premium_large, at=TODAY).total_usd == usd("0.024")
    premium_small = Usage(images=3, image_size="512x512", image_quality="premium")
    # 3 x $0.01
    assert table.price(TITAN_IMAGE_V1, premium_small, at=TODAY).total_usd == usd("0.03")
    assert table.price(TITAN_IMAGE_V2, premium_small, at=TODAY).total_usd == usd("0.03")
    # v2 above 512x512, standard: 4 x $0.01 (1152x896 has fewer pixels than 1024x1024)
    standard_large = Usage(images=4, image_size="1152x896", image_quality="standard")
    assert table.price(TITAN_IMAGE_V2, standard_large, at=TODAY).total_usd == usd("0.04")
    # The existing standard bands are unchanged: 1 x $0.008 and 1 x $0.01
    small_standard = Usage(images=1, image_size="512x512")
    assert table.price(TITAN_IMAGE_V1, small_standard, at=TODAY).total_usd == usd("0.008")
    assert table.price(TITAN_IMAGE_V1, Usage(images=1), at=TODAY).total_usd == usd("0.01")


def test_nova_canvas_2048_bands(table: PriceTable) -> None:
    # 2 x $0.06 (up to 2048x2048, standard)
    standard = Usage(images=2, image_size="2048x2048", image_quality="standard")
    assert table.price(NOVA_CANVAS, standard, at=TODAY).total_usd == usd("0.12")
    # 2 x $0.08 (up to 2048x2048, premium)
    premium = Usage(images=2, image_size="2048x2048", image_quality="premium")
    assert table.price(NOVA_CANVAS, premium, at=TODAY).total_usd == usd("0.16")
    # Up to 1024x1024 the Price List splits by quality: standard 1 x $0.04 (the default quality and size)
    assert table.price(NOVA_CANVAS, Usage(images=1), at=TODAY).total_usd == usd("0.04")
    small_standard = Usage(images=3, image_size="1024x1024", image_quality="standard")
    assert table.price(NOVA_CANVAS, small_standard, at=TODAY).total_usd == usd("0.12")
    small_premium = Usage(images=1, image_size="1024x1024", image_quality="premium")
    assert table.price(NOVA_CANVAS, small_premium, at=TODAY).total_usd == usd("0.06")
