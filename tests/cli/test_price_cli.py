"""The pricing commands are a contract for other tooling: flags, JSON shape, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from bedrock_budget.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "pricing" / "fixtures" / "good"
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main([*args, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert isinstance(payload, dict)
    return payload


def test_price_json_total_is_an_exact_decimal_string(capsys: pytest.CaptureFixture[str]) -> None:
    payload = run_json(
        capsys, "price", HAIKU, "--prices", str(FIXTURES), "--input-tokens", "2000", "--output-tokens", "500"
    )
    assert payload["total_usd"] == "0.0036"
    lines = payload["lines"]
    assert isinstance(lines, list)
    assert [line["dimension"] for line in lines] == ["input_tokens", "output_tokens"]
    assert sum(Decimal(line["usd"]) for line in lines) == Decimal("0.0036")


def test_price_cache_ttl_and_route(capsys: pytest.CaptureFixture[str]) -> None:
    payload = run_json(
        capsys,
        "price",
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "--prices",
        str(FIXTURES),
        "--cache-write-tokens",
        "1000000",
        "--cache-ttl",
        "1h",
    )
    assert payload["total_usd"] == "6.00"
    assert payload["route"] == "global"


def test_price_at_a_day_uses_the_rates_in_force_then(capsys: pytest.CaptureFixture[str]) -> None:
    # The fixture's Haiku costs $1.00 per 1M input tokens from 2024-11-04 and $0.80 from 2024-12-01.
    args = ["price", HAIKU, "--prices", str(FIXTURES), "--input-tokens", "1000000"]
    before_cut = run_json(capsys, *args, "--at", "2024-11-30")
    assert (before_cut["total_usd"], before_cut["price_effective"]) == ("1.00", "2024-11-04")
    assert before_cut["priced_at"] == "2024-11-30"
    assert "price_effective_assumed" not in before_cut
    after_cut = run_json(capsys, *args, "--at", "2024-12-01")
    assert (after_cut["total_usd"], after_cut["price_effective"]) == ("0.80", "2024-12-01")


def test_price_before_a_first_seen_price_is_priced_and_marked_assumed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Pixtral Large's price was first seen on 2026-11-22; the day it started is not known ($2.00 per 1M).
    payload = run_json(
        capsys, "price", "mistral.pixtral-large-2502-v1:0", "--input-tokens", "1000000", "--at", "2025-06-01"
    )
    assert payload["total_usd"] == "2.00"
    assert payload["price_effective"] == "2026-11-22"
    assert payload["price_effective_assumed"] is True
    assert payload["priced_at"] == "2025-06-01"
    assert (
        main(["price", "mistral.pixtral-large-2502-v1:0", "--input-tokens", "1", "--at", "2025-06-01"]) == 0
    )
    table = capsys.readouterr().out
    assert "price_effective_assumed=true" in table
    assert "on 2025-06-01" in table


def test_us_gov_profile_is_priced_in_govcloud_without_region(capsys: pytest.CaptureFixture[str]) -> None:
    model = "anthropic.claude-3-5-sonnet-20240620-v1:0"
    payload = run_json(capsys, "price", f"us-gov.{model}", "--input-tokens", "1000000")
    # GovCloud input rate $3.60 per 1M, not the commercial $3.00.
    assert (payload["region"], payload["region_priced"], payload["total_usd"]) == (
        "us-gov-west-1",
        "us-gov-west-1",
        "3.60",
    )
    east = run_json(
        capsys, "price", f"us-gov.{model}", "--input-tokens", "1000000", "--region", "us-gov-east-1"
    )
    assert east["region"] == "us-gov-east-1"
    commercial = run_json(capsys, "price", model, "--input-tokens", "1000000")
    assert (commercial["region"], commercial["total_usd"]) == ("us-east-1", "3.00")


def test_prices_show_gives_the_batch_rule_and_an_assumed_start(capsys: pytest.CaptureFixture[str]) -> None:
    sonnet = run_json(capsys, "prices", "show", "global.anthropic.claude-sonnet-4-5-20250929-v1:0")
    prices = sonnet["prices"]
    assert isinstance(prices, list)
    assert prices[0]["batch"] == {"multiplier": "0.5"}
    assert prices[0]["effective_assumed"] is False
    pixtral = run_json(capsys, "prices", "show", "mistral.pixtral-large-2502-v1:0")
    first = pixtral["prices"]
    assert isinstance(first, list)
    assert (first[0]["effective"], first[0]["effective_assumed"]) == ("2026-11-22", True)


def test_guardrail_provisioned_import_and_plan(capsys: pytest.CaptureFixture[str]) -> None:
    guard = run_json(
        capsys,
        "price-guardrail",
        "--prices",
        str(FIXTURES),
        "--text-units",
        "3000",
        "--policy",
        "content_filters",
        "--policy",
        "denied_topics",
    )
    assert guard["total_usd"] == "0.90"
    imported = run_json(
        capsys,
        "price-import",
        "--prices",
        str(FIXTURES),
        "--custom-model-units",
        "2",
        "--active-windows",
        "1",
    )
    assert imported["total_usd"] == "0.785"
    plan = run_json(
        capsys,
        "plan",
        "amazon.nova-micro-v1:0",
        "--prices",
        str(FIXTURES),
        "--requests-per-month",
        "1000000",
        "--input-tokens-per-request",
        "1000",
        "--output-tokens-per-request",
        "100",
    )
    assert plan["on_demand_usd"] == "49.00"
    assert plan["batch_usd"] == "24.50"
    assert plan["provisioned_usd"] is None
    assert "batch" in str(plan["recommendation"])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["price", "nobody.no-such-model-v1:0", "--input-tokens", "1"], "no price known"),
        (["price", HAIKU, "--input-tokens", "-5"], "-5"),
        (["price", HAIKU, "--bogus-flag"], "--bogus-flag"),
        (["price", "anthropic.claude-sonnet-4-5-20250929-v1:0", "--batch", "--input-tokens", "1"], "batch"),
        (["price", HAIKU, "--service-tier", "platinum"], "platinum"),
        (["price-provisioned", HAIKU, "--model-units", "0", "--commitment", "none", "--hours", "1"], "0"),
        (["price-guardrail", "--text-units", "10", "--policy", "nope"], "nope"),
        (["price", HAIKU, "--input-tokens", "1", "--at", "2025-02-30"], "'2025-02-30' is not a date"),
        (["price", HAIKU, "--input-tokens", "1", "--at", "June 1st"], "YYYY-MM-DD"),
        (["price", HAIKU, "--input-tokens", "1", "--at", "2020-01-01"], "has no price: no price in force on"),
        (["price", f"us-gov.{HAIKU}", "--input-tokens", "1", "--region", "us-east-1"], "cannot be called"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    assert main([*args, "--prices", str(FIXTURES)]) == 2
    captured = capsys.readouterr()
    err_lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(err_lines) == 1, captured.err
    assert err_lines[0].startswith("error: ")
    assert fragment in err_lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "acme.yaml"
    bad.write_text(
        textwrap.dedent(
            """\
            schema_version: 1
            provider: acme
            models:
              - id: acme.b-v1
                name: B
                family: b
                kind: text
                max_output_tokens: 10
                prices:
                  - {effective: 2025-01-01, checked: 2025-01-01, source: s, input: 0.5, output: "-1"}
              - id: acme.a-v1
                name: A
                family: a
                kind: text
                max_output_tokens: 10
                colour: red
                prices:
                  - {effective: 2025-01-01, checked: 2025-01-01, source: s, input: "1", output: "1"}
            """
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "bedrock_budget.cli.app", "prices", "validate", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "YAML float" in result.stderr
    assert "negative" in result.stderr
    assert "unknown key 'colour'" in result.stderr
    assert "ids must be sorted" in result.stderr


def test_bundled_prices_validate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "validate"]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


def test_help_has_an_example_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (
        ["price"],
        ["price-guardrail"],
        ["price-provisioned"],
        ["price-import"],
        ["plan"],
        ["prices", "list"],
        ["prices", "show"],
        ["prices", "validate"],
        ["prices", "import-price-list"],
    ):
        assert main([*command, "--help"]) == 0
        assert "Example" in capsys.readouterr().out, command


def test_fake_bedrock_command_serves_real_boto3() -> None:
    import socket

    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "bedrock_budget.cli.app", "fake-bedrock", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert f"127.0.0.1:{port}" in server.stdout.readline()
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        response = client.converse(
            modelId="amazon.nova-micro-v1:0", messages=[{"role": "user", "content": [{"text": "hi"}]}]
        )
        assert response["usage"]["inputTokens"] >= 1
        client.close()
    finally:
        server.terminate()
        assert server.wait(timeout=10) == 0
        assert server.stdout is not None
        server.stdout.close()
