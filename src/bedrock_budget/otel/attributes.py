"""Bounded attribute sets for one call record, built once per distinct combination.

Every attribute has a finite set of values whatever callers send, by the same policies as the Prometheus
labels (:mod:`bedrock_budget.metrics.labels`): models are canonical price-table ids or ``other``, apps are
capped (first seen first served) or allow-listed, user ids are off unless allow-listed (or the ``top_n``
heaviest spenders), error types are capped. Prompts and completions never reach an attribute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import bedrock_budget.otel.names as names
from bedrock_budget.errors import ConfigurationError
from bedrock_budget.metrics.labels import NONE, OTHER, CappedLabels, ModelLabels, TopUsers, user_policy

if TYPE_CHECKING:
    from bedrock_budget.pricing.table import PriceTable
    from bedrock_budget.records import CallRecord

Attributes = Mapping[str, str | int]

_CACHE_LIMIT: Final = 10_000
# Bedrock's error codes are a short fixed list; the cap only guards against records from elsewhere.
_ERROR_TYPES: Final = 32
_BLOCKED_ERROR: Final = "BudgetExceededError"


@dataclass(frozen=True, slots=True)
class CallAttributes:
    """The attribute sets one call's measurements use.

    ``operation``: the GenAI metric attributes (operation, provider, models, server), for durations and
    default-mode token usage. ``failed``: the same plus ``error.type`` when the call failed. ``spend``:
    ``failed`` plus app (and user when enabled), for cost, requests and token counts. ``outcome``: ``spend``
    plus our outcome, for the request counter. ``input_tokens``/``output_tokens``: ``spend`` plus the
    token type (default token metric); ``token_counts``: ``spend`` plus the token modality (newest draft).
    """

    operation: Attributes
    failed: Attributes
    spend: Attributes
    outcome: Attributes
    # Built once per combination so a call allocates no attribute dicts.
    input_tokens: Attributes
    output_tokens: Attributes
    token_counts: Attributes


class AttributePolicy:
    """Turns a :class:`~bedrock_budget.records.CallRecord` into :class:`CallAttributes`.

    ``server_address``/``server_port``: where calls go; by default the Bedrock runtime endpoint of the
    record's region on port 443 (pass the address of a VPC endpoint or proxy when calls go there).
    """

    def __init__(
        self,
        price_table: PriceTable,
        *,
        user_labels: bool | Iterable[str] = False,
        top_n: int | None = None,
        app_labels: int | Iterable[str] = 50,
        app_key: str = "app",
        user_key: str = "user",
        server_address: str | None = None,
        server_port: int = 443,
    ) -> None:
        try:
            self._apps = CappedLabels(app_labels)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        self._users = user_policy(user_labels, top_n)
        self._models = ModelLabels(price_table)
        self._errors = CappedLabels(_ERROR_TYPES)
        self._regions = CappedLabels(64)
        self._app_key = app_key
        self._user_key = user_key
        self._server_address = server_address
        self._server_port = server_port
        self._cache: dict[tuple[str, ...], CallAttributes] = {}

    def __call__(self, record: CallRecord) -> CallAttributes:
        attribution = record.attribution
        app = self._apps(attribution.get(self._app_key))
        user = self._user(record, attribution.get(self._user_key))
        key = (
            record.operation,
            record.requested_model_id,
            record.model_id or "",
            record.region,
            self._error_type(record),
            record.outcome,
            app,
            user,
        )
        made = self._cache.get(key)
        if made is None:
            made = self._build(*key)
            # Every part of the key is bounded except the raw ids, which the model policy folds; the
            # limit keeps a flood of distinct mistyped ids from growing memory.
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[key] = made
        return made

    def _user(self, record: CallRecord, raw: str | None) -> str:
        users = self._users
        if users is None:
            return ""
        if isinstance(users, TopUsers):
            cost = record.cost
            return users(raw, cost.total_femto + 1 if cost is not None else 1)
        return users(raw)

    def _error_type(self, record: CallRecord) -> str:
        outcome = record.outcome
        if outcome == "ok":
            return ""
        if outcome == "blocked":
            return _BLOCKED_ERROR
        label = self._errors(record.error_code)
        return names.ERROR_OTHER if label in (OTHER, NONE) else label

    def _build(
        self,
        operation: str,
        requested: str,
        served: str,
        region: str,
        error_type: str,
        outcome: str,
        app: str,
        user: str,
    ) -> CallAttributes:
        request_model = self._models(requested or None)
        response_model = self._models(served or None)
        base: dict[str, str | int] = {
            names.OPERATION_NAME: names.operation_name(operation, request_model),
            names.PROVIDER_NAME: names.PROVIDER_AWS_BEDROCK,
            names.SERVER_ADDRESS: self._address(region),
            names.SERVER_PORT: self._server_port,
        }
        if request_model != NONE:
            base[names.REQUEST_MODEL] = request_model
        if response_model != NONE and outcome != "blocked":
            base[names.RESPONSE_MODEL] = response_model
        failed = dict(base)
        if error_type:
            failed[names.ERROR_TYPE] = error_type
        spend = dict(failed)
        spend[names.APP] = app
        if user:
            spend[names.USER] = user
        return CallAttributes(
            operation=base,
            failed=failed,
            spend=spend,
            outcome={**spend, names.OUTCOME: outcome},
            input_tokens={**spend, names.TOKEN_TYPE: "input"},
            output_tokens={**spend, names.TOKEN_TYPE: "output"},
            token_counts={**spend, names.TOKEN_MODALITY: names.MODALITY_UNKNOWN},
        )

    def _address(self, region: str) -> str:
        if self._server_address is not None:
            return self._server_address
        label = self._regions(region)
        if label in (OTHER, NONE):
            return "bedrock-runtime.amazonaws.com"
        return f"bedrock-runtime.{label}.amazonaws.com"
