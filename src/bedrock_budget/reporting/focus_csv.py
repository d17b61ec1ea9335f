"""Writing FOCUS rows as CSV: a header of column names, then one line per charge, nulls as empty cells."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import IO

from bedrock_budget.pricing import PriceTable
from bedrock_budget.reporting.call_records import CallRow
from bedrock_budget.reporting.focus import FocusExport, FocusSettings, focus_export
from bedrock_budget.reporting.focus_columns import COLUMNS, focus_columns

__all__ = ["focus_lines", "write_focus_csv"]


def focus_lines(export: FocusExport, settings: FocusSettings, prices: PriceTable) -> Iterator[dict[str, str]]:
    for key, total in export.rows:
        yield focus_columns(key, total, settings, prices)


def write_focus_csv(
    out: IO[str],
    records: Iterable[CallRow],
    *,
    settings: FocusSettings,
    list_prices: PriceTable,
    contracted_prices: PriceTable,
) -> FocusExport:
    """Write the FOCUS CSV of ``records`` to ``out`` and return the export (totals and notes)."""
    export = focus_export(records, list_prices, contracted_prices)
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(focus_lines(export, settings, list_prices))
    return export
