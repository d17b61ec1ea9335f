"""The result of pricing: an exact total and one line per priced dimension."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from bedrock_budget.pricing.money import femto_to_nanos_ceil, femto_to_usd, format_usd


@dataclass(frozen=True, slots=True)
class CostLine:
    """One priced dimension: ``quantity`` units at ``unit_price_usd`` per ``per`` units."""

    dimension: str
    quantity: int | Decimal
    unit_price_usd: Decimal
    per: int
    usd: Decimal

    def as_dict(self) -> dict[str, object]:
        return {
            "dimension": self.dimension,
            # A count is a JSON number; a fractional quantity (hours, months) stays an exact decimal string.
            "quantity": self.quantity if isinstance(self.quantity, int) else str(self.quantity),
            "unit_price_usd": format_usd(self.unit_price_usd),
            "per": self.per,
            "usd": format_usd(self.usd),
        }


# A raw line: (dimension, quantity, femto-dollars per unit, display unit size).
RawLine = tuple[str, int | Decimal, int, int]
#: What a price was computed under (region, route, batch, ...), typed as it reads in JSON.
ContextValue = str | int | bool


class Cost:
    """Exact cost of one call or one quote.

    The total is kept as integer femto-dollars (1e-15 USD); ``total_usd`` is its exact ``Decimal``. Lines are
    built only when read, so pricing stays cheap on the hot path.
    """

    __slots__ = ("_lines", "_raw", "context", "model_id", "total_femto")

    def __init__(
        self,
        model_id: str,
        total_femto: int,
        raw: tuple[RawLine, ...] | Callable[[], tuple[RawLine, ...]],
        context: Mapping[str, ContextValue],
    ) -> None:
        self.model_id = model_id
        self.total_femto = total_femto
        self._raw = raw
        self._lines: tuple[CostLine, ...] | None = None
        self.context = context

    @property
    def raw_lines(self) -> tuple[RawLine, ...]:
        if callable(self._raw):
            self._raw = self._raw()
        return self._raw

    @property
    def total_usd(self) -> Decimal:
        return femto_to_usd(self.total_femto)

    @property
    def total_nanos(self) -> int:
        """Nano-dollars for a store, rounded up so recorded spend never understates the exact cost."""
        return femto_to_nanos_ceil(self.total_femto)

    @property
    def lines(self) -> tuple[CostLine, ...]:
        if self._lines is None:
            self._lines = tuple(
                CostLine(
                    dimension=dimension,
                    quantity=quantity,
                    unit_price_usd=femto_to_usd(rate * per),
                    per=per,
                    usd=femto_to_usd(quantity * rate),
                )
                for dimension, quantity, rate, per in self.raw_lines
                if quantity
            )
        return self._lines

    def as_dict(self) -> dict[str, object]:
        return {
            "model_id": self.model_id,
            "total_usd": format_usd(self.total_usd),
            **self.context,
            "lines": [line.as_dict() for line in self.lines],
        }

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.model_id if self.model_id == other.model_id else f"{self.model_id}+{other.model_id}",
            self.total_femto + other.total_femto,
            self.raw_lines + other.raw_lines,
            {**other.context, **self.context},
        )

    def __reduce__(self) -> tuple[type[Cost], tuple[str, int, tuple[RawLine, ...], dict[str, ContextValue]]]:
        # The lines may still be a deferred computation, which does not pickle: records and quotes cross
        # process boundaries (multiprocessing queues, worker pools) with their lines computed.
        return (Cost, (self.model_id, self.total_femto, self.raw_lines, dict(self.context)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Cost):
            return NotImplemented
        return self.total_femto == other.total_femto and self.model_id == other.model_id

    def __hash__(self) -> int:
        return hash((self.model_id, self.total_femto))

    def __repr__(self) -> str:
        return f"Cost(model_id={self.model_id!r}, total_usd={format_usd(self.total_usd)})"
