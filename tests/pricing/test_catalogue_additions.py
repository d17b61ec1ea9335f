"""Models added to the bundled table from the open price databases (LiteLLM 1.110.2, genai-prices 0.2.3).

Each expected cost is worked out by hand from the rates the databases list (the arithmetic is next to it),
so a typo in prices/*.yaml, or an entry that does not apply the way its notes say, fails here.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from bedrock_budget.errors import UnsupportedPricingError
from bedrock_budget.pricing import BUNDLED_PRICES, PriceTable, load_price_table
from bedrock_budget.pricing.schema import load_price_file, validate_paths
from bedrock_budget.usage import Usage

TODAY = dt.date(2026, 12, 3)
MILLION = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
NEW_PROVIDER_FILES = ("google", "minimax", "moonshot", "nvidia", "writer", "xai", "zai")
# A source names where its numbers come from: the AWS pricing page or Price List, or a database with its
# version, so a later reader can find the exact data again.
IMAGE_EDIT_SERVICES = (
    "stable-conservative-upscale",
    "stable-creative-upscale",
    "stable-fast-upscale",
    "stable-image-control-sketch",
    "stable-image-control-structure",
    "stable-image-erase-object",
    "stable-image-inpaint",
    "stable-image-remove-background",
    "stable-image-search-recolor",
    "stable-image-search-replace",
    "stable-image-style-guide",
    "stable-outpaint",
    "stable-style-transfer",
)
DATED_SOURCE = re.compile(r"aws\.amazon\.com|AWS Price List|1\.110\.2|0\.2\.3|commit [0-9a-f]{7,}")


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return load_price_table()


def usd(text: str) -> Decimal:
    return Decimal(text)


# --- files and metadata ----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", NEW_PROVIDER_FILES)
def test_new_provider_file_validates(provider: str) -> None:
    path = BUNDLED_PRICES / f"{provider}.yaml"
    price_file = load_price_file(path)
    assert price_file.provider == provider
    assert price_file.models, f"{path} holds no model"
    for model in price_file.models:
        assert model.provider == provider
        if model.kind == "text":
            assert model.max_output_tokens is not None
            assert model.max_output_tokens > 0


def test_whole_bundled_folder_validates_with_the_new_files() -> None:
    files = validate_paths([BUNDLED_PRICES])
    providers = {price_file.provider for price_file in files}
    assert set(NEW_PROVIDER_FILES) <= providers


def test_every_entry_has_a_source_and_a_check_date(table: PriceTable) -> None:
    for model in table.models.values():
        for entry in model.prices:
            assert entry.source.strip(), model.id
            assert dt.date(2024, 1, 1) <= entry.checked <= TODAY, model.id


def test_entries_checked_on_the_coverage_day_name_a_versioned_source(table: PriceTable) -> None:
    checked_today = [
        (model.id, entry)
        for model in table.models.values()
        for entry in model.prices
        if entry.checked == TODAY
    ]
    assert len(checked_today) >= 60
    for model_id, entry in checked_today:
        assert DATED_SOURCE.search(entry.source), f"{model_id}: source {entry.source!r} names no version"
        assert entry.notes, f"{model_id}: an entry from the open databases says how it was chosen"


# --- OpenAI ----------------------------------------------------------------------------------------------


def test_gpt_5_4_in_region_and_global(table: PriceTable) -> None:
    usage = Usage(input_tokens=10_000, output_tokens=2_000)
    # 10,000 x $2.75/1M + 2,000 x $16.50/1M = $0.0275 + $0.033
    assert table.price("openai.gpt-5.4", usage, at=TODAY).total_usd == usd("0.0605")
    # Global profile at OpenAI's list price: 10,000 x $2.50/1M + 2,000 x $15.00/1M = $0.025 + $0.03
    assert table.price("global.openai.gpt-5.4", usage, at=TODAY).total_usd == usd("0.055")


def test_gpt_5_6_sol_long_context_through_the_global_profile(table: PriceTable) -> None:
    usage = Usage(input_tokens=300_000, output_tokens=1_000)
    # Above 272K input tokens every token is at the global long-context rate:
    # 300,000 x $8.00/1M + 1,000 x $30.00/1M = $2.40 + $0.03
    assert table.price("global.openai.gpt-5.6-sol", usage, at=TODAY).total_usd == usd("2.43")
    # In-Region long context: 300,000 x $8.80/1M + 1,000 x $33.00/1M = $2.64 + $0.033
    assert table.price("openai.gpt-5.6-sol", usage, at=TODAY).total_usd == usd("2.673")


def test_gpt_5_6_sol_before_its_price_cut(table: PriceTable) -> None:
    usage = Usage(input_tokens=10_000, output_tokens=2_000)
    # 2026-08-18, global: 10,000 x $5.00/1M + 2,000 x $30.00/1M = $0.05 + $0.06
    cost = table.price("global.openai.gpt-5.6-sol", usage, at=dt.date(2026, 8, 18))
    assert cost.total_usd == usd("0.11")
    # After the cut of 2026-08-21: 10,000 x $4.00/1M + 2,000 x $20.00/1M = $0.04 + $0.04
    assert table.price("global.openai.gpt-5.6-sol", usage, at=dt.date(2026, 8, 21)).total_usd == usd("0.08")
    with pytest.raises(UnsupportedPricingError, match="no price in force"):
        table.price("openai.gpt-5.6-sol", usage, at=dt.date(2026, 8, 16))


def test_gpt_5_6_luna_price_history(table: PriceTable) -> None:
    small = Usage(input_tokens=10_000, output_tokens=2_000)
    # Launch rate (2026-07-13): 10,000 x $1.10/1M + 2,000 x $6.60/1M = $0.011 + $0.0132
    assert table.price("openai.gpt-5.6-luna", small, at=dt.date(2026, 7, 20)).total_usd == usd("0.0242")
    long = Usage(input_tokens=300_000)
    # After the 80% cut, before the long-context tier existed: 300,000 x $0.22/1M
    assert table.price("openai.gpt-5.6-luna", long, at=dt.date(2026, 8, 1)).total_usd == usd("0.066")
    # From 2026-08-03 the long-context rate applies: 300,000 x $0.44/1M
    assert table.price("openai.gpt-5.6-luna", long, at=dt.date(2026, 8, 4)).total_usd == usd("0.132")
    # No global profile before 2026-08-17, so a global call is priced at the in-Region rate ...
    assert table.price("global.openai.gpt-5.6-luna", small, at=dt.date(2026, 8, 4)).total_usd == usd(
        "0.00484"
    )
    # ... and after it at the global rate: 10,000 x $0.20/1M + 2,000 x $1.20/1M = $0.002 + $0.0024
    assert table.price("global.openai.gpt-5.6-luna", small, at=TODAY).total_usd == usd("0.0044")


def test_gpt_oss_safeguard_on_demand_and_batch(table: PriceTable) -> None:
    # 1M x $0.15/1M + 1M x $0.60/1M
    assert table.price("openai.gpt-oss-safeguard-120b", MILLION, at=TODAY).total_usd == usd("0.75")
    # Batch as LiteLLM lists it: 1M x $0.07/1M + 1M x $0.30/1M
    assert table.price("openai.gpt-oss-safeguard-120b", MILLION, batch=True, at=TODAY).total_usd == usd(
        "0.37"
    )
    # LiteLLM's priority rate is not 1.75x the standard one, so the tier is not offered.
    with pytest.raises(UnsupportedPricingError):
        table.price("openai.gpt-oss-safeguard-20b", MILLION, service_tier="priority", at=TODAY)


# --- Moonshot, MiniMax, Z.ai -----------------------------------------------------------------------------


def test_kimi_k3_global_and_geo_with_prompt_cache(table: PriceTable) -> None:
    usage = Usage(
        input_tokens=100_000, output_tokens=10_000, cache_read_tokens=50_000, cache_write_tokens=20_000
    )
    # Global: 100,000 x $3.00 + 10,000 x $15.00 + 50,000 x $0.30 + 20,000 x $3.75 (per 1M)
    #       = $0.30 + $0.15 + $0.015 + $0.075
    assert table.price("global.moonshotai.kimi-k3", usage, at=TODAY).total_usd == usd("0.54")
    # US Geo, 10% more: $0.33 + $0.165 + $0.0165 + $0.0825
    assert table.price("us.moonshotai.kimi-k3", usage, at=TODAY).total_usd == usd("0.594")
    with pytest.raises(UnsupportedPricingError, match="no price in force"):
        table.price("us.moonshotai.kimi-k3", usage, at=dt.date(2026, 9, 17))


def test_kimi_k2_thinking_alias_and_regional_rate(table: PriceTable) -> None:
    # The moonshotai. spelling resolves to the same model; Tokyo rate: 1M x $0.73 + 1M x $3.03
    cost = table.price("moonshotai.kimi-k2-thinking", MILLION, region="ap-northeast-1", at=TODAY)
    assert cost.model_id == "moonshot.kimi-k2-thinking"
    assert cost.total_usd == usd("3.76")


def test_minimax_regional_and_priority(table: PriceTable) -> None:
    # London: 1M x $0.47 + 1M x $1.86
    assert table.price("minimax.minimax-m2.5", MILLION, region="eu-west-2", at=TODAY).total_usd == usd("2.33")
    # Priority in us-east-1: ($0.30 + $1.20) x 1.75
    cost = table.price("minimax.minimax-m2.5", MILLION, service_tier="priority", at=TODAY)
    assert cost.total_usd == usd("2.625")


def test_glm_flex_and_glm_5_3_global(table: PriceTable) -> None:
    # GLM 4.7 flex: ($0.60 + $2.20) x 0.5
    assert table.price("zai.glm-4.7", MILLION, service_tier="flex", at=TODAY).total_usd == usd("1.40")
    # GLM 5.3 global: 1M x $1.68 + 1M x $5.28
    assert table.price("global.zai.glm-5.3", MILLION, at=TODAY).total_usd == usd("6.96")


# --- Google, NVIDIA, xAI, Writer, Mistral ----------------------------------------------------------------


def test_gemma_3_without_a_priority_tier(table: PriceTable) -> None:
    # 1M x $0.23 + 1M x $0.38
    assert table.price("google.gemma-3-27b-it", MILLION, at=TODAY).total_usd == usd("0.61")
    with pytest.raises(UnsupportedPricingError):
        table.price("google.gemma-3-27b-it", MILLION, service_tier="priority", at=TODAY)


def test_nemotron_in_govcloud(table: PriceTable) -> None:
    # us-gov-west-1: 1M x $0.18 + 1M x $0.78
    cost = table.price("us-gov.nvidia.nemotron-super-3-120b", MILLION, region="us-gov-west-1", at=TODAY)
    assert cost.total_usd == usd("0.96")
    # genai-prices' ':0' spelling resolves to the same model: 1M x $0.06 + 1M x $0.23
    assert table.price("nvidia.nemotron-nano-9b-v2:0", MILLION, at=TODAY).total_usd == usd("0.29")


def test_grok_global_with_cache_reads(table: PriceTable) -> None:
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_tokens=1_000_000)
    # 1M x $2.00 + 1M x $6.00 + 1M x $0.50
    assert table.price("global.xai.grok-4.7", usage, at=TODAY).total_usd == usd("8.50")
    # US Geo: $2.20 + $6.60 + $0.55
    assert table.price("us.xai.grok-4.7", usage, at=TODAY).total_usd == usd("9.35")


def test_palmyra_through_its_us_profile(table: PriceTable) -> None:
    usage = Usage(input_tokens=10_000, output_tokens=2_000)
    # 10,000 x $0.60/1M + 2,000 x $6.00/1M = $0.006 + $0.012
    assert table.price("us.writer.palmyra-x5-v1:0", usage, at=TODAY).total_usd == usd("0.018")


def test_voxtral_regional_rate(table: PriceTable) -> None:
    # Tokyo: 1M x $0.12 + 1M x $0.36
    cost = table.price("mistral.voxtral-small-24b-2507", MILLION, region="ap-northeast-1", at=TODAY)
    assert cost.total_usd == usd("0.48")


# --- Anthropic, Amazon, Cohere, Stability ----------------------------------------------------------------


def test_claude_fable_5_2_and_mythos_5_2(table: PriceTable) -> None:
    # In-region: 1M x $8.80 + 1M x $44.00
    assert table.price("anthropic.claude-fable-5-2", MILLION, at=TODAY).total_usd == usd("52.80")
    # One-hour cache writes through the global profile: 1M x $16.00/1M
    writes = Usage(cache_write_tokens=1_000_000, cache_write_1h_tokens=1_000_000)
    assert table.price("global.anthropic.claude-mythos-5-2", writes, at=TODAY).total_usd == usd("16.00")


def test_claude_mythos_5_1_bare_id_at_the_in_region_rate(table: PriceTable) -> None:
    # LiteLLM files the bare id at the global rate; the table follows AWS's 10% rule: $11.00 + $55.00
    assert table.price("anthropic.claude-mythos-5-1", MILLION, at=TODAY).total_usd == usd("66.00")
    assert table.price("global.anthropic.claude-mythos-5-1", MILLION, at=TODAY).total_usd == usd("60.00")


def test_nova_2_pro_preview_free_cache_writes_and_geo_rate(table: PriceTable) -> None:
    model = "amazon.nova-2-pro-preview-20251202-v1:0"
    # Cache writes cost nothing on Nova: 1M x $1.25/1M + 1M written x $0
    usage = Usage(input_tokens=1_000_000, cache_write_tokens=1_000_000)
    assert table.price(model, usage, at=TODAY).total_usd == usd("1.25")
    # Geo profile, 10% above in-Region: 1M x $1.375 + 1M x $11.00
    assert table.price(f"us.{model}", MILLION, at=TODAY).total_usd == usd("12.375")


def test_cohere_embed_v4(table: PriceTable) -> None:
    # 1M x $0.12/1M
    assert table.price("cohere.embed-v4:0", Usage(input_tokens=1_000_000), at=TODAY).total_usd == usd("0.12")


def test_stability_image_edit_services(table: PriceTable) -> None:
    # One conservative upscale: $0.40; three fast upscales: 3 x $0.03
    assert table.price(
        "stability.stable-conservative-upscale-v1:0", Usage(images=1), at=TODAY
    ).total_usd == usd("0.40")
    assert table.price("us.stability.stable-fast-upscale-v1:0", Usage(images=3), at=TODAY).total_usd == usd(
        "0.09"
    )
    # Style transfer: 2 x $0.08
    assert table.price("stability.stable-style-transfer-v1:0", Usage(images=2), at=TODAY).total_usd == usd(
        "0.16"
    )
    # Every one of the 13 image-edit services is priced per image.
    for service in IMAGE_EDIT_SERVICES:
        assert table.price(f"stability.{service}-v1:0", Usage(images=1), at=TODAY).total_usd > 0, service
