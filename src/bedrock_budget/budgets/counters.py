"""The ledger's running counts and gauges, read by metrics observers (``budgets.enforcement``): counters
only ever grow, gauges say how much is waiting now. Each is kept by the part of the ledger that does the
work; this class only names them in one place."""

from __future__ import annotations

from bedrock_budget.budgets.alerting import AlertDispatcher
from bedrock_budget.budgets.durable import JournalFile
from bedrock_budget.budgets.keeper import HoldKeeper
from bedrock_budget.budgets.leases import LeaseBookCore
from bedrock_budget.budgets.settler import Settler


class LedgerCounters:
    """Mixed into :class:`~bedrock_budget.budgets.ledger.Ledger`, which sets the parts below."""

    _settler: Settler
    _alerts: AlertDispatcher
    _leases: LeaseBookCore | None
    _keeper: HoldKeeper

    @property
    def _file(self) -> JournalFile | None:
        return self._settler.file

    @property
    def store_errors(self) -> int:
        """Store operations that failed: reservations, settlements and releases."""
        return self._settler.store_errors

    @property
    def journal_file_errors(self) -> int:
        """Writes to the journal file that failed (should stay 0)."""
        return self._settler.file_errors

    @property
    def alerts_fired(self) -> int:
        """Alerts handed to the sinks."""
        return self._alerts.fired

    @property
    def leases_taken(self) -> int:
        """Lease requests the store granted (see ``leases_live``)."""
        return self._leases.taken if self._leases is not None else 0

    @property
    def leases_refused(self) -> int:
        """Lease requests the store refused (see ``leases_live``)."""
        return self._leases.refused if self._leases is not None else 0

    @property
    def holds_renewed(self) -> int:
        """Store operations that renewed the holds of long calls."""
        return self._keeper.renewals

    @property
    def renewal_failures(self) -> int:
        """Renewals the store could not take, retried a period later."""
        return self._keeper.failures

    @property
    def overdue_calls(self) -> int:
        """Calls held longer than ``max_call_seconds`` and no longer renewed."""
        return self._keeper.overdue

    @property
    def pending_settlements(self) -> int:
        """Settlements queued in background mode and not yet applied (a gauge)."""
        return self._settler.pending

    @property
    def leases_live(self) -> int:
        """Counters this process holds a lease on (``lease_fraction``; a gauge)."""
        return len(self._leases) if self._leases is not None else 0

    @property
    def journal_depth(self) -> int:
        """Settlements waiting for the store (a gauge)."""
        return len(self._settler.journal)

    @property
    def journal_replayed(self) -> int:
        """Journalled settlements the store took on a replay, those taken over from the journal files of
        stopped processes (``journal_path``) included."""
        return self._settler.journal.replayed

    @property
    def journal_dropped(self) -> int:
        """Settlements lost because the journal was full (should stay 0)."""
        return self._settler.journal.dropped

    @property
    def journal_dropped_nanos(self) -> int:
        """The spend (nano-USD) of the settlements lost because the journal was full."""
        return self._settler.journal.dropped_nanos

    @property
    def replay_batch(self) -> int:
        """How many journalled settlements one successful store operation replays at most."""
        return self._settler.replay_batch
