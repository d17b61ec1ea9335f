"""The values the pipeline core and its drivers pass around: one call's context, and the budget layer's
decision about it.

The budget layer (``Guard``) gets a :class:`CallContext` and returns a decision — :class:`Admitted`,
:class:`Downgrade`, :class:`Clamp` or :class:`Refused` — as a value. It never calls back into the pipeline
and never edits the request: the driver applies the decision (re-resolving a downgraded model, rewriting
``modelId``, lowering the output cap).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bedrock_budget.errors import BedrockBudgetError, ClampRequiredError, DowngradeRequiredError
from bedrock_budget.extract.types import RequestInfo
from bedrock_budget.pipeline.operations import Operation
from bedrock_budget.resolver import ResolvedModel
from bedrock_budget.usage import Usage

if TYPE_CHECKING:
    from bedrock_budget.budgets.outcomes import Reservation
    from bedrock_budget.pricing.cost import Cost


class StreamOverdueError(Exception):
    """Ends a stream still open past the maximum call lifetime (``max_call_seconds``): its caller neither
    read it to the end nor closed it, so it is settled as partial, at the worst case that was held."""


@dataclass(slots=True)
class CallContext:
    """What the pipeline knows about one call before it goes out. Holds no prompt text.

    ``request`` is what the request says that matters for pricing (counts only). Without budgets it is read
    only when Bedrock's usage is missing (see ``PipelineCore.prepare``), so it may be ``None`` until then.
    """

    operation: Operation
    requested_model_id: str
    region: str
    attribution: dict[str, str]
    resolved: ResolvedModel | None
    resolution_error: str | None
    family: str
    started: float
    request: RequestInfo | None = None
    #: The request as sent, kept until the call ends for a deferred ``request`` read; never recorded.
    kwargs: dict[str, Any] | None = None
    #: What the budget layer reserved for this call, and the usage and nano-dollars it was sized for.
    hold: Reservation | None = None
    worst_case: Usage | None = None
    reserved_nanos: int = 0
    budget_warnings: tuple[str, ...] = ()
    downgraded_from: str | None = None
    #: The budget that switched the call to a cheaper model.
    downgraded_by: str | None = None
    #: A ``clamp`` budget lowered the request's output cap: from what (the model's maximum when the request
    #: set none), to what, and which budget.
    clamped_from: int | None = None
    clamped_to: int | None = None
    clamped_by: str | None = None
    #: The unwrapped boto3 client, for a budget layer that counts tokens with Bedrock (CountTokens).
    client: Any = None

    def admit(self, admitted: Admitted) -> None:
        self.hold = admitted.reservation
        self.worst_case = admitted.worst_case
        self.reserved_nanos = admitted.reserved_nanos
        self.budget_warnings = admitted.warnings


@dataclass(frozen=True, slots=True)
class Admitted:
    """The call may go out: its worst case is held (``reservation`` is ``None`` when no budget applies)."""

    reservation: Reservation | None
    worst_case: Usage
    reserved_nanos: int
    #: Budgets past their warning threshold (action ``warn``).
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Downgrade:
    """A ``downgrade`` budget refused the call: it may go to ``error.downgrade_to`` instead."""

    error: DowngradeRequiredError

    @property
    def model_id(self) -> str:
        return self.error.downgrade_to

    @property
    def budget(self) -> str:
        return self.error.budget


@dataclass(frozen=True, slots=True)
class Clamp:
    """``clamp`` budgets refused the call's worst case, and a lower output cap fits them all: the call may
    go out with at most ``max_output_tokens`` (down from ``from_tokens``)."""

    error: ClampRequiredError
    max_output_tokens: int
    from_tokens: int

    @property
    def budget(self) -> str:
        return self.error.budget


@dataclass(frozen=True, slots=True)
class Refused:
    """The call must not go out; ``error`` is what the caller gets."""

    error: BedrockBudgetError


Admission = Admitted | Downgrade | Clamp | Refused


class Guard(Protocol):
    """The budget layer as the drivers see it. Each hook gets the context and never calls back."""

    def admit(self, ctx: CallContext, kwargs: Mapping[str, Any]) -> Admission:
        """Reserve the call's worst case, or say why it may not go out as it is."""

    def settle(self, ctx: CallContext, cost: Cost | None, usage: Usage) -> None:
        """Turn the hold into the call's real cost."""

    def release(self, ctx: CallContext) -> None:
        """Give the hold back: Bedrock billed nothing."""

    def on_overdue(self, ctx: CallContext, callback: Callable[[], None]) -> None:
        """Run ``callback`` if the call is still in flight past the maximum call lifetime."""
