"""The ledger's configuration, checked once: every option of :class:`~bedrock_budget.budgets.Ledger` other
than its store and budgets, with the reasons each default is what it is in the ledger's docstring."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final, Literal

from bedrock_budget.budgets.keeper import DEFAULT_MAX_CALL_SECONDS
from bedrock_budget.errors import ConfigurationError, shown

OutagePolicy = Literal["deny", "allow"]
SettleMode = Literal["sync", "background"]
DEFAULT_RESERVATION_TTL: Final = 300.0
DEFAULT_LEASE_SECONDS: Final = 1.0
#: The longest lease: a lease sends its calls' spend-ledger sums when it retires, and each sum must reach the
#: store while the exactly-once record of its hour lives (``stores.tracking``: the hour, then the store's
#: ``tombstone_retention``, a day by default). An hour also bounds how long a lease keeps capacity from the
#: other processes.
MAX_LEASE_SECONDS: Final = 3600.0


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    """Validated ledger options; constructing one raises :class:`ConfigurationError` for a bad value."""

    on_store_error: OutagePolicy = "deny"
    reservation_ttl: float = DEFAULT_RESERVATION_TTL
    journal_size: int = 10_000
    replay_batch: int = 100
    settle_mode: SettleMode = "sync"
    settle_queue_size: int = 10_000
    settle_batch: int = 64
    settle_linger: float = 0.005
    lease_fraction: float | None = None
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    max_call_seconds: float = DEFAULT_MAX_CALL_SECONDS
    journal_path: str | os.PathLike[str] | None = None

    def __post_init__(self) -> None:
        if self.on_store_error not in ("deny", "allow"):
            raise ConfigurationError(f"on_store_error must be 'deny' or 'allow', not {self.on_store_error!r}")
        if not self.reservation_ttl > 0:
            raise ConfigurationError(f"reservation_ttl must be positive, not {shown(self.reservation_ttl)}")
        if self.settle_mode not in ("sync", "background"):
            raise ConfigurationError(f"settle_mode must be 'sync' or 'background', not {self.settle_mode!r}")
        if self.settle_queue_size < 1 or self.settle_batch < 1:
            raise ConfigurationError("settle_queue_size and settle_batch must be at least 1")
        if not self.settle_linger >= 0:
            raise ConfigurationError(f"settle_linger must not be negative, not {shown(self.settle_linger)}")
        fraction = self.lease_fraction
        if fraction is not None and not 0 < fraction <= 1:
            raise ConfigurationError(f"lease_fraction must be in (0, 1], not {shown(fraction)}")
        if not 0 < self.lease_seconds <= MAX_LEASE_SECONDS:
            raise ConfigurationError(
                f"lease_seconds must be positive and at most {MAX_LEASE_SECONDS:g}, "
                f"not {shown(self.lease_seconds)}"
            )
        if not self.max_call_seconds > 0:
            raise ConfigurationError(f"max_call_seconds must be positive, not {shown(self.max_call_seconds)}")
        # Numbers given as ints (or Decimals) are kept as floats, as the ledger always exposed them.
        object.__setattr__(self, "reservation_ttl", float(self.reservation_ttl))
        object.__setattr__(self, "lease_seconds", float(self.lease_seconds))
        object.__setattr__(self, "max_call_seconds", float(self.max_call_seconds))
        if fraction is not None:
            object.__setattr__(self, "lease_fraction", float(fraction))
