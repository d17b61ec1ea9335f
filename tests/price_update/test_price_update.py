"""``prices update`` end to end: the real boto3 ``pricing`` and ``bedrock`` clients against the fake, which
serves the bulk offer fixtures as GetProducts pages (``fixtures/offers/<offer>/index.json``, shaped like
``offers/v1.0/aws/<offer>/current/us-east-1/index.json``) and ``fixtures/list-foundation-models.json``.

The table compared against is ``fixtures/table`` (standing in for the bundled prices, so other work on
``prices/`` cannot move these numbers). The fixtures hold the traps: Anthropic rows in AmazonBedrock
that quote input only, a display name ("Nova 2.0 Lite") only ListFoundationModels knows (as "Nova 2
Lite"), provisioned-only ``…:200k`` variants under the same name, two models both called "Claude",
``titanModel``, a cross-region-global batch row, rows the schema cannot hold, and names nothing maps.
The fixtures' SKUs and numbers are made up; their shape follows real captures field for field.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bedrock_budget.cli.app import run
from bedrock_budget.pricing import table as table_module
from bedrock_budget.pricing.schema import validate_paths
from bedrock_budget.pricing.table import load_price_table
from bedrock_budget.testing import FakeBedrock
from bedrock_budget.usage import Usage

FIXTURES = Path(__file__).parent / "fixtures"
BEDROCK_OFFER = FIXTURES / "offers" / "AmazonBedrock" / "index.json"
FM_OFFER = FIXTURES / "offers" / "AmazonBedrockFoundationModels" / "index.json"
FOUNDATION_MODELS = FIXTURES / "list-foundation-models.json"
TABLE = FIXTURES / "table"
OPUS = "anthropic.claude-opus-5-3-v1:0"
LLAMA = "meta.llama3-1-8b-instruct-v1:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


def get_products_items(offer_path: Path, *, without: str = "") -> list[str]:
    """A bulk offer file's products as GetProducts returns them: one JSON string per product."""
    offer = json.loads(offer_path.read_text())
    items = []
    for sku, product in offer["products"].items():
        if without and without in json.dumps(product):
            continue
        item = {
            "product": product,
            "serviceCode": offer["offerCode"],
            "terms": {"OnDemand": offer["terms"]["OnDemand"][sku]},
            "version": offer["version"],
            "publicationDate": offer["publicationDate"],
        }
        items.append(json.dumps(item))
    return items


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # one finding a line; test_diff_fits_80_columns checks wrapping
    monkeypatch.setattr(table_module, "BUNDLED_PRICES", TABLE)
    with FakeBedrock() as server:
        server.add_price_list_products("AmazonBedrock", get_products_items(BEDROCK_OFFER))
        server.add_price_list_products("AmazonBedrockFoundationModels", get_products_items(FM_OFFER))
        server.set_foundation_models(json.loads(FOUNDATION_MODELS.read_text())["modelSummaries"])
        yield server


def update(
    fake: FakeBedrock, layer: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    code = run(["prices", "update", "--endpoint-url", fake.endpoint_url, "--output", str(layer), *extra])
    out, err = capsys.readouterr()
    assert err == "" or code == 2
    return code, out + err


# --- the wire -------------------------------------------------------------------------------------------


def test_real_pricing_client_pages_filters_and_errors(fake: FakeBedrock) -> None:
    client = fake.pricing_client()
    pages = list(
        client.get_paginator("get_products").paginate(
            ServiceCode="AmazonBedrockFoundationModels",
            FormatVersion="aws_v1",
            PaginationConfig={"PageSize": 5},
        )
    )
    items = [item for page in pages for item in page["PriceList"]]
    assert len(pages) == 5  # 22 products, 5 a page: NextToken carried four times
    assert all(isinstance(item, str) for item in items)
    assert len({json.loads(item)["product"]["sku"] for item in items}) == 22
    assert pages[0]["FormatVersion"] == "aws_v1"

    frankfurt = client.get_products(
        ServiceCode="AmazonBedrockFoundationModels",
        Filters=[{"Type": "TERM_MATCH", "Field": "regionCode", "Value": "eu-central-1"}],
    )["PriceList"]
    assert [json.loads(i)["product"]["attributes"]["usagetype"] for i in frankfurt] == [
        "EUC1-MP:EUC1_InputTokenCount-Units",
        "EUC1-MP:EUC1_OutputTokenCount-Units",
    ]
    with pytest.raises(client.exceptions.InvalidNextTokenException):
        client.get_products(ServiceCode="AmazonBedrock", NextToken="not-a-token")
    assert client.get_products(ServiceCode="AmazonEC2")["PriceList"] == []
    assert fake.calls("get_products")[-1].operation == "GetProducts"


def test_real_bedrock_client_lists_foundation_models(fake: FakeBedrock) -> None:
    control = fake.control_client()
    everything = control.list_foundation_models()["modelSummaries"]
    assert len(everything) == 13
    embeddings = control.list_foundation_models(byOutputModality="EMBEDDING")["modelSummaries"]
    assert [m["modelId"] for m in embeddings] == ["amazon.titan-embed-text-v2:0"]


# --- prices update --------------------------------------------------------------------------------------


def test_update_writes_a_dated_layer_and_a_diff_then_finds_no_change(
    fake: FakeBedrock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layer = tmp_path / "aws-prices"
    code, out = update(fake, layer, capsys)
    assert code == 1
    # New models: ids from ListFoundationModels, not from a hand-kept table; the :200k variant is ignored.
    assert f"+ {OPUS} (Claude Opus 5.3), effective 2026-10-01" in out
    assert "us-east-1 input 5.50, output 27.50 (+6 more rates, 1 region)" in out  # Frankfurt: the same
    assert "+ amazon.nova-2-lite-v1:0 (Nova 2 Lite), effective 2026-11-01" in out
    # A price change, dated by the rows' effectiveDate, with old and new rates.
    assert f"~ {LLAMA}, effective 2026-11-15" in out
    assert "us-east-1, us-west-2 input 0.22 -> 0.18" in out  # one line for the regions a change shares
    # Rates the table lacked (Nova writes caches free) are changes too, in every region they reach:
    # regions without their own value inherit us-east-1's, and the diff says so.
    assert "us-east-1, us-gov-west-1, us-west-2 cache_write_5m none -> 0.00" in out
    # The input-only Anthropic row is reported and changes nothing.
    assert f"{HAIKU} us-east-1, us-west-2: the Price List quotes no output rate" in out
    assert HAIKU not in out.split("Partial rows")[0]
    # Names nothing maps are listed with the offer they came from.
    assert "'Palmyra X5' (AmazonBedrock, 2 rows)" in out
    assert "'Claude Instant (100K)' (AmazonBedrockFoundationModels, 1 row)" in out
    assert "5 changes written to" in out

    assert sorted(p.name for p in layer.iterdir()) == ["amazon.yaml", "anthropic.yaml", "meta.yaml"]
    validate_paths([layer])
    table = load_price_table(extra_files=[layer])
    opus = table.model(OPUS)
    entry = opus.prices[-1]
    assert (opus.provider, opus.kind, opus.family) == ("anthropic", "text", "claude")
    assert entry.source.startswith("AWS Price List API (AmazonBedrockFoundationModels, 2026-11-30); SKU ")
    assert (entry.spec.rates.input, entry.spec.rates.output) == (Decimal("5.50"), Decimal("27.50"))
    assert entry.spec.rates.cache_write_1h == Decimal("11.00")
    assert entry.spec.routes["global"].input == Decimal("5.00")
    # Batch rows that are half of on-demand become the rule itself, so global and long-context batch follow.
    assert entry.spec.batch_multiplier == Decimal("0.5")
    assert table.price(OPUS, Usage(output_tokens=1_000_000), batch=True).total_usd == Decimal("13.75")
    assert "eu-central-1" not in entry.regions  # the same rates as us-east-1
    one_million_in = Usage(input_tokens=1_000_000)
    assert table.price(f"global.{OPUS}", one_million_in).total_usd == Decimal("5.00")
    # A change keeps the history: old usage still prices at the old rate.
    llama = table.model(LLAMA)
    assert [e.effective for e in llama.prices] == [dt.date(2024, 7, 23), dt.date(2026, 11, 15)]
    assert table.price(LLAMA, one_million_in, at=dt.date(2026, 11, 14)).total_usd == Decimal("0.22")
    assert table.price(LLAMA, one_million_in, at=dt.date(2026, 11, 15)).total_usd == Decimal("0.18")
    # The partial row did not replace Claude 3 Haiku's complete entry.
    assert table.model(HAIKU).prices[-1].spec.rates.input == Decimal("0.25")
    assert table.model("amazon.nova-micro-v1:0").prices[-1].regions["us-gov-west-1"].rates.input == Decimal(
        "0.042"
    )

    before = {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in layer.iterdir()}
    code, out = update(fake, layer, capsys)
    assert (code, out.splitlines()[-1]) == (0, "No change.")
    assert {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in layer.iterdir()} == before


def test_a_model_gone_from_the_price_list_is_marked_legacy_once(
    fake: FakeBedrock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layer = tmp_path / "aws-prices"
    assert update(fake, layer, capsys)[0] == 1
    fake.set_price_list_products(
        "AmazonBedrockFoundationModels", get_products_items(FM_OFFER, without="Opus")
    )
    code, out = update(fake, layer, capsys)
    assert code == 1
    assert f"No longer in the Price List (1; marked legacy, prices kept):\n  - {OPUS}" in out
    opus = load_price_table(extra_files=[layer]).model(OPUS)
    assert opus.lifecycle == "legacy"
    assert opus.prices[-1].spec.rates.input == Decimal("5.50")
    assert update(fake, layer, capsys)[0] == 0


def test_json_output_lists_every_row_left_out(
    fake: FakeBedrock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = update(fake, tmp_path / "layer", capsys, "--json")
    data = json.loads(out)
    assert code == 1
    assert data["changed"] is True
    assert {m["model_id"] for m in data["new_models"]} == {OPUS, "amazon.nova-2-lite-v1:0"}
    llama = next(m for m in data["changed_models"] if m["model_id"] == LLAMA)
    assert {"region": "us-east-1", "rate": "input", "old": "0.22", "new": "0.18"} in llama["changes"]
    assert any("Model-Customization" in row for row in data["skipped"])
    assert any("cross-region-global-batch" in row for row in data["skipped"])
    assert len(data["unmapped"]) == 3


def test_without_output_nothing_is_written(fake: FakeBedrock, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["prices", "update", "--endpoint-url", fake.endpoint_url])
    assert code == 1
    assert "nothing written (pass --output FOLDER" in capsys.readouterr().out


def test_aws_errors_are_one_line_and_exit_2(
    fake: FakeBedrock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.fail_next("ListFoundationModels", "AccessDeniedException", message="not allowed")
    code = run(["prices", "update", "--endpoint-url", fake.endpoint_url, "--output", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "error: cannot read Bedrock ListFoundationModels: AccessDeniedException: not allowed\n"
    assert not (tmp_path / "x").exists()


def test_import_price_list_reads_bulk_offer_files_into_the_same_layer(
    fake: FakeBedrock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    by_api = tmp_path / "api"
    by_files = tmp_path / "files"
    assert update(fake, by_api, capsys)[0] == 1
    args = ["prices", "import-price-list", str(BEDROCK_OFFER), str(FM_OFFER), "--layer", str(by_files)]
    assert run([*args, "--foundation-models", str(FOUNDATION_MODELS)]) == 1
    capsys.readouterr()
    for path in by_api.iterdir():
        assert (by_files / path.name).read_text() == path.read_text()
    assert run([*args, "--foundation-models", str(FOUNDATION_MODELS)]) == 0
    # Without ListFoundationModels the new models have no id: listed as unmapped, not dropped.
    assert run([*args[:4], "--layer", str(tmp_path / "bare")]) == 1
    out = capsys.readouterr().out
    assert "'Claude Opus 5.3' (AmazonBedrockFoundationModels, 11 rows)" in out


def test_diff_fits_80_columns(
    fake: FakeBedrock, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out = update(fake, tmp_path / "layer", capsys)
    assert code == 1
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines[:-1]), [line for line in lines if len(line) > 80]
    assert "      give it)" in out  # a long note continues indented under its model


def test_a_name_bedrock_gives_two_models_is_unmapped_not_guessed() -> None:
    from bedrock_budget.pricing.maintenance.price_update import plan_update

    offer = json.loads(BEDROCK_OFFER.read_text())
    sku, product = next(
        (s, p) for s, p in offer["products"].items() if p["attributes"].get("model") == "Palmyra X5"
    )
    product["attributes"].update(model="Claude", provider="Anthropic")
    single = {
        **offer,
        "products": {sku: product},
        "terms": {"OnDemand": {sku: offer["terms"]["OnDemand"][sku]}},
    }
    plan = plan_update(
        single,
        table=load_price_table([TABLE]),
        foundation_models=json.loads(FOUNDATION_MODELS.read_text())["modelSummaries"],
        today=dt.date(2026, 12, 3),
    )
    assert not plan.has_changes
    assert len(plan.unmapped) == 1
    assert (
        "'Claude' matches several Bedrock models: anthropic.claude-v2, anthropic.claude-v2:1"
        in plan.unmapped[0]
    )


def test_history_is_never_rewritten(tmp_path: Path) -> None:
    """The table already has a Llama entry dated after the Price List's effectiveDate (2026-11-15) with
    another price: the change is dated the day it was found, and the older entries stay."""
    from bedrock_budget.pricing.maintenance.price_update import plan_update

    table_dir = tmp_path / "table"
    table_dir.mkdir()
    text = (TABLE / "meta.yaml").read_text()
    later = '      - effective: 2026-11-20\n        checked: 2026-11-22\n        source: "test table"\n'
    (table_dir / "meta.yaml").write_text(text + later + '        input: "0.20"\n        output: "0.20"\n')
    offer = json.loads(BEDROCK_OFFER.read_text())
    plan = plan_update(offer, table=load_price_table([table_dir]), today=dt.date(2026, 12, 3))
    (llama,) = plan.changed
    assert (llama.model_id, llama.effective) == (LLAMA, dt.date(2026, 12, 3))
    assert "effectiveDate 2026-11-15 is not after the current entry's 2026-11-20" in llama.notes
    entries = plan.documents["meta"]["models"][0]["prices"]
    assert [e["effective"] for e in entries] == [
        dt.date(2024, 7, 23),
        dt.date(2026, 11, 20),
        dt.date(2026, 12, 3),
    ]
    # The offer alone (no ListFoundationModels): models it cannot name are unmapped, none guessed.
    assert any("'Nova 2.0 Lite'" in row for row in plan.unmapped)
    assert not plan.new


def test_the_layer_takes_in_later_fixes_to_the_prices_under_it(
    fake: FakeBedrock, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A layered model replaces the bundled one whole; without this, a release's fixes to a model the layer
    holds (a corrected entry, a new one, a better output limit) would never be seen again."""
    import shutil

    bundled = tmp_path / "bundled"
    shutil.copytree(TABLE, bundled)
    monkeypatch.setattr(table_module, "BUNDLED_PRICES", bundled)
    layer = tmp_path / "aws-prices"
    assert update(fake, layer, capsys)[0] == 1

    meta = bundled / "meta.yaml"
    text = meta.read_text().replace("max_output_tokens: 2048", "max_output_tokens: 4096")
    meta.write_text(
        text.replace(
            'checked: 2026-11-22\n        source: "test table"',
            'checked: 2026-12-01\n        source: "fixed"',
        )
    )
    code, out = update(fake, layer, capsys)
    assert code == 1
    assert (
        f"{LLAMA}: max_output_tokens; entry effective 2024-07-23 taken from the prices under the layer" in out
    )
    llama = load_price_table(extra_files=[layer]).model(LLAMA)
    assert llama.max_output_tokens == 4096
    assert [(e.effective, e.source) for e in llama.prices] == [
        (dt.date(2024, 7, 23), "fixed"),
        (dt.date(2026, 11, 15), llama.prices[1].source),
    ]
    assert llama.prices[1].source.startswith("AWS Price List API")
    assert update(fake, layer, capsys)[0] == 0


# --- from a shell: the fake serving saved files, `prices update` against it --------------------------------


def test_fake_bedrock_command_serves_saved_price_lists_to_prices_update(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "COLUMNS": "80"}
    env.pop("AWS_PROFILE", None)
    cli = [sys.executable, "-c", "import sys; from bedrock_budget.cli import main; sys.exit(main())"]
    files = ["--price-list", str(BEDROCK_OFFER), "--price-list", str(FM_OFFER)]
    server = subprocess.Popen(
        [*cli, "fake-bedrock", "--port", "0", *files, "--foundation-models", str(FOUNDATION_MODELS)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split(" on ")[1].split()[0]
        update_cmd = [*cli, "prices", "update", "--endpoint-url", url, "--output", str(tmp_path / "l")]
        first = subprocess.run(update_cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
        # Against the real bundled prices: what changes depends on them, that the offers were read does not.
        assert first.returncode in (0, 1), first.stderr
        assert "AmazonBedrockFoundationModels published 2026-11-30; 51 products read." in first.stdout
        second = subprocess.run(update_cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
        assert (second.returncode, second.stdout.splitlines()[-1]) == (0, "No change.")
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


def test_fake_bedrock_command_refuses_a_file_that_is_not_a_price_list(tmp_path: Path) -> None:
    not_a_price_list = tmp_path / "fm.json"
    not_a_price_list.write_text('{"modelSummaries": []}')
    assert run(["fake-bedrock", "--price-list", str(not_a_price_list)]) == 2


def test_fake_get_products_filter_types(fake: FakeBedrock) -> None:
    client = fake.pricing_client()

    def usagetypes(*filters: tuple[str, str, str]) -> list[str]:
        rules = [{"Type": kind, "Field": field, "Value": value} for kind, field, value in filters]
        items = client.get_products(ServiceCode="AmazonBedrock", Filters=rules, MaxResults=100)["PriceList"]
        return sorted(json.loads(item)["product"]["attributes"]["usagetype"] for item in items)

    assert usagetypes(("CONTAINS", "usagetype", "Llama3-1-8B")) == [
        "USE1-Llama3-1-8B-input-tokens",
        "USE1-Llama3-1-8B-output-tokens",
        "USW2-Llama3-1-8B-input-tokens",
        "USW2-Llama3-1-8B-output-tokens",
    ]
    assert usagetypes(
        ("ANY_OF", "model", "Palmyra X5, Claude 3 Haiku"), ("EQUALS", "regionCode", "us-east-1")
    ) == [
        "USE1-Claude3Haiku-input-tokens",
        "USE1-PalmyraX5-input-tokens",
        "USE1-PalmyraX5-output-tokens",
    ]
    everything = usagetypes()
    assert len(usagetypes(("NONE_OF", "regionCode", "us-east-1"))) == len(
        [u for u in everything if not u.startswith("USE1-")]
    )
    with pytest.raises(client.exceptions.InvalidParameterException):
        client.get_products(ServiceCode="AmazonBedrock", FormatVersion="aws_v2")
