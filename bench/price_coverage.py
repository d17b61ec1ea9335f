"""Price-table coverage against the two open price databases, and a cross-check of their rates.

Measures how many of the Bedrock text/chat models that LiteLLM's ``model_prices_and_context_window`` JSON and
pydantic's genai-prices price are priced by the bundled table, lists the ones it misses, and compares the
input/output rates wherever a database and the table price the same model on the same route.

Both databases are development-time references only, never dependencies of bedrock-budget. Install them into
the development virtualenv:

    .venv/bin/pip install genai-prices
    .venv/bin/pip download --no-deps litellm==1.110.2 -d /tmp/litellm
    .venv/bin/pip install --no-deps /tmp/litellm/litellm-*.whl

(``--no-deps`` is enough: only the bundled JSON is read, LiteLLM is never imported.) Or point
``--litellm-json`` at a copy of ``model_prices_and_context_window_backup.json``.

How ids are compared: the route part of an id is dropped (``bedrock/``, ``bedrock_converse/``, a Region
path segment, the cross-Region prefixes ``us.``/``eu.``/``apac.``/``jp.``/``au.``/``ca.``/``in.``/
``us-gov.``/``global.``, genai-prices' own ``regional.``), then the ``:N`` version suffix as
``bedrock_budget.model_ids.strip_version`` does; finally a ``-YYYYMMDD`` date, an ``@YYYYMMDD`` date and a
trailing ``-v1`` are dropped, because the databases spell the same model both with and without them (for
example genai-prices' ``anthropic.claude-opus-4-7-v1:0`` is Bedrock's ``anthropic.claude-opus-4-7``).

Which ids count: LiteLLM entries of provider ``bedrock`` or ``bedrock_converse`` whose mode is ``chat``,
``responses`` or ``realtime`` (speech-to-speech models bill text tokens too), and genai-prices models of the
``aws`` provider that have an output-token price. ``bedrock_mantle`` entries (the OpenAI-compatible endpoint,
whose ids differ from bedrock-runtime's) are left out unless ``--include-mantle`` is given.

Run: ``.venv/bin/python bench/price_coverage.py`` (``--missing`` lists every model the table misses,
``--disagreements`` every rate that differs). Exit status: 0 when coverage reaches ``--target`` percent
(default 95), 1 when it does not, 2 when a database is not installed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from bedrock_budget.errors import BedrockBudgetError
from bedrock_budget.model_ids import GEO_PREFIXES, Route, strip_version
from bedrock_budget.pricing import PriceTable, load_price_table
from bedrock_budget.usage import Usage

LITELLM_JSON = "model_prices_and_context_window_backup.json"
LITELLM_PROVIDERS = ("bedrock", "bedrock_converse")
LITELLM_TEXT_MODES = ("chat", "responses", "realtime")
# Prefixes the databases put in front of a base id: Bedrock's own, plus ``in.`` (India geo profiles, used
# for Kimi and GPT-5.x) and genai-prices' ``regional.`` for in-Region/geo rates.
ROUTE_PREFIXES = frozenset(GEO_PREFIXES | {"in", "regional"})
_REGION_SEGMENT = re.compile(r"[a-z]{2}(?:-gov)?-[a-z]+-[0-9]")
_DATE = re.compile(r"-20[0-9]{6}(?=-|$)")
_AT_DATE = re.compile(r"@[0-9]{8}$")
_TRAILING_V1 = re.compile(r"-v1$")
MILLION = 1_000_000
# Rates are compared on a small request so that no long-context tier (200K tokens and up) applies.
SAMPLE_TOKENS = 1_000
INSTALL_HINT = (
    "install the open price databases into this virtualenv (development only):\n"
    "  .venv/bin/pip install genai-prices\n"
    "  .venv/bin/pip download --no-deps litellm==1.110.2 -d /tmp/litellm && "
    ".venv/bin/pip install --no-deps /tmp/litellm/litellm-*.whl\n"
    "or pass --litellm-json PATH to a copy of model_prices_and_context_window_backup.json"
)


@dataclass(frozen=True, slots=True)
class Rate:
    """One database's input/output rate (USD per 1M tokens) for one model on one route."""

    database: str
    raw_id: str
    key: str
    route: Route
    region: str
    input: Decimal | None
    output: Decimal | None


def comparison_key(raw_id: str) -> str | None:
    """The id with route, version and date spellings removed; ``None`` when it is not a Bedrock model id."""
    segment = raw_id.rsplit("/", 1)[-1].lower()
    head, dot, rest = segment.partition(".")
    if dot and head in ROUTE_PREFIXES and "." in rest:
        segment = rest
    if "." not in segment:
        return None
    segment = strip_version(_AT_DATE.sub("", segment))
    return _TRAILING_V1.sub("", _DATE.sub("", segment))


# A Geo profile can only be called from a Region of its geography; the databases do not say which, so a
# Geo rate is compared with the table's rate in one representative source Region.
GEO_SOURCE_REGION = {
    "us": "us-east-1",
    "eu": "eu-central-1",
    "apac": "ap-northeast-1",
    "jp": "ap-northeast-1",
    "au": "ap-southeast-2",
    "ca": "ca-central-1",
    "in": "ap-south-1",
    "us-gov": "us-gov-west-1",
}


def route_of(raw_id: str) -> tuple[Route, str]:
    """The route and source Region a database id stands for (us-east-1 when it names none)."""
    parts = raw_id.split("/")
    region = next((part for part in parts[:-1] if _REGION_SEGMENT.fullmatch(part)), "us-east-1")
    head = parts[-1].partition(".")[0]
    if head == "global":
        return "global", region
    if head in GEO_SOURCE_REGION:
        return "geo", GEO_SOURCE_REGION[head]
    return "in_region", region


def per_million(value: Any) -> Decimal | None:
    if value is None:
        return None
    # repr() of the JSON float is its shortest exact decimal spelling; scaling that is exact.
    return (Decimal(repr(value)) * MILLION).normalize()


def litellm_json_path(explicit: str | None) -> Path | None:
    if explicit:
        given = Path(explicit)
        return given if given.is_file() else None
    spec = importlib.util.find_spec("litellm")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / LITELLM_JSON
    return path if path.is_file() else None


def litellm_rates(path: Path, include_mantle: bool) -> Iterator[Rate]:
    providers = (*LITELLM_PROVIDERS, "bedrock_mantle") if include_mantle else LITELLM_PROVIDERS
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for raw_id, entry in data.items():
        if not isinstance(entry, dict) or entry.get("litellm_provider") not in providers:
            continue
        if entry.get("mode") not in LITELLM_TEXT_MODES or "commitment" in raw_id:
            continue
        key = comparison_key(raw_id)
        if key is None:
            continue
        route, region = route_of(raw_id)
        yield Rate(
            "litellm",
            raw_id,
            key,
            route,
            region,
            per_million(entry.get("input_cost_per_token")),
            per_million(entry.get("output_cost_per_token")),
        )


def _flat(value: Any) -> Decimal | None:
    """A genai-prices price as a Decimal: tiered prices give their base (short-context) rate."""
    if value is None:
        return None
    return Decimal(str(getattr(value, "base", value))).normalize()


def genai_rates() -> Iterator[Rate]:
    from genai_prices import data

    for provider in data.providers:
        if provider.id != "aws":
            continue
        for model in provider.models:
            prices = model.prices
            # A list of dated prices: the last one without a later start is the one in force today.
            current = prices[-1].prices if isinstance(prices, list) else prices
            output = _flat(getattr(current, "output_mtok", None))
            key = comparison_key(model.id)
            if output is None or key is None:
                continue
            route, region = route_of(model.id)
            yield Rate(
                "genai-prices",
                model.id,
                key,
                route,
                region,
                _flat(getattr(current, "input_mtok", None)),
                output,
            )


def table_keys(table: PriceTable) -> dict[str, str]:
    keys: dict[str, str] = {}
    for model in table.models.values():
        for ident in (model.id, *model.aliases):
            key = comparison_key(ident)
            if key is not None:
                keys.setdefault(key, model.id)
    return keys


def our_rate(table: PriceTable, model_id: str, rate: Rate, side: str) -> Decimal | None:
    usage = Usage(input_tokens=SAMPLE_TOKENS) if side == "input" else Usage(output_tokens=SAMPLE_TOKENS)
    try:
        cost = table.price(model_id, usage, region=rate.region, route=rate.route)
    except BedrockBudgetError:
        return None
    return (cost.total_usd * (MILLION // SAMPLE_TOKENS)).normalize()


def disagreements(
    table: PriceTable, rates: Iterable[Rate], keys: dict[str, str]
) -> tuple[int, list[tuple[Rate, str, Decimal, Decimal | None]]]:
    compared = 0
    found: list[tuple[Rate, str, Decimal, Decimal | None]] = []
    for rate in rates:
        model_id = keys.get(rate.key)
        if model_id is None:
            continue
        for side in ("input", "output"):
            theirs = getattr(rate, side)
            if theirs is None:
                continue
            compared += 1
            ours = our_rate(table, model_id, rate, side)
            if ours != theirs:
                found.append((rate, side, theirs, ours))
    return compared, found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--litellm-json", help="path to LiteLLM's model_prices_and_context_window JSON")
    parser.add_argument("--include-mantle", action="store_true", help="also count bedrock_mantle ids")
    parser.add_argument("--missing", action="store_true", help="list every model the table misses")
    parser.add_argument("--disagreements", action="store_true", help="list every differing rate")
    parser.add_argument("--target", type=Decimal, default=Decimal(95), help="coverage goal in percent")
    args = parser.parse_args(argv)

    path = litellm_json_path(args.litellm_json)
    absent = [
        name
        for name, missing in (
            ("LiteLLM's price JSON", path is None),
            ("genai-prices", importlib.util.find_spec("genai_prices") is None),
        )
        if missing
    ]
    if path is None or absent:
        print(f"price_coverage: {' and '.join(absent)} not found; {INSTALL_HINT}", file=sys.stderr)
        return 2
    litellm_version = _version("litellm") if args.litellm_json is None else f"(file {path})"
    table = load_price_table()
    keys = table_keys(table)
    rates = [*litellm_rates(path, args.include_mantle), *genai_rates()]
    by_database = {db: {r.key for r in rates if r.database == db} for db in ("litellm", "genai-prices")}
    union = set().union(*by_database.values())
    priced = {key for key in union if key in keys}
    missing = sorted(union - priced)
    percent = (Decimal(100) * len(priced) / len(union)).quantize(Decimal("0.1")) if union else Decimal(0)

    for database, version in (("litellm", litellm_version), ("genai-prices", _version("genai-prices"))):
        print(f"{database} {version}: {len(by_database[database])} Bedrock text/chat models")
    print(f"union: {len(union)}; priced by the bundled table: {len(priced)} ({percent}%)")
    print(f"missing: {len(missing)}")
    if args.missing or len(missing) <= 20:
        for key in missing:
            where = ", ".join(db for db, ids in by_database.items() if key in ids)
            print(f"  {key}  ({where})")

    compared, found = disagreements(table, rates, keys)
    print(f"rates compared (input and output, per route): {compared}; disagreements: {len(found)}")
    if args.disagreements:
        for rate, side, theirs, ours in found:
            where = f"{rate.route}, {rate.region}"
            shown = "no price" if ours is None else f"${ours:f}"
            print(f"  {rate.database} {rate.raw_id} [{where}] {side}: theirs ${theirs:f}, ours {shown}")
    return 0 if percent >= args.target else 1


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


if __name__ == "__main__":
    sys.exit(main())
