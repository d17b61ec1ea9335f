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
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final, Literal

from bedrock_budget._memo import remember
from bedrock_budget.errors import ConfigurationError, InvalidModelIdError, ModelResolutionError
from bedrock_budget.model_ids import Kind, ModelRef, Route, parse_model_id
from bedrock_budget.regions import AU_REGIONS, IN_REGIONS, JP_REGIONS, MAJOR_BLOCKS, region_block

__all__ = [
    "DEFAULT_REGION",
    "ImportedModelInfo",
    "ModelResolver",
    "PricingMode",
    "ProvisionedInfo",
    "ResolvedModel",
    "route_from_regions",
]

PricingMode = Literal["on_demand", "provisioned", "custom_model_import", "custom_deployment", "marketplace"]
Source = Literal["id", "static_mapping", "control_plane"]

DEFAULT_REGION: Final = "us-east-1"
_MAX_HOPS: Final = 6
_EXAMPLE_TARGET: Final = "us.anthropic.claude-3-5-haiku-20241022-v1:0"

# The billing mode is decided by what the caller invoked, whatever it points to: a provisioned model serving
# a custom model is still billed per model-unit hour. Kinds not listed take the mode of their target.
_OUTER_MODE: Final[dict[Kind, PricingMode]] = {
    "provisioned_model": "provisioned",
    "custom_model": "custom_deployment",
    "custom_model_deployment": "custom_deployment",
    "imported_model": "custom_model_import",
    "sagemaker_endpoint": "marketplace",
}

_OPERATION: Final[dict[Kind, str]] = {
    "inference_profile": "get_inference_profile",
    "application_inference_profile": "get_inference_profile",
    "provisioned_model": "get_provisioned_model_throughput",
    "custom_model": "get_custom_model",
    "custom_model_deployment": "get_custom_model_deployment",
    "imported_model": "get_imported_model",
    "prompt_router": "get_prompt_router",
    "prompt": "get_prompt",
}

_KIND_TEXT: Final[dict[Kind, str]] = {
    "foundation_model": "a foundation model",
    "inference_profile": "a system inference profile whose id does not name its model",
    "application_inference_profile": "an application inference profile ARN, which hides the model",
    "provisioned_model": "a provisioned-throughput ARN, which hides the model",
    "custom_model": "a custom-model ARN that does not name its base model",
    "custom_model_deployment": "a custom-model deployment ARN, which hides the model",
    "imported_model": "an imported-model ARN",
    "prompt": "a Prompt management ARN, whose model is stored in the prompt",
    "prompt_router": "a prompt-router ARN, which hides its models",
    "sagemaker_endpoint": "a SageMaker endpoint ARN",
}


@dataclass(frozen=True, slots=True)
class ProvisionedInfo:
    """Capacity of a Provisioned Throughput, from ``get_provisioned_model_throughput``."""

    provisioned_model_arn: str
    model_arn: str | None  # the model it serves: a foundation-model or custom-model ARN
    model_units: int | None
    desired_model_units: int | None
    commitment: str | None  # "OneMonth" | "SixMonths"; None means no commitment (hourly)
    commitment_expiration: datetime | None
    status: str | None


@dataclass(frozen=True, slots=True)
class ImportedModelInfo:
    """Capacity of an imported model (Custom Model Import), from ``get_imported_model``."""

    model_arn: str
    model_architecture: str | None
    custom_model_units_per_copy: int | None
    custom_model_units_version: str | None


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """Everything pricing needs to know about the model a call uses.

    ``base_id`` is the foundation-model id without a geo prefix. Imported models, custom models without a
    base and SageMaker endpoints have no foundation model: their ``base_id`` is their own ARN, so a price
    entry can be keyed by it. ``region`` is the source Region (the runtime client's), which is what AWS
    prices cross-Region calls by. For prompt routers ``base_id`` is the fallback model; ``candidates`` lists
    every model the router may pick, for worst-case estimates.
    """

    ref: ModelRef
    base_id: str
    route: Route
    region: str
    pricing_mode: PricingMode
    provisioned: ProvisionedInfo | None = None
    geo: str | None = None
    imported: ImportedModelInfo | None = None
    candidates: tuple[str, ...] = ()
    source: Source = "id"


# -- route inference -------------------------------------------------------------------------------------


def route_from_regions(regions: Iterable[str]) -> tuple[Route, str | None]:
    """Infer ``(route, geo)`` of an inference profile from the Regions its ``models[]`` entries name.

    * one Region → ``("in_region", None)``: the profile wraps a model in one Region;
    * Regions on one continent → ``("geo", g)`` with ``g`` in us, ca, eu, apac, jp, au, in, us-gov;
    * Regions on two or more of North America, Europe and Asia-Pacific → ``("global", "global")``.

    Continents rather than Region prefixes, so that a US profile that also routes to ``ca-central-1`` or an
    EU one that includes ``il-central-1`` is not mistaken for global. Global profiles cover all commercial
    Regions, so they always span continents. This is a heuristic; state the route in a static mapping when
    it matters.
    """
    found = frozenset(regions)
    if not found:
        raise ValueError("no Regions to infer a route from")
    if len(found) == 1:
        return "in_region", None
    blocks = {region_block(r) for r in found}
    major = blocks & MAJOR_BLOCKS
    if len(major) >= 2 or (not major and len(blocks) >= 2):
        return "global", "global"
    block = next(iter(major)) if major else next(iter(blocks))
    in_block = {r for r in found if region_block(r) == block}
    if block == "na":
        return "geo", "ca" if all(r.startswith("ca-") for r in in_block) else "us"
    if block == "europe":
        return "geo", "eu"
    if block == "apac":
        if in_block <= JP_REGIONS:
            return "geo", "jp"
        if in_block <= AU_REGIONS:
            return "geo", "au"
        if in_block <= IN_REGIONS:
            return "geo", "in"
        return "geo", "apac"
    return "geo", block


# -- internals -------------------------------------------------------------------------------------------


class _ResolveError(Exception):
    """A resolution failure inside the resolver; ``resolve`` turns it into ``ModelResolutionError``."""

    def __init__(self, reason: str, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause


@dataclass(frozen=True, slots=True)
class _Res:
    base_id: str
    route: Route
    geo: str | None
    pricing_mode: PricingMode
    source: Source
    provisioned: ProvisionedInfo | None = None
    imported: ImportedModelInfo | None = None
    candidates: tuple[str, ...] = ()
    # True when any hop came from the control plane: such results expire, the others never change.
    looked_up: bool = False


@dataclass(frozen=True, slots=True)
class _Entry:
    expires: float
    result: _Res | None
    failure: _ResolveError | None

    def unwrap(self, note: str = "") -> _Res:
        if self.result is not None:
            return self.result
        assert self.failure is not None
        # A fresh exception per raise: one shared instance raised in many threads would pile up tracebacks.
        raise _ResolveError(self.failure.reason + note, self.failure.cause)


class _Flight:
    """One in-progress lookup that other threads wait for instead of repeating it."""

    __slots__ = ("_done", "entry")

    def __init__(self) -> None:
        self._done = threading.Event()
        self.entry: _Entry | None = None

    def finish(self, entry: _Entry) -> None:
        self.entry = entry
        self._done.set()

    def wait(self) -> _Entry:
        self._done.wait()
        assert self.entry is not None
        return self.entry


def _wrap(outer: Kind, inner: _Res, source: Source) -> _Res:
    return replace(inner, pricing_mode=_OUTER_MODE.get(outer, inner.pricing_mode), source=source)


def _permission(op: str) -> str:
    return "bedrock:" + "".join(word.capitalize() for word in op.split("_"))


def _mapping_hint(ref: ModelRef) -> str:
    return (
        f"to price it without the control plane, map it: ModelResolver(static_mapping="
        f"{{{ref.canonical!r}: {_EXAMPLE_TARGET!r}}}) with the model it really uses"
    )


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _is_client(obj: object, marker: str) -> bool:
    return hasattr(obj, marker)


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
        for name, obj, marker in (
            ("control_plane", control_plane, "get_inference_profile"),
            ("agent_control_plane", agent_control_plane, "get_prompt"),
        ):
            if obj is not None and not _is_client(obj, marker) and not callable(obj):
                raise ConfigurationError(
                    f"{name} must be a boto3 client with {marker}() or a callable region -> client, "
                    f"not {type(obj).__name__}"
                )
        self._static = self._compile_mapping(static_mapping or {})
        self._control_plane = control_plane
        self._agent_control_plane = agent_control_plane
        self._ttl = ttl_seconds
        self._negative_ttl = negative_ttl_seconds
        self._clock = clock
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._inflight: dict[str, _Flight] = {}
        self._clients: dict[tuple[str, str], Any] = {}
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
            res = self._resolve_ref(ref, ())
        except _ResolveError as failure:
            raise ModelResolutionError(ref.raw, failure.reason) from failure.cause
        resolved = ResolvedModel(
            ref=ref,
            base_id=res.base_id,
            route=res.route,
            region=client_region or ref.region or DEFAULT_REGION,
            pricing_mode=res.pricing_mode,
            provisioned=res.provisioned,
            geo=res.geo,
            imported=res.imported,
            candidates=res.candidates,
            source=res.source,
        )
        if not res.looked_up:
            remember(self._memo, memo_key, resolved, self._max_entries)
        return resolved

    def invalidate(self, model_id: str | None = None) -> None:
        """Forget cached lookups: of one identifier, or all of them."""
        with self._lock:
            if model_id is None:
                self._cache.clear()
                self._memo.clear()
            else:
                self._cache.pop(parse_model_id(model_id).canonical, None)

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

    def _resolve_ref(self, ref: ModelRef, chain: tuple[str, ...]) -> _Res:
        if not chain:
            return self._resolve_step(ref, chain)
        try:
            return self._resolve_step(ref, chain)
        except _ResolveError as failure:
            # The error is reported against the id the caller passed; say which inner id really failed.
            raise _ResolveError(f"it refers to {ref.canonical!r}: {failure.reason}", failure.cause) from None

    def _resolve_step(self, ref: ModelRef, chain: tuple[str, ...]) -> _Res:
        key = ref.canonical
        if key in chain:
            raise _ResolveError(f"identifiers refer to each other in a loop: {' -> '.join([*chain, key])}")
        if len(chain) >= _MAX_HOPS:
            raise _ResolveError(f"more than {_MAX_HOPS} levels of indirection: {' -> '.join([*chain, key])}")
        chain = (*chain, key)
        mapped = self._static.get(key)
        if mapped is not None:
            return _wrap(ref.kind, self._resolve_ref(mapped, chain), "static_mapping")
        if ref.base_id is not None:
            mode = _OUTER_MODE.get(ref.kind, "on_demand")
            return _Res(ref.base_id, ref.route, ref.geo, mode, "id")
        if ref.kind == "sagemaker_endpoint":
            return _Res(key, "in_region", None, "marketplace", "id")
        if ref.kind == "imported_model" and self._control_plane is None:
            # Nothing is hidden that pricing needs (there is no base model); the lookup only adds capacity.
            return _Res(key, "in_region", None, "custom_model_import", "id")
        self._require_control_plane(ref)
        return self._cached(ref, chain)

    def _require_control_plane(self, ref: ModelRef) -> None:
        region = ref.region or DEFAULT_REGION
        if ref.kind == "prompt":
            if self._agent_control_plane is None:
                raise _ResolveError(
                    f"it is {_KIND_TEXT[ref.kind]}. Pass agent_control_plane=boto3.client('bedrock-agent', "
                    f"region_name={region!r}) (IAM: {_permission('get_prompt')}), or {_mapping_hint(ref)}"
                )
        elif self._control_plane is None:
            raise _ResolveError(
                f"it is {_KIND_TEXT[ref.kind]} and no control plane is configured. Pass "
                f"control_plane=boto3.client('bedrock', region_name={region!r}) (IAM: "
                f"{_permission(_OPERATION[ref.kind])}), or {_mapping_hint(ref)}"
            )

    def _cached(self, ref: ModelRef, chain: tuple[str, ...]) -> _Res:
        key = ref.canonical
        # Only the outermost lookup is shared between threads; nested hops never wait on another thread,
        # so two threads resolving each other's targets cannot deadlock.
        shared = len(chain) == 1
        with self._lock:
            now = self._clock()
            entry = self._cache.get(key)
            if entry is not None:
                if entry.expires > now:
                    self._cache.move_to_end(key)
                    note = f" (cached failure; retried after {entry.expires - now:.0f}s)"
                    return entry.unwrap(note)
                del self._cache[key]
            flight = self._inflight.get(key) if shared else None
            if flight is not None:
                owner = False
            else:
                owner = True
                flight = _Flight()
                if shared:
                    self._inflight[key] = flight
        if not owner:
            return flight.wait().unwrap()
        try:
            entry = self._lookup_entry(ref, chain)
        except BaseException as exc:
            with self._lock:
                self._retire(key, flight)
            flight.finish(_Entry(0.0, None, _ResolveError(f"lookup failed unexpectedly: {exc!r}", exc)))
            raise
        # Storing the entry and retiring the flight under one lock leaves no window in which a newcomer
        # sees neither and starts a second lookup.
        with self._lock:
            self._cache[key] = entry
            self._cache.move_to_end(key)
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
            self._retire(key, flight)
        flight.finish(entry)
        return entry.unwrap()

    def _retire(self, key: str, flight: _Flight) -> None:
        # A nested hop's private flight must never retire another thread's shared one for the same key.
        if self._inflight.get(key) is flight:
            del self._inflight[key]

    def _lookup_entry(self, ref: ModelRef, chain: tuple[str, ...]) -> _Entry:
        try:
            result = self._lookup(ref, chain)
        except _ResolveError as failure:
            return _Entry(self._clock() + self._negative_ttl, None, failure)
        return _Entry(self._clock() + self._ttl, replace(result, looked_up=True), None)

    def _lookup(self, ref: ModelRef, chain: tuple[str, ...]) -> _Res:
        kind = ref.kind
        if kind in ("application_inference_profile", "inference_profile"):
            return self._from_inference_profile(ref)
        if kind == "provisioned_model":
            return self._from_provisioned(ref, chain)
        if kind == "custom_model":
            return self._from_custom_model(ref, chain)
        if kind == "custom_model_deployment":
            return self._from_deployment(ref, chain)
        if kind == "imported_model":
            return self._from_imported(ref)
        if kind == "prompt_router":
            return self._from_prompt_router(ref, chain)
        if kind == "prompt":
            return self._from_prompt(ref, chain)
        raise _ResolveError(f"it is {_KIND_TEXT[kind]}, which cannot be looked up")  # pragma: no cover

    # -- control-plane calls -----------------------------------------------------------------------------

    def _client(self, service: str, region: str) -> Any:
        source = self._agent_control_plane if service == "bedrock-agent" else self._control_plane
        marker = "get_prompt" if service == "bedrock-agent" else "get_inference_profile"
        if source is None or _is_client(source, marker):
            return source
        key = (service, region)
        with self._lock:
            client = self._clients.get(key)
        if client is None:
            try:
                client = source(region)
            except Exception as exc:
                raise _ResolveError(
                    f"the {service} client factory failed for {region}: {exc!r}", exc
                ) from exc
            with self._lock:
                client = self._clients.setdefault(key, client)
        return client

    def _call(self, ref: ModelRef, service: str, op: str, **params: str) -> Mapping[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._client(service, ref.region or DEFAULT_REGION)
        try:
            response = getattr(client, op)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "Unknown"), error.get("Message", "")
            extra = (
                f" (the caller needs IAM permission {_permission(op)})"
                if code == "AccessDeniedException"
                else ""
            )
            raise _ResolveError(f"{op} failed: {code}: {message}{extra}; {_mapping_hint(ref)}", exc) from exc
        except BotoCoreError as exc:
            raise _ResolveError(f"{op} failed: {exc}; {_mapping_hint(ref)}", exc) from exc
        if not isinstance(response, Mapping):
            raise _ResolveError(f"{op} returned {type(response).__name__}, not a response")
        return response

    def _parse_target(self, value: object, op: str, field: str) -> ModelRef:
        if not isinstance(value, str) or not value:
            raise _ResolveError(f"{op} returned no {field}")
        try:
            return parse_model_id(value)
        except InvalidModelIdError as exc:
            raise _ResolveError(f"{op} returned an unusable {field} {value!r}: {exc}", exc) from exc

    def _from_inference_profile(self, ref: ModelRef) -> _Res:
        op = "get_inference_profile"
        response = self._call(ref, "bedrock", op, inferenceProfileIdentifier=ref.canonical)
        models = response.get("models") or []
        bases: set[str] = set()
        regions: set[str] = set()
        for model in models:
            target = self._parse_target(
                model.get("modelArn") if isinstance(model, Mapping) else None, op, "modelArn"
            )
            if target.kind != "foundation_model" or target.base_id is None or target.region is None:
                raise _ResolveError(f"{op} returned {target.raw!r}, which is not a foundation-model ARN")
            bases.add(target.base_id)
            regions.add(target.region)
        if not bases:
            raise _ResolveError(f"{op} returned no models; {_mapping_hint(ref)}")
        if len(bases) > 1:
            raise _ResolveError(
                f"the profile routes to several models ({', '.join(sorted(bases))}); {_mapping_hint(ref)}"
            )
        route, geo = route_from_regions(regions)
        return _Res(bases.pop(), route, geo, "on_demand", "control_plane")

    def _from_provisioned(self, ref: ModelRef, chain: tuple[str, ...]) -> _Res:
        op = "get_provisioned_model_throughput"
        response = self._call(ref, "bedrock", op, provisionedModelId=ref.canonical)
        expiry = response.get("commitmentExpirationTime")
        info = ProvisionedInfo(
            provisioned_model_arn=_opt_str(response.get("provisionedModelArn")) or ref.canonical,
            model_arn=_opt_str(response.get("modelArn")),
            model_units=_opt_int(response.get("modelUnits")),
            desired_model_units=_opt_int(response.get("desiredModelUnits")),
            commitment=_opt_str(response.get("commitmentDuration")),
            commitment_expiration=expiry if isinstance(expiry, datetime) else None,
            status=_opt_str(response.get("status")),
        )
        field = "foundationModelArn" if response.get("foundationModelArn") else "modelArn"
        target = self._parse_target(response.get(field), op, field)
        inner = self._resolve_ref(target, chain)
        return replace(
            _wrap("provisioned_model", inner, "control_plane"), route="in_region", geo=None, provisioned=info
        )

    def _from_custom_model(self, ref: ModelRef, chain: tuple[str, ...]) -> _Res:
        op = "get_custom_model"
        response = self._call(ref, "bedrock", op, modelIdentifier=ref.canonical)
        if not response.get("baseModelArn"):
            # Imported weights (customizationType IMPORTED) have no base foundation model to price by.
            return _Res(ref.canonical, "in_region", None, "custom_deployment", "control_plane")
        target = self._parse_target(response.get("baseModelArn"), op, "baseModelArn")
        return _wrap("custom_model", self._resolve_ref(target, chain), "control_plane")

    def _from_deployment(self, ref: ModelRef, chain: tuple[str, ...]) -> _Res:
        op = "get_custom_model_deployment"
        response = self._call(ref, "bedrock", op, customModelDeploymentIdentifier=ref.canonical)
        target = self._parse_target(response.get("modelArn"), op, "modelArn")
        return _wrap("custom_model_deployment", self._resolve_ref(target, chain), "control_plane")

    def _from_imported(self, ref: ModelRef) -> _Res:
        op = "get_imported_model"
        response = self._call(ref, "bedrock", op, modelIdentifier=ref.canonical)
        units = response.get("customModelUnits")
        units = units if isinstance(units, Mapping) else {}
        info = ImportedModelInfo(
            model_arn=_opt_str(response.get("modelArn")) or ref.canonical,
            model_architecture=_opt_str(response.get("modelArchitecture")),
            custom_model_units_per_copy=_opt_int(units.get("customModelUnitsPerModelCopy")),
            custom_model_units_version=_opt_str(units.get("customModelUnitsVersion")),
        )
        return _Res(ref.canonical, "in_region", None, "custom_model_import", "control_plane", imported=info)

    def _from_prompt_router(self, ref: ModelRef, chain: tuple[str, ...]) -> _Res:
        op = "get_prompt_router"
        response = self._call(ref, "bedrock", op, promptRouterArn=ref.canonical)
        fallback_spec = response.get("fallbackModel")
        fallback_arn = fallback_spec.get("modelArn") if isinstance(fallback_spec, Mapping) else None
        fallback = self._resolve_ref(self._parse_target(fallback_arn, op, "fallbackModel.modelArn"), chain)
        candidates = [fallback.base_id]
        for model in response.get("models") or []:
            arn = model.get("modelArn") if isinstance(model, Mapping) else None
            base = self._resolve_ref(self._parse_target(arn, op, "models[].modelArn"), chain).base_id
            if base not in candidates:
                candidates.append(base)
        return replace(
            fallback, pricing_mode="on_demand", source="control_plane", candidates=tuple(candidates)
        )

    def _from_prompt(self, ref: ModelRef, chain: tuple[str, ...]) -> _Res:
        op = "get_prompt"
        params = {"promptIdentifier": ref.canonical.rsplit(":", 1)[0] if ref.version else ref.canonical}
        if ref.version:
            params["promptVersion"] = ref.version
        response = self._call(ref, "bedrock-agent", op, **params)
        variants = [v for v in response.get("variants") or [] if isinstance(v, Mapping)]
        wanted = response.get("defaultVariant")
        chosen = [v for v in variants if v.get("name") == wanted] if wanted else variants
        if len(chosen) != 1:
            raise _ResolveError(
                f"{op} returned {len(variants)} variants and default variant {wanted!r}, so the model "
                f"is ambiguous; {_mapping_hint(ref)}"
            )
        variant = chosen[0]
        if not variant.get("modelId"):
            agent = variant.get("genAiResource")
            what = "runs an agent, not a model" if agent else "names no model"
            raise _ResolveError(f"prompt variant {variant.get('name')!r} {what}; {_mapping_hint(ref)}")
        target = self._parse_target(variant.get("modelId"), op, "variants[].modelId")
        return _wrap("prompt", self._resolve_ref(target, chain), "control_plane")
