"""Printing results: tables for people, one JSON object for programs.

Ids and money are what the commands exist to show, so no layout ever cuts one short:

- on a terminal wide enough, a rich table whose cells wrap between words, never inside one (the demo's
  live view, short of height, may also fold long ids and names inside their column, never a number);
- on a terminal too narrow for that, the columns fold instead: each row's first value on its own line,
  then its other columns as ``header: value`` pairs, wrapped between pairs;
- when stdout is a file or a pipe, plain rows of full values aligned with spaces, one line per row.

JSON keeps JSON types: counts are numbers, flags are booleans, missing values are null. Money and other exact
decimals (percentages, hours) are decimal strings such as ``"0.0036"``, because most JSON parsers read
numbers as binary floats, which cannot hold them exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Final

from bedrock_budget.pricing import Cost, format_usd

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

#: Text such as ids and names may fold inside a column, but never into pieces narrower than this.
FOLD_MIN: Final = 10
#: Width a gauge (a rich renderable cell, such as a progress bar) gets when there is room, and at least.
GAUGE_WIDTH: Final = 24
GAUGE_MIN: Final = 8
# A rich table with the default box spends one character per border and one of padding each side.
_CELL_OVERHEAD: Final = 3
_CENT: Final = Decimal("0.01")
_SEPARATOR: Final = "   "
_NUMBER_WORD: Final = re.compile(r"[$+\-]?[\d.,:%/\-]*\d[\d.,:%/\-]*[a-z%]?")

Cell = object  # a string, or a rich renderable drawn to the column's width (a gauge)


def money(amount: Decimal) -> str:
    return f"${format_usd(amount)}"


def rounded_money(amount: Decimal, *, significant: int = 3) -> str:
    """Money rounded for reading: to the cent from a dollar up, below that to ``significant`` digits, so
    $0.015476632 reads $0.0155 rather than $0.02 or $0.00."""
    if not amount or abs(amount) >= 1:
        return money(amount.quantize(_CENT, ROUND_HALF_UP))
    places = max(2, significant - 1 - amount.adjusted())
    return money(amount.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP))


def emit_json(payload: object) -> None:
    print(json.dumps(payload, indent=2, default=str))


def _console() -> Console:
    from rich.console import Console

    return Console()


def _cells(text: str) -> int:
    """Terminal columns ``text`` takes: a CJK character takes two."""
    from rich.cells import cell_len

    return cell_len(text)


def _words(text: str) -> list[str]:
    return text.split() or [""]


def _floor(texts: Iterable[str], *, fold: bool) -> int:
    """The narrowest a column may get: every word whole, or with ``fold`` text words (not numbers) folded
    into pieces no narrower than FOLD_MIN."""
    floor = 1
    for text in texts:
        for word in _words(text):
            if fold and _NUMBER_WORD.fullmatch(word) is None:
                floor = max(floor, min(_cells(word), FOLD_MIN))
            else:
                floor = max(floor, _cells(word))
    return floor


def column_widths(
    headers: Sequence[str], rows: Sequence[Sequence[Cell]], width: int, *, fold: bool = False
) -> list[int] | None:
    """Content width of each column so a table fits ``width``, or None when it cannot without splitting a
    value. Columns first wrap at spaces, the widest giving way first; with ``fold``, long text words (ids,
    names) then fold, the first column last, as it names the row."""
    natural: list[int] = []
    words: list[int] = []
    floors: list[int] = []
    for index, header in enumerate(headers):
        cells = [row[index] for row in rows]
        if any(not isinstance(cell, str) for cell in cells):
            natural.append(max(GAUGE_WIDTH, _cells(header)))
            words.append(max(GAUGE_MIN, _floor([header], fold=False)))
            floors.append(words[-1])
            continue
        texts = [header, *(str(cell) for cell in cells)]
        natural.append(max(_cells(line) for text in texts for line in text.splitlines() or [""]))
        words.append(_floor(texts, fold=False))
        floors.append(_floor(texts, fold=fold))
    room = width - _CELL_OVERHEAD * len(headers) - 1
    if sum(floors) > room:
        return None
    widths = list(natural)
    for limits, last in ((words, None), (floors, 0)):
        while sum(widths) > room:
            shrinkable = [i for i, w in enumerate(widths) if w > limits[i] and i != last]
            if not shrinkable:
                if last is None or widths[last] <= limits[last]:
                    break
                shrinkable = [last]
            widest = max(shrinkable, key=lambda i: widths[i])
            widths[widest] -= 1
    return widths


def numeric_columns(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> list[bool]:
    """Columns whose every value starts with a number or an amount (or is blank or ``-``); they are
    right-aligned."""
    return [
        index > 0
        and all(
            not isinstance(row[index], str)
            or str(row[index]).strip() in {"", "-"}
            or _NUMBER_WORD.fullmatch(_words(str(row[index]))[0]) is not None
            for row in rows
        )
        for index in range(len(headers))
    ]


def render_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[Cell]], *, width: int, fold: bool = False
) -> RenderableType:
    """A table for a terminal ``width`` columns wide, or, where no table fits, the columns folded: each
    row's first value on a line of its own, then its other columns as ``header: value`` pairs."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    widths = column_widths(headers, rows, width, fold=fold)
    if widths is None:
        return _records(title, headers, rows, width)
    grid = Table()
    numeric = numeric_columns(headers, rows)
    for header, size, right in zip(headers, widths, numeric, strict=True):
        grid.add_column(header, justify="right" if right else "left", width=size, overflow="fold")
    for row in rows:
        grid.add_row(*row)  # type: ignore[arg-type]
    # The title goes above the table rather than in it: a table as narrow as its columns would fold an id
    # in the title.
    return Group(Text(title, style="italic"), grid)


def _records(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[Cell]], width: int
) -> RenderableType:
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    parts: list[RenderableType] = [Text(title, style="italic")]
    for row in rows:
        parts.append(Text(str(row[0]), style="bold", overflow="fold"))
        pairs = [
            f"{header}: {cell}" if header else cell
            for header, cell in zip(headers[1:], row[1:], strict=True)
            if isinstance(cell, str) and cell.strip()
        ]
        line = ""
        for pair in pairs:
            if line and _cells(line) + len(_SEPARATOR) + _cells(pair) > width - 2:
                parts.append(Padding(Text(line, overflow="fold"), (0, 0, 0, 2)))
                line = ""
            line = f"{line}{_SEPARATOR}{pair}" if line else pair
        if line:
            parts.append(Padding(Text(line, overflow="fold"), (0, 0, 0, 2)))
        parts.extend(cell for cell in row[1:] if not isinstance(cell, str))  # type: ignore[misc]
    return Group(*parts)


def plain_lines(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Full rows for files and pipes: every value whole on its row's one line, columns aligned by spaces."""
    table_ = [list(headers), *([" ".join(cell.split()) for cell in row] for row in rows)]
    sizes = [max(_cells(row[index]) for row in table_) for index in range(len(headers))]
    numeric = numeric_columns(headers, rows)
    lines = [title] if title else []
    for row in table_:
        padding = [" " * (size - _cells(cell)) for cell, size in zip(row, sizes, strict=True)]
        cells = [
            pad + cell if right else cell + pad
            for cell, pad, right in zip(row, padding, numeric, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    cells = [[str(cell) for cell in row] for row in rows]
    console = _console()
    if not console.is_terminal:
        import click

        for line in plain_lines(title, headers, cells):
            click.echo(line)
        return
    console.print(render_table(title, headers, cells, width=console.width))


def emit_cost(cost: Cost, *, as_json: bool, title: str) -> None:
    if as_json:
        emit_json(cost.as_dict())
        return
    rows: list[tuple[object, ...]] = [
        (
            line.dimension,
            f"{line.quantity:,}",
            f"{money(line.unit_price_usd)} / {line.per:,}",
            money(line.usd),
        )
        for line in cost.lines
    ]
    rows.append(("total", "", "", money(cost.total_usd)))
    table(title, ("dimension", "quantity", "unit price", "cost"), rows)
    settings = ", ".join(f"{key}={plain(value)}" for key, value in cost.context.items())
    if settings:
        print(settings)


def plain(value: object) -> str:
    """A scalar as people read it: flags as ``true``/``false``, as in the JSON output (not ``True``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)
