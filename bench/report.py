"""Rows of the one results table ``make bench`` prints, and the timing helpers the benchmarks share."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass


@dataclass
class Row:
    """One measured figure. ``baseline`` is measured in the same run; ``met`` is None without a target."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""
    #: A ratio measured pairwise (e.g. the median of block-by-block ratios) instead of value / baseline.
    paired_ratio: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.paired_ratio is not None:
            return self.paired_ratio
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline


def per_call_us(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1e6


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def _number(value: float, unit: str) -> str:
    if unit in ("calls/s", "nano-USD", "B") or abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}"


def render(rows: Sequence[Row]) -> str:
    header = ("benchmark", "value", "baseline", "ratio", "target", "met?")
    table: list[tuple[str, ...]] = [header]
    for row in rows:
        baseline = "" if row.baseline is None else _number(row.baseline, row.unit)
        if row.baseline_name:
            baseline = f"{baseline} ({row.baseline_name})" if baseline else row.baseline_name
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
        met = "" if row.met is None else ("yes" if row.met else "NO")
        table.append((row.name, _number(row.value, row.unit), baseline, ratio, row.target, met))
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = []
    for index, line in enumerate(table):
        cells = [
            cell.rjust(widths[i]) if i in (1, 3) else cell.ljust(widths[i]) for i, cell in enumerate(line)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    notes = [f"- {row.name}: {row.note}" for row in rows if row.note]
    if notes:
        lines += ["", "notes:", *notes]
    return "\n".join(lines)


def dump(rows: Sequence[Row], path: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        json.dump([{**asdict(r), "ratio": r.ratio} for r in rows], out, indent=2)
