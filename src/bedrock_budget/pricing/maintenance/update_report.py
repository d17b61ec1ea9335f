"""How ``prices update`` tells a person (or a script, as JSON) what changed."""

from __future__ import annotations

import re
import shutil
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from bedrock_budget.pricing.maintenance.update_types import ModelUpdate, RateChange, UpdatePlan, regions_text
from bedrock_budget.pricing.money import format_usd

# Lines the converter writes for a row it could not use: "USAGETYPE [SERVICE REGION 'NAME']: REASON".
_ROW = re.compile(r"^(?P<usagetype>\S+) \[(?P<code>\S+) (?P<region>\S+) (?P<name>.*)\]: (?P<reason>.*)$")
_SHOWN_NEW_RATES = ("input", "output", "images.1024x1024.standard", "video_second")


def _usd(value: Decimal | None) -> str:
    return "none" if value is None else format_usd(value)


def _width() -> int:
    return max(60, shutil.get_terminal_size((80, 24)).columns)


def _wrapped(text: str, indent: str, width: int) -> list[str]:
    return textwrap.wrap(text, width=width, initial_indent=indent, subsequent_indent=indent + "    ") or [
        indent
    ]


def _change_lines(changes: Sequence[RateChange]) -> list[str]:
    """One line per rate change; a change several regions share is one line naming them."""
    regions: dict[tuple[str, Decimal | None, Decimal | None], list[str]] = defaultdict(list)
    for change in changes:
        regions[(change.rate, change.old, change.new)].append(change.region)
    return [
        f"{regions_text(where)} {rate} {_usd(old)} -> {_usd(new)}"
        for (rate, old, new), where in sorted(
            regions.items(), key=lambda item: (item[1][0] != "us-east-1", item[1][0], item[0][0])
        )
    ]


def _new_model_text(update: ModelUpdate) -> str:
    base = {c.rate: c.new for c in update.changes if c.region == "us-east-1"}
    shown = [f"{rate} {_usd(base[rate])}" for rate in _SHOWN_NEW_RATES if rate in base]
    rest = len(update.changes) - len(shown)
    regions = len({c.region for c in update.changes})
    more = f" (+{rest} more rates, {regions} region{'s' if regions != 1 else ''})" if rest else ""
    return f"us-east-1 {', '.join(shown) or 'rates'}{more}"


def _grouped_rows(lines: Iterable[str]) -> list[tuple[str, int, str]]:
    """Unusable rows grouped by (offer, display name, reason): many rows per model look alike."""
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    loose: list[str] = []
    for line in lines:
        match = _ROW.match(line)
        if match is None:
            loose.append(line)
            continue
        reason = match["reason"]
        groups[(match["code"], match["name"], reason)].append(match["region"])
    found = [
        (f"{name} ({code}, {len(regions)} row{'s' if len(regions) != 1 else ''})", len(regions), reason)
        for (code, name, reason), regions in sorted(groups.items())
    ]
    return found + [(line, 1, "") for line in loose]


def plan_lines(plan: UpdatePlan, output: Path | None, written: Sequence[Path]) -> list[str]:
    width = _width()
    offers = ", ".join(f"{code} published {date or 'unknown'}" for code, date in sorted(plan.offers.items()))
    lines = _wrapped(f"AWS Price List: {offers or 'no offers'}; {plan.products} products read.", "", width)
    if plan.new:
        lines.append(f"New models ({len(plan.new)}):")
        for update in plan.new:
            lines.append(f"  + {update.model_id} ({update.name}), effective {update.effective}")
            lines += _wrapped(_new_model_text(update), "      ", width)
            if update.notes:
                lines += _wrapped(f"note: {update.notes}", "      ", width)
    if plan.changed:
        lines.append(f"Changed prices ({len(plan.changed)} models):")
        for update in plan.changed:
            lines.append(f"  ~ {update.model_id}, effective {update.effective}")
            for text in _change_lines(update.changes):
                lines += _wrapped(text, "      ", width)
            if update.notes:
                lines += _wrapped(f"note: {update.notes}", "      ", width)
    if plan.removed:
        lines.append(f"No longer in the Price List ({len(plan.removed)}; marked legacy, prices kept):")
        lines += [f"  - {model_id}" for model_id in plan.removed]
    if plan.refreshed:
        lines.append(f"Updated from the prices under the layer ({len(plan.refreshed)}):")
        for item in plan.refreshed:
            lines += _wrapped(item, "  ", width)
    if plan.partial:
        lines.append(f"Partial rows, not used ({len(plan.partial)}; a partial row never replaces a price):")
        for item in plan.partial:
            lines += _wrapped(item, "  ", width)
    if plan.unmapped:
        lines.append(f"Unmapped rows ({len(plan.unmapped)}; no model id found for the name):")
        for label, _, reason in _grouped_rows(plan.unmapped):
            lines += _wrapped(f"{label}: {reason}" if reason else label, "  ", width)
    if plan.not_converted:
        lines.append(f"Not converted ({len(plan.not_converted)}):")
        for item in plan.not_converted:
            lines += _wrapped(item, "  ", width)
    if plan.skipped:
        lines += _wrapped(
            f"Skipped: {len(plan.skipped)} rows with rates price files do not hold (customization, "
            "reserved capacity, ...); --json lists each.",
            "",
            width,
        )
    changes = len(plan.new) + len(plan.changed) + len(plan.removed) + len(plan.refreshed)
    if not changes:
        lines.append("No change.")
    elif output is None:
        lines.append(f"{changes} changes; nothing written (pass --output FOLDER to write the layer).")
    else:
        lines.append(f"{changes} changes written to {output}: {', '.join(p.name for p in written)}")
    return lines


def _change_json(change: RateChange) -> dict[str, Any]:
    return {
        "region": change.region,
        "rate": change.rate,
        "old": None if change.old is None else format_usd(change.old),
        "new": None if change.new is None else format_usd(change.new),
    }


def _update_json(update: ModelUpdate) -> dict[str, Any]:
    return {
        "model_id": update.model_id,
        "name": update.name,
        "provider": update.provider,
        "effective": update.effective.isoformat(),
        "notes": update.notes,
        "changes": [_change_json(change) for change in update.changes],
    }


def plan_json(plan: UpdatePlan) -> dict[str, Any]:
    return {
        "changed": plan.has_changes,
        "offers": dict(sorted(plan.offers.items())),
        "products": plan.products,
        "new_models": [_update_json(update) for update in plan.new],
        "changed_models": [_update_json(update) for update in plan.changed],
        "removed_models": list(plan.removed),
        "refreshed_models": list(plan.refreshed),
        "partial": list(plan.partial),
        "unmapped": list(plan.unmapped),
        "not_converted": list(plan.not_converted),
        "skipped": list(plan.skipped),
    }
