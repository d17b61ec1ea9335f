"""Converting AWS Price List API output (GetProducts for Bedrock) into price-file YAML.

The fixture ``get-products-bedrock.json`` holds two GetProducts pages in the attribute format the API
returns for the AmazonBedrock and AmazonBedrockFoundationModels service codes; ``fixtures/models`` holds
the models display names are resolved against. Every number asserted here can be checked by hand from the
fixture: a "1K tokens" price times 1,000, a Marketplace "Units" price as is.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from bedrock_budget.errors import PriceFileError, PriceListError
from bedrock_budget.pricing.maintenance import price_list
from bedrock_budget.pricing.maintenance.price_list import convert_price_list, convert_price_list_file
from bedrock_budget.pricing.schema import ModelSpec, PriceEntry, load_price_file, validate_paths

FIXTURES = Path(__file__).parent / "fixtures"
PRICE_LIST = FIXTURES / "get-products-bedrock.json"
MODELS_DIR = FIXTURES / "models"
TODAY = dt.date(2025, 12, 1)
NATIVE_SOURCE = "AWS Price List API (AmazonBedrock, 2025-11-20)"
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
SONNET = "anthropic.claude-sonnet-4-5-20250929-v1:0"


def d(text: str) -> Decimal:
    return Decimal(text)


@pytest.fixture(scope="module")
def models() -> list[ModelSpec]:
    return [model for price_file in validate_paths([MODELS_DIR]) for model in price_file.models]


@pytest.fixture(scope="module")
def converted(models: list[ModelSpec]) -> str:
    return convert_price_list_file(PRICE_LIST, models=models, today=TODAY)


def documents(text: str) -> dict[str, str]:
    """Each emitted document by provider, as the text a maintainer would paste."""
    found: dict[str, str] = {}
    for part in text.split("\n---\n"):
        match = re.search(r"^provider: (\S+)$", part, re.MULTILINE)
        if match:
            found[match.group(1)] = part
    return found


def comments(text: str, label: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"# {label}: ")]


@pytest.fixture(scope="module")
def loaded(converted: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModelSpec]:
    folder = tmp_path_factory.mktemp("converted")
    specs: dict[str, ModelSpec] = {}
    for provider, text in documents(converted).items():
        path = folder / f"{provider}.yaml"
        path.write_text(text, encoding="utf-8")
        specs.update({model.id: model for model in load_price_file(path).models})
    return specs


def entry(loaded: dict[str, ModelSpec], model_id: str) -> PriceEntry:
    prices = loaded[model_id].prices
    assert len(prices) == 1
    return prices[0]


# --- the realistic fixture ------------------------------------------------------------------------------


def test_one_valid_document_per_provider(converted: str, loaded: dict[str, ModelSpec]) -> None:
    assert sorted(documents(converted)) == ["amazon", "anthropic", "meta"]
    assert sorted(loaded) == [
        "amazon.nova-canvas-v1:0",
        "amazon.nova-pro-v1:0",
        "amazon.nova-reel-v1:1",
        "amazon.titan-image-generator-v1",
        HAIKU,
        SONNET,
        "meta.llama3-1-70b-instruct-v1:0",
    ]
    # The whole output is one YAML stream too, so it can be read back in one go.
    assert len([doc for doc in yaml.safe_load_all(converted) if doc]) == 3


def test_model_metadata_comes_from_our_price_files(loaded: dict[str, ModelSpec]) -> None:
    haiku = loaded[HAIKU]
    assert (haiku.name, haiku.family, haiku.kind, haiku.max_output_tokens, haiku.context_window) == (
        "Claude 3.5 Haiku",
        "claude",
        "text",
        8192,
        200000,
    )
    # The price list calls it "Llama 3.1 70B"; Bedrock (and our file) "Llama 3.1 70B Instruct".
    assert loaded["meta.llama3-1-70b-instruct-v1:0"].name == "Llama 3.1 70B Instruct"
    assert loaded["amazon.nova-reel-v1:1"].aliases == ("amazon.nova-reel-v1:0",)
    assert loaded["amazon.titan-image-generator-v1"].lifecycle == "legacy"


def test_native_token_rates_are_per_million(loaded: dict[str, ModelSpec]) -> None:
    haiku = entry(loaded, HAIKU)
    assert (haiku.effective, haiku.checked, haiku.source) == (dt.date(2025, 11, 1), TODAY, NATIVE_SOURCE)
    rates = haiku.spec.rates
    assert (rates.input, rates.output, rates.cache_read, rates.cache_write_5m, rates.cache_write_1h) == (
        d("0.80"),
        d("4.00"),
        d("0.08"),
        d("1.00"),
        None,
    )
    # Batch rows at half the on-demand rows ($0.40/$2.00) become a multiplier that follows every route.
    assert (haiku.spec.batch, haiku.spec.batch_multiplier) == (None, d("0.5"))
    assert haiku.spec.latency_optimized is None


def test_other_regions_are_overrides_only_where_they_differ(loaded: dict[str, ModelSpec]) -> None:
    haiku = entry(loaded, HAIKU)
    # us-west-2 lists the us-east-1 rates, so it needs no override; us-east-2 adds latency-optimized.
    assert sorted(haiku.regions) == ["us-east-2"]
    ohio = haiku.for_region("us-east-2")
    assert ohio.latency_optimized is not None
    assert (ohio.latency_optimized.input, ohio.latency_optimized.output) == (d("1.00"), d("5.00"))
    assert ohio.rates == haiku.spec.rates

    nova = entry(loaded, "amazon.nova-pro-v1:0")
    frankfurt = nova.for_region("eu-central-1")
    assert (frankfurt.rates.input, frankfurt.rates.output, frankfurt.rates.cache_read) == (
        d("1.05"),
        d("4.20"),
        d("0.20"),
    )
    # Frankfurt's batch rows are not one fraction of its on-demand rows, so they stay written out, and they
    # are Frankfurt's own rather than the us-east-1 multiplier.
    assert frankfurt.batch is not None
    assert (frankfurt.batch.input, frankfurt.batch.output) == (d("0.525"), d("1.60"))
    assert frankfurt.batch_multiplier is None
    assert nova.spec.batch_multiplier == d("0.5")


def test_free_cache_writes_and_provisioned_commitments(loaded: dict[str, ModelSpec]) -> None:
    nova = entry(loaded, "amazon.nova-pro-v1:0")
    assert nova.spec.rates.cache_write_5m == 0
    assert dict(nova.spec.provisioned) == {
        "no_commit": d("30.00"),
        "one_month": d("25.00"),
        "six_month": d("18.00"),
    }
    llama = entry(loaded, "meta.llama3-1-70b-instruct-v1:0")
    assert dict(llama.spec.provisioned) == {"one_month": d("21.18")}
    assert dict(llama.for_region("us-west-2").provisioned) == {
        "one_month": d("21.18"),
        "no_commit": d("24.00"),
    }


def test_flex_and_priority_become_multipliers(loaded: dict[str, ModelSpec]) -> None:
    llama = entry(loaded, "meta.llama3-1-70b-instruct-v1:0")
    assert (llama.spec.rates.input, llama.spec.rates.output) == (d("0.72"), d("0.72"))
    assert dict(llama.spec.service_tiers) == {"priority": d("1.75"), "flex": d("0.5")}


def test_marketplace_listing_with_routes_cache_ttl_and_long_context(loaded: dict[str, ModelSpec]) -> None:
    sonnet = entry(loaded, SONNET)
    assert sonnet.effective == dt.date(2025, 10, 1)
    assert sonnet.source == "AWS Price List API (AmazonBedrockFoundationModels, 2025-11-20)"
    assert "threshold_tokens 200000 is assumed" in sonnet.notes
    rates = sonnet.spec.rates
    # "Units" on a Marketplace token row are millions of tokens: the price is kept as is.
    assert (rates.input, rates.output, rates.cache_read, rates.cache_write_5m, rates.cache_write_1h) == (
        d("3.30"),
        d("16.50"),
        d("0.33"),
        d("4.125"),
        d("6.60"),
    )
    # $1.65/$8.25 is half of on-demand: as a multiplier it also halves the global and long-context rates.
    assert (sonnet.spec.batch, sonnet.spec.batch_multiplier) == (None, d("0.5"))
    long_context = sonnet.spec.long_context
    assert long_context is not None
    assert (long_context.threshold_tokens, long_context.rates.input, long_context.rates.output) == (
        200000,
        d("6.60"),
        d("24.75"),
    )
    global_route = sonnet.spec.routes["global"]
    assert (global_route.input, global_route.output, global_route.cache_read) == (
        d("3.00"),
        d("15.00"),
        d("0.30"),
    )
    global_long = sonnet.spec.route_long_context["global"]
    assert (global_long.input, global_long.output) == (d("6.00"), d("22.50"))
    assert sonnet.regions == {}


def test_images_and_video(loaded: dict[str, ModelSpec]) -> None:
    # Our file names it "Amazon Nova Canvas"; the price list says "Nova Canvas".
    canvas = entry(loaded, "amazon.nova-canvas-v1:0").spec.images
    assert [(band.width, band.height, band.quality, band.usd) for band in canvas] == [
        (1024, 1024, "standard", d("0.04")),
        (1024, 1024, "premium", d("0.06")),
        (2048, 2048, "standard", d("0.06")),
        (2048, 2048, "premium", d("0.08")),
    ]
    titan = entry(loaded, "amazon.titan-image-generator-v1").spec.images
    assert [(band.width, band.quality, band.usd) for band in titan] == [
        (512, "standard", d("0.008")),
        (512, "premium", d("0.01")),
        (1024, "standard", d("0.01")),
        (1024, "premium", d("0.012")),
    ]
    assert entry(loaded, "amazon.nova-reel-v1:1").spec.video_second == d("0.08")


def test_prices_are_quoted_decimal_strings(converted: str) -> None:
    body = "\n".join(line for line in converted.splitlines() if not line.startswith("#"))
    assert 'input: "0.80"' in body
    assert 'cache_write_5m: "4.125"' in body
    priced = re.findall(
        r"^\s*(?:input|output|cache_\w+|usd|no_commit|one_month|six_month|video_second): (.*)$",
        body,
        re.MULTILINE,
    )
    assert priced
    assert all(re.fullmatch(r'"\d+\.\d+"', value) for value in priced)
    assert "&id" not in body


def test_every_product_left_out_is_listed_with_a_reason(converted: str) -> None:
    unmapped = comments(converted, "unmapped")
    assert [line.split()[2] for line in unmapped] == [
        "USE1-Jamba1.5Large-input-tokens",
        "USE1-Jamba1.5Large-output-tokens",
        "USE1-MP:USE1_InputTokenCount-Units",
    ]
    assert "no model named 'Jamba 1.5 Large' in the price files" in unmapped[0]
    assert "'Claude Instant (100K)'" in unmapped[2]
    skipped = {line.split()[2]: line.rsplit("]: ", 1)[1] for line in comments(converted, "skipped")}
    assert skipped == {
        "USE1-GuardrailContentPolicyTextUnitsConsumed": (
            "guardrails are maintained by hand in prices/bedrock.yaml"
        ),
        "USE1-Llama3-1-70B-ProvisionedThroughput-3month-ModelUnits": (
            "provisioned throughput commitment other than no-commit, 1 month or 6 months"
        ),
        "USE1-MP:USE1_InputTokenCount_Global_Batch-Units": (
            "batch, service-tier or latency-optimized rates of a route or long context are not in the schema"
        ),
        "USE1-MP:USE1_Reserved_1Month_TPM-Units": "reserved throughput (per TPM-hour) is not in the schema",
        "USE1-NovaPro-Model-Customization-input-tokens": "model customization / custom-model rate",
        "USE1-TitanImageGeneratorG1-Custom-T2I-1024-Standard": "model customization / custom-model rate",
        "USE1-qwen.qwen3-32b-mantle-input-tokens-standard": (
            "bedrock-mantle (OpenAI-compatible endpoint) rates are not in the schema"
        ),
    }
    assert comments(converted, "conflict") == []
    assert comments(converted, "not emitted") == []
    assert converted.startswith("# Converted from the AWS Price List API")
    assert "# 71 products read; 7 models converted" in converted


# --- input shapes ---------------------------------------------------------------------------------------


def fixture_pages() -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = json.loads(PRICE_LIST.read_text(encoding="utf-8"))
    return pages


def all_products() -> list[dict[str, Any]]:
    return [json.loads(item) for page in fixture_pages() for item in page["PriceList"]]


def test_one_response_a_bare_list_and_concatenated_pages_convert_the_same(
    converted: str, models: list[ModelSpec], tmp_path: Path
) -> None:
    one_response = {"FormatVersion": "aws_v1", "PriceList": [json.dumps(p) for p in all_products()]}
    assert convert_price_list(one_response, models=models, today=TODAY) == converted
    assert convert_price_list(all_products(), models=models, today=TODAY) == converted
    concatenated = tmp_path / "pages.json"
    concatenated.write_text("\n".join(json.dumps(page) for page in fixture_pages()), encoding="utf-8")
    assert convert_price_list_file(concatenated, models=models, today=TODAY) == converted


def test_bulk_offer_file(models: list[ModelSpec]) -> None:
    native = [p for p in all_products() if p["serviceCode"] == "AmazonBedrock"]
    offer = {
        "formatVersion": "v1.0",
        "offerCode": "AmazonBedrock",
        "publicationDate": "2025-11-20T18:31:02Z",
        "products": {p["product"]["sku"]: p["product"] for p in native},
        "terms": {"OnDemand": {p["product"]["sku"]: p["terms"]["OnDemand"] for p in native}},
    }
    text = convert_price_list(offer, models=models, today=TODAY)
    haiku = yaml.safe_load(documents(text)["anthropic"])["models"][0]
    assert haiku["id"] == HAIKU
    assert haiku["prices"][0]["input"] == "0.80"
    assert haiku["prices"][0]["source"] == NATIVE_SOURCE


# --- model ids and units --------------------------------------------------------------------------------


def product(usagetype: str, usd: str, unit: str = "1K tokens", **attrs: str) -> dict[str, Any]:
    sku = re.sub(r"[^A-Z0-9]", "", usagetype.upper())[:16]
    return {
        "product": {
            "sku": sku,
            "productFamily": None,
            "attributes": {"usagetype": usagetype, "regionCode": attrs.pop("region", "us-east-1"), **attrs},
        },
        "serviceCode": "AmazonBedrock",
        "terms": {
            "OnDemand": {
                f"{sku}.JRTCKXETXF": {
                    "effectiveDate": "2025-11-01T00:00:00Z",
                    "priceDimensions": {
                        f"{sku}.JRTCKXETXF.6YS6EN2CT7": {"unit": unit, "pricePerUnit": {"USD": usd}}
                    },
                }
            }
        },
        "publicationDate": "2025-11-20T18:31:02Z",
    }


def token_pair(
    name: str, stem: str, inp: str, out: str, region: str = "us-east-1", **attrs: str
) -> list[Any]:
    prefix = {"us-east-1": "USE1", "eu-west-1": "EU"}[region]
    return [
        product(
            f"{prefix}-{stem}-input-tokens",
            inp,
            model=name,
            inferenceType="Input tokens",
            region=region,
            **attrs,
        ),
        product(
            f"{prefix}-{stem}-output-tokens",
            out,
            model=name,
            inferenceType="Output tokens",
            region=region,
            **attrs,
        ),
    ]


def spec(model_id: str, name: str, provider: str = "anthropic") -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider=provider,
        name=name,
        family="claude",
        kind="text",
        max_output_tokens=4096,
        context_window=None,
        lifecycle="active",
        aliases=(),
        prices=(),
        source_file="test",
    )


def only_model(text: str, provider: str = "anthropic") -> dict[str, Any]:
    model: dict[str, Any] = yaml.safe_load(documents(text)[provider])["models"][0]
    return model


def test_an_attribute_carrying_the_model_id_wins(models: list[ModelSpec]) -> None:
    products = [
        product(
            "USE1-Qwen3-32B-input-tokens",
            "0.15",
            "1M tokens",
            model="qwen.qwen3-32b",
            inferenceType="Input tokens",
        ),
        product(
            "USE1-Qwen3-32B-output-tokens",
            "0.60",
            "1M tokens",
            model="qwen.qwen3-32b",
            inferenceType="Output tokens",
        ),
        product(
            "USE1-Grok-input-tokens", "1.25", "1M tokens", model="xai.grok-4-3", inferenceType="Input tokens"
        ),
    ]
    text = convert_price_list(products, models=models, today=TODAY)
    qwen = only_model(text, "qwen")
    assert qwen["id"] == "qwen.qwen3-32b-v1:0"
    assert (qwen["prices"][0]["input"], qwen["prices"][0]["output"]) == ("0.15", "0.60")
    assert comments(text, "unmapped") == [
        "# unmapped: USE1-Grok-input-tokens [AmazonBedrock us-east-1 'xai.grok-4-3']: "
        "model id 'xai.grok-4-3' is not in the price files (add the model first)"
    ]


def test_unit_conversion_is_exact() -> None:
    products = token_pair("Claude 2.1", "Claude2.1", "0.0000350000", "0.00012345678")
    text = convert_price_list(products, models=[spec("anthropic.claude-v2:1", "Claude 2.1")], today=TODAY)
    price = only_model(text)["prices"][0]
    assert (price["input"], price["output"]) == ("0.035", "0.12345678")


def test_documented_name_table_is_the_fallback() -> None:
    # Our file names the model differently; PRICE_LIST_NAMES knows the price-list spelling.
    ours = spec("anthropic.claude-v2:1", "Anthropic Claude v2.1")
    text = convert_price_list(
        token_pair("Claude 2.1", "Claude2.1", "0.008", "0.024"), models=[ours], today=TODAY
    )
    assert only_model(text)["id"] == "anthropic.claude-v2:1"
    assert price_list.PRICE_LIST_NAMES["Claude 2.1"] == "anthropic.claude-v2:1"


def test_a_name_matching_two_models_is_unmapped_not_guessed() -> None:
    twins = [spec("anthropic.a-v1:0", "Claude X"), spec("anthropic.b-v1:0", "Anthropic Claude X")]
    text = convert_price_list(token_pair("Claude X", "ClaudeX", "0.001", "0.002"), models=twins, today=TODAY)
    unmapped = comments(text, "unmapped")
    assert len(unmapped) == 2
    assert "matches several models: anthropic.a-v1:0, anthropic.b-v1:0" in unmapped[0]
    assert "# Nothing could be converted." in text


def test_conflicting_rates_are_reported_and_the_model_held_back() -> None:
    products = [
        *token_pair("Claude 2.1", "Claude2.1", "0.008", "0.024"),
        product("USE1-Claude2.1-input-tokens-v2", "0.009", model="Claude 2.1", inferenceType="Input tokens"),
    ]
    text = convert_price_list(products, models=[spec("anthropic.claude-v2:1", "Claude 2.1")], today=TODAY)
    assert comments(text, "conflict") == [
        "# conflict: anthropic.claude-v2:1 us-east-1 input: 8.00 (USE1-Claude2.1-input-tokens); "
        "9.00 (USE1-Claude2.1-input-tokens-v2)"
    ]
    assert comments(text, "not emitted") == [
        "# not emitted: anthropic.claude-v2:1: no input rate in us-east-1, which a text model needs"
    ]


def test_a_model_not_priced_in_us_east_1_is_held_back() -> None:
    products = token_pair("Claude 2.1", "Claude2.1", "0.008", "0.024", region="eu-west-1")
    text = convert_price_list(products, models=[spec("anthropic.claude-v2:1", "Claude 2.1")], today=TODAY)
    assert comments(text, "not emitted") == [
        "# not emitted: anthropic.claude-v2:1: no us-east-1 price to use as the base (priced in eu-west-1)"
    ]


def test_a_zero_token_rate_is_flagged_for_review() -> None:
    products = token_pair("Claude 2.1", "Claude2.1", "0", "0.024")
    text = convert_price_list(products, models=[spec("anthropic.claude-v2:1", "Claude 2.1")], today=TODAY)
    assert comments(text, "check") == [
        "# check: anthropic.claude-v2:1: us-east-1 input rate is 0 (a placeholder SKU?)"
    ]
    assert only_model(text)["prices"][0]["input"] == "0.00"


def test_bundled_models_are_the_default(monkeypatch: pytest.MonkeyPatch, converted: str) -> None:
    monkeypatch.setattr(price_list, "BUNDLED_PRICES", MODELS_DIR)
    assert convert_price_list_file(PRICE_LIST, today=TODAY) == converted


# --- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json at all", "not JSON"),
        ("", "the file is empty"),
        ('{"PriceList": [', "not JSON"),
        ('{"Products": []}', "expected a GetProducts response with 'PriceList'"),
        ("42", "top level is a int"),
        ('{"PriceList": "nope"}', "PriceList: must be a list of products"),
        ('{"PriceList": ["{broken"]}', "PriceList[0]: product is not JSON"),
        ('{"PriceList": [{"sku": "X"}]}', "PriceList[0]: not a Price List product (no product.attributes)"),
        ("[1, 2]", "[0]: a product must be a JSON object, got int"),
    ],
)
def test_bad_input_raises_a_typed_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "pl.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PriceListError) as caught:
        convert_price_list_file(path, models=[])
    assert isinstance(caught.value, PriceFileError)
    assert caught.value.path == str(path)
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


def test_missing_file_raises_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(PriceListError, match="cannot read file"):
        convert_price_list_file(tmp_path / "absent.json", models=[])


def test_function_form_rejects_non_price_lists() -> None:
    with pytest.raises(PriceListError, match="expected a GetProducts response"):
        convert_price_list({"metadata": {}}, models=[])


# --- command line ---------------------------------------------------------------------------------------


@pytest.fixture
def cli_main(monkeypatch: pytest.MonkeyPatch) -> Any:
    from bedrock_budget.cli import main

    monkeypatch.setattr(price_list, "BUNDLED_PRICES", MODELS_DIR)
    return main


def test_cli_prints_the_yaml(
    cli_main: Any, capsys: pytest.CaptureFixture[str], models: list[ModelSpec]
) -> None:
    assert cli_main(["prices", "import-price-list", str(PRICE_LIST)]) == 0
    out = capsys.readouterr().out
    assert out == convert_price_list_file(PRICE_LIST, models=models, today=dt.date.today())
    assert sorted(documents(out)) == ["amazon", "anthropic", "meta"]


def test_cli_writes_the_output_file(
    cli_main: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "new-prices.yaml"
    assert cli_main(["prices", "import-price-list", str(PRICE_LIST), "-o", str(target)]) == 0
    assert f"wrote {target}" in capsys.readouterr().out
    assert "provider: anthropic" in target.read_text(encoding="utf-8")


def test_cli_reports_bad_input_on_one_line(
    cli_main: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "pl.json"
    path.write_text("<html>throttled</html>", encoding="utf-8")
    assert cli_main(["prices", "import-price-list", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "not JSON" in err


def batch_pair(stem: str, inp: str, out: str, region: str = "us-east-1") -> list[Any]:
    prefix = {"us-east-1": "USE1", "eu-west-1": "EU"}[region]
    return [
        product(
            f"{prefix}-{stem}-{kind}-tokens-batch",
            usd,
            model="Claude 2.1",
            region=region,
            **{"inferenceType": f"{kind.capitalize()} tokens", "feature": "Batch Inference"},
        )
        for kind, usd in (("input", inp), ("output", out))
    ]


def load_converted(text: str, tmp_path: Path) -> PriceEntry:
    path = tmp_path / "anthropic.yaml"
    path.write_text(documents(text)["anthropic"], encoding="utf-8")
    return load_price_file(path).models[0].prices[0]


def test_batch_rows_at_one_fraction_become_a_multiplier_that_regions_inherit(tmp_path: Path) -> None:
    products = [
        *token_pair("Claude 2.1", "Claude2.1", "0.008", "0.024"),
        *batch_pair("Claude2.1", "0.004", "0.012"),
        *token_pair("Claude 2.1", "Claude2.1", "0.010", "0.030", region="eu-west-1"),
        *batch_pair("Claude2.1", "0.005", "0.015", region="eu-west-1"),
    ]
    text = convert_price_list(products, models=[spec("anthropic.claude-v2:1", "Claude 2.1")], today=TODAY)
    price = load_converted(text, tmp_path)
    assert (price.spec.batch, price.spec.batch_multiplier) == (None, d("0.5"))
    ireland = price.for_region("eu-west-1")
    assert (ireland.rates.input, ireland.batch_multiplier) == (d("10.00"), d("0.5"))


def test_written_batch_rows_stay_with_their_region(tmp_path: Path) -> None:
    # us-east-1 batch is not one fraction of on-demand (0.5 input, 0.25 output), and eu-west-1 lists the same
    # batch rows under different on-demand rates: its override must carry them, not inherit them silently.
    products = [
        *token_pair("Claude 2.1", "Claude2.1", "0.008", "0.024"),
        *batch_pair("Claude2.1", "0.004", "0.006"),
        *token_pair("Claude 2.1", "Claude2.1", "0.010", "0.030", region="eu-west-1"),
        *batch_pair("Claude2.1", "0.004", "0.006", region="eu-west-1"),
    ]
    text = convert_price_list(products, models=[spec("anthropic.claude-v2:1", "Claude 2.1")], today=TODAY)
    price = load_converted(text, tmp_path)
    assert price.spec.batch is not None
    assert (price.spec.batch.input, price.spec.batch.output) == (d("4.00"), d("6.00"))
    assert only_model(text)["prices"][0]["regions"]["eu-west-1"]["batch"] == {
        "input": "4.00",
        "output": "6.00",
    }


def test_written_batch_is_dropped_when_a_region_with_its_own_rates_lists_none(tmp_path: Path) -> None:
    products = [
        *token_pair("Claude 2.1", "Claude2.1", "0.008", "0.024"),
        *batch_pair("Claude2.1", "0.004", "0.006"),
        *token_pair("Claude 2.1", "Claude2.1", "0.010", "0.030", region="eu-west-1"),
    ]
    text = convert_price_list(products, models=[spec("anthropic.claude-v2:1", "Claude 2.1")], today=TODAY)
    price = load_converted(text, tmp_path)
    assert (price.spec.batch, price.spec.batch_multiplier) == (None, None)
    assert comments(text, "check") == [
        "# check: anthropic.claude-v2:1: eu-west-1 has its own on-demand rates but no batch rows; the "
        "written us-east-1 batch rates would not apply there, so no batch price is emitted"
    ]
