"""The keyword options of ``wrap``/``instrument`` that configure budgets, named once: the wrapper decides
from them whether to build a budget layer at all, and the budget layer hands the ledger's own to
:class:`~bedrock_budget.budgets.ledger.Ledger`. A module of its own so that neither side imports the other
(and a client without budgets never loads the budget layer)."""

from __future__ import annotations

from typing import Final

#: Options passed through to the ``Ledger`` as they are (``on_store_error`` among them).
LEDGER_OPTION_NAMES: Final = (
    "on_store_error",
    "alert_sinks",
    "reservation_ttl",
    "journal_size",
    "settle_mode",
    "lease_fraction",
    "lease_seconds",
    "max_call_seconds",
    "journal_path",
    "track",
)

#: Every budget option: given any of them, ``wrap`` builds a budget layer.
BUDGET_OPTION_NAMES: Final = ("store", "budgets", "ledger", "count_tokens", *LEDGER_OPTION_NAMES)
