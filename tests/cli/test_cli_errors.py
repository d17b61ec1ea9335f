"""Every failure a user can cause ends the same way: exit code 2 and one line on stderr naming the problem.

Ports are taken for real (a listening socket of this test), and the commands that must fail to bind run in
a subprocess, the way a user meets them, so a traceback or a different exit code cannot hide.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from bedrock_budget.cli import main

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA = "amazon.nova-micro-v1:0"
LAUNCH = "import sys; from bedrock_budget.cli import main; sys.exit(main())"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(code: int, err: str) -> str:
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Decimal(" not in err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(autouse=True)
def _no_budget_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in list(os.environ):
        if variable.startswith("BEDROCK_BUDGET"):
            monkeypatch.delenv(variable)


# -- a port already in use --------------------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port this test holds open (listening), as another server would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.mark.parametrize(
    "args",
    [
        ["fake-bedrock", "--port", "{port}"],
        ["serve-metrics", "--store", "memory://", "--port", "{port}"],
        ["demo", "--metrics-port", "{port}", "--calls", "3", "--json"],
        ["demo", "--metrics-port", "{port}", "--calls", "3"],
    ],
    ids=["fake-bedrock", "serve-metrics", "demo-json", "demo-live"],
)
def test_a_port_in_use_is_one_line_and_exit_2(taken_port: int, args: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "BEDROCK_BUDGET__TEAM_DAILY": "window=day;limit_usd=3", "COLUMNS": "80"}
    argv = [a.format(port=taken_port) for a in args]
    result = subprocess.run(
        [sys.executable, "-c", LAUNCH, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    line = one_error_line(result.returncode, result.stderr)
    assert line == (
        f"error: cannot listen on 127.0.0.1:{taken_port}: port {taken_port} is already in use; pick another "
        "port, or 0 for any free one"
    )
    assert result.stdout == ""


def test_a_metrics_port_in_use_leaves_the_registry_as_it_was(taken_port: int) -> None:
    from prometheus_client import CollectorRegistry

    from bedrock_budget.errors import ListenError
    from bedrock_budget.metrics import BudgetCollector, start_http_server
    from bedrock_budget.metrics.collector import StoreBudgetSource
    from bedrock_budget.stores import from_uri

    registry = CollectorRegistry()
    with from_uri("memory://") as store:
        collector = BudgetCollector(StoreBudgetSource(store, []))
        with pytest.raises(ListenError) as info:
            start_http_server(taken_port, registry=registry, collectors=[collector])
        assert isinstance(info.value, OSError), "callers that catch OSError around a bind still do"
        assert (info.value.host, info.value.port) == ("127.0.0.1", taken_port)
        # The collector was not left behind: the same registry takes it again on a free port.
        with start_http_server(0, registry=registry, collectors=[collector]) as server:
            assert server.port != taken_port


# -- budgets files that define nothing --------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "# filled in later\n", "budgets: []\n"])
@pytest.mark.parametrize(
    "args",
    [
        ["budgets", "list", "--store", "memory://", "--budgets", "{path}"],
        ["budgets", "show", "x", "--store", "memory://", "--budgets", "{path}"],
        ["budgets", "reset", "x", "--yes", "--store", "memory://", "--budgets", "{path}"],
        ["report", "--store", "memory://", "--budgets", "{path}"],
        ["demo", "--calls", "2", "--json", "--budgets", "{path}"],
    ],
    ids=["list", "show", "reset", "report", "demo"],
)
def test_a_budgets_file_without_budgets_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, args: list[str]
) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = run(capsys, *[a.format(path=path) for a in args])
    assert one_error_line(code, err).startswith(f"error: {path} defines no budgets; give at least one")
    assert out == ""


def test_serve_metrics_with_an_empty_budgets_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text("", encoding="utf-8")
    args = ["serve-metrics", "--store", "memory://", "--port", "0", "--budgets", str(path)]
    result = subprocess.run(
        [sys.executable, "-c", LAUNCH, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert one_error_line(result.returncode, result.stderr) == (
        f"error: {path} defines no budgets; give at least one, "
        "e.g. 'budgets: [{name: daily, window: day, limit_usd: 25}]'"
    )


def test_serve_metrics_without_any_budgets_says_where_they_come_from(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEDROCK_BUDGET")}
    args = ["serve-metrics", "--store", "memory://", "--port", "0"]
    result = subprocess.run(
        [sys.executable, "-c", LAUNCH, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    line = one_error_line(result.returncode, result.stderr)
    assert line.startswith("error: no budgets defined: pass a budgets file (--budgets FILE)")
    assert "BEDROCK_BUDGETS_FILE" in line
    assert "BEDROCK_BUDGET__<NAME>" in line


def test_budget_values_are_shown_as_written(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "budgets.yaml"
    path.write_text("- {name: a, limit_usd: 1, thresholds: [50.5]}\n", encoding="utf-8")
    code, _, err = run(capsys, "budgets", "list", "--store", "memory://", "--budgets", str(path))
    assert one_error_line(code, err) == (
        f"error: budget 'a': thresholds: 50.5 is not a whole percentage (in {path})"
    )


# -- regions and cross-Region profiles ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["price", NOVA, "--input-tokens", "10", "--region", "{region}"],
        [
            *("price-provisioned", HAIKU, "--model-units", "1", "--commitment", "1-month", "--hours", "1"),
            *("--region", "{region}"),
        ],
        ["price-import", "--custom-model-units", "1", "--active-windows", "1", "--region", "{region}"],
        [
            *("plan", NOVA, "--requests-per-month", "10", "--input-tokens-per-request", "10"),
            *("--output-tokens-per-request", "1", "--region", "{region}"),
        ],
        ["advise", "--records", "calls.jsonl", "--region", "{region}"],
    ],
    ids=["price", "price-provisioned", "price-import", "plan", "advise"],
)
def test_an_unknown_region_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code, out, err = run(capsys, *[a.format(region="xx-fake-1") for a in args])
    line = one_error_line(code, err)
    assert line.startswith(
        "error: Invalid value for '--region': unknown region 'xx-fake-1': not an AWS Region"
    )
    assert "aws ec2 describe-regions" in line
    assert out == ""


def test_a_mistyped_region_gets_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "price", NOVA, "--input-tokens", "10", "--region", "us-east1")
    assert "unknown region 'us-east1' (did you mean us-east-1" in one_error_line(code, err)


def test_real_regions_still_price(capsys: pytest.CaptureFixture[str]) -> None:
    for region in ("us-east-2", "ap-southeast-7", "us-gov-west-1", "eu-central-1"):
        code, out, err = run(capsys, "price", NOVA, "--input-tokens", "1000", "--region", region, "--json")
        assert (code, err) == (0, ""), err
        assert json.loads(out)["region"] == region


def test_a_region_a_price_file_names_is_known(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Bedrock may open a Region before the installed botocore lists it: a price file naming it is enough.
    prices = tmp_path / "amazon.yaml"
    prices.write_text(
        textwrap.dedent(
            """\
            schema_version: 1
            provider: amazon
            models:
              - id: amazon.nova-micro-v1:0
                name: Nova Micro
                family: nova
                kind: text
                max_output_tokens: 10000
                prices:
                  - effective: 2024-12-03
                    checked: 2026-11-22
                    source: test fixture
                    input: "0.035"
                    output: "0.14"
                    regions:
                      zz-future-1: {input: "0.05"}
            """
        ),
        encoding="utf-8",
    )
    args = ["price", NOVA, "--input-tokens", "1000000", "--region", "zz-future-1", "--json"]
    code, out, err = run(capsys, *args, "--prices", str(prices))
    assert (code, err) == (0, ""), err
    assert json.loads(out)["total_usd"] == "0.05"
    code, _, err = run(capsys, *args)
    assert "unknown region 'zz-future-1'" in one_error_line(code, err)


@pytest.mark.parametrize(
    ("model_id", "region", "usable"),
    [
        (f"us.{HAIKU}", "us-gov-west-1", "us-gov."),
        (f"global.{HAIKU}", "us-gov-east-1", "us-gov."),
        (f"eu.{HAIKU}", "us-east-1", "us., ca., global."),
        (f"us-gov.{HAIKU}", "us-east-1", "us., ca., global."),
        (f"apac.{HAIKU}", "eu-west-1", "eu., global."),
        (f"jp.{HAIKU}", "ap-southeast-1", "apac., global."),
        (f"au.{HAIKU}", "ap-northeast-1", "apac., jp., global."),
        (f"arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.{HAIKU}", "us-east-1", "us., ca."),
    ],
)
def test_a_profile_its_region_cannot_call_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], model_id: str, region: str, usable: str
) -> None:
    geo = model_id.rsplit("/", 1)[-1].split(".", 1)[0]
    for command in (
        ["price", model_id, "--input-tokens", "10"],
        [
            *("plan", model_id, "--requests-per-month", "1", "--input-tokens-per-request", "1"),
            *("--output-tokens-per-request", "1"),
        ],
    ):
        code, out, err = run(capsys, *command, "--region", region)
        line = one_error_line(code, err)
        assert line.startswith(
            f"error: Invalid value for '--region': the {geo}. cross-Region profile '{model_id}' cannot be "
            f"called from {region} (profile prefixes callable from {region}: {usable}"
        ), line
        assert out == ""


@pytest.mark.parametrize(
    ("model_id", "region"),
    [
        (f"us.{HAIKU}", "us-west-2"),
        (f"us.{HAIKU}", "ca-central-1"),
        (f"eu.{HAIKU}", "eu-central-1"),
        (f"apac.{HAIKU}", "ap-southeast-2"),
        (f"jp.{HAIKU}", "ap-northeast-3"),
        (f"us-gov.{HAIKU}", "us-gov-west-1"),
        (f"global.{HAIKU}", "sa-east-1"),
        (HAIKU, "us-gov-east-1"),
    ],
)
def test_profiles_their_region_can_call_still_price(
    capsys: pytest.CaptureFixture[str], model_id: str, region: str
) -> None:
    code, out, err = run(capsys, "price", model_id, "--input-tokens", "10", "--region", region, "--json")
    assert (code, err) == (0, ""), err
    assert json.loads(out)["region"] == region


# -- plan and the --discount-percent message --------------------------------------------------------------


def test_plan_shows_provisioned_as_not_offered_when_the_model_has_no_such_price(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["plan", NOVA, "--requests-per-month", "1000", "--input-tokens-per-request", "100"]
    args += ["--output-tokens-per-request", "10", "--model-units", "2", "--commitment", "6-month"]
    code, out, err = run(capsys, *args)
    assert (code, err) == (0, ""), err
    row = next(line for line in out.splitlines() if "provisioned" in line)
    assert "provisioned (2 MU, 6-month)" in row
    assert "not offered" in row
    code, out, err = run(capsys, *args, "--json")
    assert (code, err) == (0, ""), err
    plan = json.loads(out)
    assert (plan["provisioned_usd"], plan["model_units"], plan["commitment"]) == (None, 2, "6-month")
    assert plan["on_demand_usd"] == "0.0049"


def test_a_discount_of_100_percent_or_more_shows_the_number(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "price", NOVA, "--input-tokens", "10", "--discount-percent", "150")
    assert one_error_line(code, err) == "error: discount_percent must be below 100, got 150"


# What the installed `bedrock-budget` script runs.
_CONSOLE_SCRIPT = "import sys; from bedrock_budget.cli import main; sys.exit(main())"


@pytest.mark.parametrize("args", [["prices", "list"], ["demo", "--calls", "5", "--latency", "0", "--json"]])
def test_a_reader_that_went_away_is_not_an_error(args: list[str]) -> None:
    # `bedrock-budget ... | head`: the pipe's read end is closed before the command writes a byte.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-c", _CONSOLE_SCRIPT, *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (0, "")


def test_a_bug_is_exit_70_not_1_which_prices_update_uses_for_changes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bedrock_budget.cli import prices_commands

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("something we did not foresee")

    monkeypatch.setattr(prices_commands, "validate_paths", broken)
    code, _, err = run(capsys, "prices", "validate")
    assert code == 70
    assert "RuntimeError: something we did not foresee" in err
    assert err.rstrip().splitlines()[-1] == (
        "error: internal error in bedrock-budget (a bug: please report the traceback above)"
    )
