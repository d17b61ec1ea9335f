"""Turn any model identifier into what pricing needs: base model, source region, route and pricing mode.

Identifiers that show their model (base ids, ``us.``/``global.`` profile ids, foundation-model and system
inference-profile ARNs) resolve offline. Identifiers that hide it (application inference profiles,
provisioned models, custom models and deployments, prompts, prompt routers) are looked up, in this order:

1. ``static_mapping``: ``{raw id or ARN: model id of any form}``, for offline use and to override lookups;
2. the ``bedrock`` control plane (``get_inference_profile``, ``get_provisioned_model_throughput``, ...), and
   for prompts the ``bedrock-agent`` control plane (``get_prompt``).

Lookups are cached per identifier for ``ttl_seconds`` (profiles and provisioned models do not change their
model); failures are cached for ``negative_ttl_seconds`` so an outage or a missing IAM permission does not
turn every call into a control-plane request. Concurrent first lookups of one identifier share one request.

Route of an application inference profile: ``GetInferenceProfile`` does not say whether a multi-Region
profile was copied from a global or a geographic system profile, so :func:`route_from_regions` infers it
from the Regions it routes to. When that guess is wrong for you, state the route in the static mapping, e.g.
``{"arn:...:application-inference-profile/abc": "global.anthropic.claude-sonnet-4-5-20250929-v1:0"}``.

botocore is imported lazily: constructing a resolver, or resolving ids that need no lookup, never imports it.

This module is the front. The value it returns is :mod:`~bedrock_budget.resolved_model`'s, the control-plane
lookups are in :mod:`~bedrock_budget.model_lookups` and their cache in :mod:`~bedrock_budget.lookup_cache`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from bedrock_budget._memo import remember
from bedrock_budget.errors import ConfigurationError, InvalidModelIdError, ModelResolutionError
from bedrock_budget.lookup_cache import LookupCache
from bedrock_budget.model_ids import ModelRef, parse_model_id
from bedrock_budget.model_lookups import (
    OUTER_MODE,
    ControlPlaneLookups,
    ResolveError,
    resolved,
    route_from_regions,
    wrapped,
)
from bedrock_budget.resolved_model import (
    DEFAULT_REGION,
    ImportedModelInfo,
    PricingMode,
    ProvisionedInfo,
    ResolvedModel,
)

__all__ = [
    "DEFAULT_REGION",
    "ImportedModelInfo",
    "ModelResolver",
    "PricingMode",
    "ProvisionedInfo",
    "ResolvedModel",
    "route_from_regions",
]

_MAX_HOPS: Final = 6


class ModelResolver:
    """Resolve model identifiers for pricing. Thread-safe; share one per process.

    ``control_plane`` is a boto3 ``bedrock`` client, or a factory ``region -> client`` used to look up ARNs
    in their own Region (ARNs of other Regions cannot be looked up through a single regional client).
    ``agent_control_plane`` is the same for ``bedrock-agent``, needed only for Prompt management ARNs.
    """

    def __init__(
        self,
        *,
        static_mapping: Mapping[str, str] | None = None,
        control_plane: Any | None = None,
        ttl_seconds: float = 3600,
        clock: Callable[[], float] = time.monotonic,
        negative_ttl_seconds: float = 60,
        agent_control_plane: Any | None = None,
        max_entries: int = 4096,
    ) -> None:
        if ttl_seconds < 0 or negative_ttl_seconds < 0:
            raise ConfigurationError("ttl_seconds and negative_ttl_seconds must not be negative")
        if max_entries < 1:
            raise ConfigurationError("max_entries must be at least 1")
        self._lookups = ControlPlaneLookups(control_plane, agent_control_plane)
        self._static = self._compile_mapping(static_mapping or {})
        self._max_entries = max_entries
        self._cache = LookupCache(
            ttl=ttl_seconds, negative_ttl=negative_ttl_seconds, clock=clock, max_entries=max_entries
        )
        # Results that need no lookup are fixed for the resolver's life; dict reads are atomic, no lock.
        self._memo: dict[tuple[str, str | None], ResolvedModel] = {}

    # -- public ------------------------------------------------------------------------------------------

    def resolve(self, model_id: str, *, client_region: str | None = None) -> ResolvedModel:
        """Resolve ``model_id`` as passed to a ``bedrock-runtime`` client in ``client_region``.

        Raises :class:`InvalidModelIdError` for malformed ids and :class:`ModelResolutionError` when the model
        cannot be determined (no mapping and no control plane, or the lookup failed).
        """
        memo_key = (model_id, client_region)
        hit = self._memo.get(memo_key) if isinstance(model_id, str) else None
        if hit is not None:
            return hit
        ref = parse_model_id(model_id)
        try:
            found = self._resolve_ref(ref, ())
        except ResolveError as failure:
            raise ModelResolutionError(ref.raw, failure.reason) from failure.cause
        result = found.reached_by(ref, client_region or ref.region or DEFAULT_REGION)
        if not result.looked_up:
            remember(self._memo, memo_key, result, self._max_entries)
        return result

    def invalidate(self, model_id: str | None = None) -> None:
        """Forget cached lookups: of one identifier, or all of them."""
        if model_id is None:
            self._cache.forget()
            self._memo.clear()
        else:
            self._cache.forget(parse_model_id(model_id).canonical)

    # -- mapping -----------------------------------------------------------------------------------------

    @staticmethod
    def _compile_mapping(mapping: Mapping[str, str]) -> dict[str, ModelRef]:
        compiled: dict[str, ModelRef] = {}
        for key, value in mapping.items():
            try:
                source, target = parse_model_id(key), parse_model_id(value)
            except InvalidModelIdError as exc:
                raise ConfigurationError(f"static_mapping entry {key!r}: {value!r}: {exc}") from exc
            compiled[source.canonical] = target
        for start in compiled:
            seen = [start]
            nxt = compiled[start].canonical
            while nxt in compiled:
                if nxt in seen:
                    raise ConfigurationError(f"static_mapping loops: {' -> '.join([*seen, nxt])}")
                seen.append(nxt)
                nxt = compiled[nxt].canonical
        return compiled

    # -- resolution --------------------------------------------------------------------------------------

    def _resolve_ref(self, ref: ModelRef, chain: tuple[str, ...]) -> ResolvedModel:
        if not chain:
            return self._resolve_step(ref, chain)
        try:
            return self._resolve_step(ref, chain)
        except ResolveError as failure:
            # The error is reported against the id the caller passed; say which inner id really failed.
            raise ResolveError(f"it refers to {ref.canonical!r}: {failure.reason}", failure.cause) from None

    def _resolve_step(self, ref: ModelRef, chain: tuple[str, ...]) -> ResolvedModel:
        key = ref.canonical
        if key in chain:
            raise ResolveError(f"identifiers refer to each other in a loop: {' -> '.join([*chain, key])}")
        if len(chain) >= _MAX_HOPS:
            raise ResolveError(f"more than {_MAX_HOPS} levels of indirection: {' -> '.join([*chain, key])}")
        chain = (*chain, key)
        mapped = self._static.get(key)
        if mapped is not None:
            return wrapped(ref.kind, self._resolve_ref(mapped, chain), "static_mapping")
        if ref.base_id is not None:
            mode: PricingMode = OUTER_MODE.get(ref.kind, "on_demand")
            return resolved(ref, ref.base_id, ref.route, ref.geo, mode, "id")
        if ref.kind == "sagemaker_endpoint":
            return resolved(ref, key, "in_region", None, "marketplace", "id")
        if ref.kind == "imported_model" and not self._lookups.has_control_plane:
            # Nothing is hidden that pricing needs (there is no base model); the lookup only adds capacity.
            return resolved(ref, key, "in_region", None, "custom_model_import", "id")
        self._lookups.require(ref)
        # Only the outermost lookup is shared between threads; nested hops never wait on another thread,
        # so two threads resolving each other's targets cannot deadlock.
        return self._cache.get(
            key, lambda: self._lookups.lookup(ref, chain, self._resolve_ref), shared=len(chain) == 1
        )
