"""Printing results: rich tables for people, one JSON object for programs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal

from bedrock_budget.pricing import Cost, format_usd


def money(amount: Decimal) -> str:
    return f"${format_usd(amount)}"


def emit_json(payload: object) -> None:
    print(json.dumps(payload, indent=2, default=str))


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    from rich.console import Console
    from rich.table import Table

    grid = Table(title=title, title_justify="left")
    for index, header in enumerate(headers):
        grid.add_column(header, justify="left" if index == 0 else "right")
    for row in rows:
        grid.add_row(*(str(cell) for cell in row))
    Console().print(grid)


def emit_cost(cost: Cost, *, as_json: bool, title: str) -> None:
    if as_json:
        emit_json(cost.as_dict())
        return
    rows: list[tuple[object, ...]] = [
        (line.dimension, line.quantity, f"{money(line.unit_price_usd)} / {line.per:,}", money(line.usd))
        for line in cost.lines
    ]
    rows.append(("total", "", "", money(cost.total_usd)))
    table(title, ("dimension", "quantity", "unit price", "cost"), rows)
    settings = ", ".join(f"{key}={value}" for key, value in cost.context.items())
    if settings:
        print(settings)
