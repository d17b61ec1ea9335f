"""Control-plane lookups for identifiers that hide their model, and the route of an inference profile.

Each lookup asks the ``bedrock`` control plane (``get_inference_profile``,
``get_provisioned_model_throughput``, ...), or for prompts the ``bedrock-agent`` control plane
(``get_prompt``), what an identifier points to.
When that is another identifier, the resolver is asked for it (``resolve_hop``), so chains such as a
provisioned model serving a custom model based on a foundation model resolve hop by hop.

botocore is imported lazily, by the first lookup.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from bedrock_budget.errors import ConfigurationError, InvalidModelIdError
from bedrock_budget.model_ids import Kind, ModelRef, Route, parse_model_id
from bedrock_budget.regions import AU_REGIONS, IN_REGIONS, JP_REGIONS, MAJOR_BLOCKS, region_block
from bedrock_budget.resolved_model import (
    DEFAULT_REGION,
    ImportedModelInfo,
    PricingMode,
    ProvisionedInfo,
    ResolvedModel,
    Source,
)

__all__ = [
    "OUTER_MODE",
    "ControlPlaneLookups",
    "ResolveError",
    "resolved",
    "route_from_regions",
    "wrapped",
]

#: Resolves an identifier one hop further: ``(ref, chain of canonical ids so far) -> ResolvedModel``.
ResolveHop = Callable[[ModelRef, tuple[str, ...]], ResolvedModel]

_EXAMPLE_TARGET: Final = "us.anthropic.claude-3-5-haiku-20241022-v1:0"

# The billing mode is decided by what the caller invoked, whatever it points to: a provisioned model serving
# a custom model is still billed per model-unit hour. Kinds not listed take the mode of their target.
OUTER_MODE: Final[dict[Kind, PricingMode]] = {
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


class ResolveError(Exception):
    """A resolution failure inside the resolver; ``resolve`` turns it into ``ModelResolutionError``."""

    def __init__(self, reason: str, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause


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


def resolved(
    ref: ModelRef,
    base_id: str,
    route: Route,
    geo: str | None,
    pricing_mode: PricingMode,
    source: Source,
    *,
    imported: ImportedModelInfo | None = None,
) -> ResolvedModel:
    """One hop's resolution of ``ref``, in the Region ``ref`` names (the caller's client Region replaces
    it once the whole chain is resolved)."""
    region = ref.region or DEFAULT_REGION
    return ResolvedModel(ref, base_id, route, region, pricing_mode, geo=geo, imported=imported, source=source)


def wrapped(outer: Kind, inner: ResolvedModel, source: Source) -> ResolvedModel:
    """``inner`` as reached through an identifier of kind ``outer``, which may decide the billing mode."""
    return replace(inner, pricing_mode=OUTER_MODE.get(outer, inner.pricing_mode), source=source)


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


class ControlPlaneLookups:
    """Ask the control planes what identifiers point to. Thread-safe.

    ``control_plane`` is a boto3 ``bedrock`` client, or a factory ``region -> client`` used to look up ARNs
    in their own Region; ``agent_control_plane`` the same for ``bedrock-agent``.
    """

    def __init__(self, control_plane: Any | None, agent_control_plane: Any | None) -> None:
        for name, obj, marker in (
            ("control_plane", control_plane, "get_inference_profile"),
            ("agent_control_plane", agent_control_plane, "get_prompt"),
        ):
            if obj is not None and not _is_client(obj, marker) and not callable(obj):
                raise ConfigurationError(
                    f"{name} must be a boto3 client with {marker}() or a callable region -> client, "
                    f"not {type(obj).__name__}"
                )
        self._control_plane = control_plane
        self._agent_control_plane = agent_control_plane
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}

    @property
    def has_control_plane(self) -> bool:
        return self._control_plane is not None

    def require(self, ref: ModelRef) -> None:
        """Raise :class:`ResolveError`, saying what to configure, when ``ref`` cannot be looked up."""
        region = ref.region or DEFAULT_REGION
        if ref.kind == "prompt":
            if self._agent_control_plane is None:
                raise ResolveError(
                    f"it is {_KIND_TEXT[ref.kind]}. Pass agent_control_plane=boto3.client('bedrock-agent', "
                    f"region_name={region!r}) (IAM: {_permission('get_prompt')}), or {_mapping_hint(ref)}"
                )
        elif self._control_plane is None:
            raise ResolveError(
                f"it is {_KIND_TEXT[ref.kind]} and no control plane is configured. Pass "
                f"control_plane=boto3.client('bedrock', region_name={region!r}) (IAM: "
                f"{_permission(_OPERATION[ref.kind])}), or {_mapping_hint(ref)}"
            )

    def lookup(self, ref: ModelRef, chain: tuple[str, ...], resolve_hop: ResolveHop) -> ResolvedModel:
        """What ``ref`` points to, resolving further identifiers it names through ``resolve_hop``."""
        kind = ref.kind
        if kind in ("application_inference_profile", "inference_profile"):
            return self._from_inference_profile(ref)
        if kind == "provisioned_model":
            return self._from_provisioned(ref, chain, resolve_hop)
        if kind == "custom_model":
            return self._from_custom_model(ref, chain, resolve_hop)
        if kind == "custom_model_deployment":
            return self._from_deployment(ref, chain, resolve_hop)
        if kind == "imported_model":
            return self._from_imported(ref)
        if kind == "prompt_router":
            return self._from_prompt_router(ref, chain, resolve_hop)
        if kind == "prompt":
            return self._from_prompt(ref, chain, resolve_hop)
        raise ResolveError(f"it is {_KIND_TEXT[kind]}, which cannot be looked up")  # pragma: no cover

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
                raise ResolveError(f"the {service} client factory failed for {region}: {exc!r}", exc) from exc
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
            raise ResolveError(f"{op} failed: {code}: {message}{extra}; {_mapping_hint(ref)}", exc) from exc
        except BotoCoreError as exc:
            raise ResolveError(f"{op} failed: {exc}; {_mapping_hint(ref)}", exc) from exc
        if not isinstance(response, Mapping):
            raise ResolveError(f"{op} returned {type(response).__name__}, not a response")
        return response

    @staticmethod
    def _parse_target(value: object, op: str, field: str) -> ModelRef:
        if not isinstance(value, str) or not value:
            raise ResolveError(f"{op} returned no {field}")
        try:
            return parse_model_id(value)
        except InvalidModelIdError as exc:
            raise ResolveError(f"{op} returned an unusable {field} {value!r}: {exc}", exc) from exc

    # -- one per kind ------------------------------------------------------------------------------------

    def _from_inference_profile(self, ref: ModelRef) -> ResolvedModel:
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
                raise ResolveError(f"{op} returned {target.raw!r}, which is not a foundation-model ARN")
            bases.add(target.base_id)
            regions.add(target.region)
        if not bases:
            raise ResolveError(f"{op} returned no models; {_mapping_hint(ref)}")
        if len(bases) > 1:
            raise ResolveError(
                f"the profile routes to several models ({', '.join(sorted(bases))}); {_mapping_hint(ref)}"
            )
        route, geo = route_from_regions(regions)
        return resolved(ref, bases.pop(), route, geo, "on_demand", "control_plane")

    def _from_provisioned(
        self, ref: ModelRef, chain: tuple[str, ...], resolve_hop: ResolveHop
    ) -> ResolvedModel:
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
        inner = resolve_hop(target, chain)
        return replace(
            wrapped("provisioned_model", inner, "control_plane"),
            route="in_region",
            geo=None,
            provisioned=info,
        )

    def _from_custom_model(
        self, ref: ModelRef, chain: tuple[str, ...], resolve_hop: ResolveHop
    ) -> ResolvedModel:
        op = "get_custom_model"
        response = self._call(ref, "bedrock", op, modelIdentifier=ref.canonical)
        if not response.get("baseModelArn"):
            # Imported weights (customizationType IMPORTED) have no base foundation model to price by.
            return resolved(ref, ref.canonical, "in_region", None, "custom_deployment", "control_plane")
        target = self._parse_target(response.get("baseModelArn"), op, "baseModelArn")
        return wrapped("custom_model", resolve_hop(target, chain), "control_plane")

    def _from_deployment(
        self, ref: ModelRef, chain: tuple[str, ...], resolve_hop: ResolveHop
    ) -> ResolvedModel:
        op = "get_custom_model_deployment"
        response = self._call(ref, "bedrock", op, customModelDeploymentIdentifier=ref.canonical)
        target = self._parse_target(response.get("modelArn"), op, "modelArn")
        return wrapped("custom_model_deployment", resolve_hop(target, chain), "control_plane")

    def _from_imported(self, ref: ModelRef) -> ResolvedModel:
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
        return resolved(
            ref, ref.canonical, "in_region", None, "custom_model_import", "control_plane", imported=info
        )

    def _from_prompt_router(
        self, ref: ModelRef, chain: tuple[str, ...], resolve_hop: ResolveHop
    ) -> ResolvedModel:
        op = "get_prompt_router"
        response = self._call(ref, "bedrock", op, promptRouterArn=ref.canonical)
        fallback_spec = response.get("fallbackModel")
        fallback_arn = fallback_spec.get("modelArn") if isinstance(fallback_spec, Mapping) else None
        fallback = resolve_hop(self._parse_target(fallback_arn, op, "fallbackModel.modelArn"), chain)
        candidates = [fallback.base_id]
        for model in response.get("models") or []:
            arn = model.get("modelArn") if isinstance(model, Mapping) else None
            base = resolve_hop(self._parse_target(arn, op, "models[].modelArn"), chain).base_id
            if base not in candidates:
                candidates.append(base)
        return replace(
            fallback, pricing_mode="on_demand", source="control_plane", candidates=tuple(candidates)
        )

    def _from_prompt(self, ref: ModelRef, chain: tuple[str, ...], resolve_hop: ResolveHop) -> ResolvedModel:
        op = "get_prompt"
        params = {"promptIdentifier": ref.canonical.rsplit(":", 1)[0] if ref.version else ref.canonical}
        if ref.version:
            params["promptVersion"] = ref.version
        response = self._call(ref, "bedrock-agent", op, **params)
        variants = [v for v in response.get("variants") or [] if isinstance(v, Mapping)]
        wanted = response.get("defaultVariant")
        chosen = [v for v in variants if v.get("name") == wanted] if wanted else variants
        if len(chosen) != 1:
            raise ResolveError(
                f"{op} returned {len(variants)} variants and default variant {wanted!r}, so the model "
                f"is ambiguous; {_mapping_hint(ref)}"
            )
        variant = chosen[0]
        if not variant.get("modelId"):
            agent = variant.get("genAiResource")
            what = "runs an agent, not a model" if agent else "names no model"
            raise ResolveError(f"prompt variant {variant.get('name')!r} {what}; {_mapping_hint(ref)}")
        target = self._parse_target(variant.get("modelId"), op, "variants[].modelId")
        return wrapped("prompt", resolve_hop(target, chain), "control_plane")
