"""Parse every identifier form Bedrock's ``modelId`` accepts into a :class:`ModelRef`.

This module is pure: no network and no boto3/botocore import, because it runs on every call before anything
else. Results are memoised per distinct string, so the steady-state cost is one dict lookup.

Accepted forms (see ``reference/bedrock-wire.md`` §5):

* base foundation-model ids ``provider.model[-vN][:M][:NNNk]`` (a suffix is optional);
* cross-Region profile ids ``{geo}.{base id}`` with geo ``us``, ``eu``, ``apac``, ``jp``, ``au``, ``in``
  (India: ap-south-1, ap-south-2), ``us-gov``, ``ca`` or ``global``;
* ARNs of foundation models, system and application inference profiles, provisioned models, custom models,
  custom-model deployments, imported models, prompts (``prompt/ID[:version]``), prompt routers, and SageMaker
  endpoints (Bedrock Marketplace);
* any of the above percent-encoded once, as it appears in a request path.

Anything else raises :class:`~bedrock_budget.errors.InvalidModelIdError`. Only lowercase base ids are accepted
because Bedrock only issues lowercase ones; accepting ``Anthropic.Claude…`` would quietly create a price-table
miss instead of an early, explicit error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from bedrock_budget.errors import InvalidModelIdError

__all__ = [
    "GEO_PREFIXES",
    "MAX_MODEL_ID_LENGTH",
    "Kind",
    "ModelRef",
    "Route",
    "parse_model_id",
    "strip_version",
]

Route = Literal["in_region", "geo", "global"]
Kind = Literal[
    "foundation_model",
    "inference_profile",
    "application_inference_profile",
    "provisioned_model",
    "custom_model",
    "custom_model_deployment",
    "imported_model",
    "prompt",
    "prompt_router",
    "sagemaker_endpoint",
]

MAX_MODEL_ID_LENGTH: Final = 2048

#: Cross-Region inference prefixes. An explicit list rather than a pattern: a pattern such as "two to four
#: letters" would also match provider names (``meta``, ``qwen``) and turn a three-part base id into a bogus
#: profile. An unknown future prefix therefore parses as an unknown base id, which the price table reports
#: loudly, instead of being priced as something it is not.
GEO_PREFIXES: Final = frozenset({"us", "eu", "apac", "jp", "au", "in", "us-gov", "ca", "global"})

_CACHE_SIZE: Final = 4096

# Mirrors the FoundationModelArn pattern of the botocore bedrock model: two to four dot-separated lowercase
# segments, then at most two ``:``-suffixes (version, context length).
_SEG = r"[a-z0-9-]{1,63}"
_BASE_ID_RE: Final = re.compile(rf"{_SEG}\.{_SEG}(?:\.{_SEG}){{0,2}}(?::{_SEG}){{0,2}}")
_VERSION_SUFFIX_RE: Final = re.compile(r"(?::[0-9]+k?)+\Z")
_PERCENT_RE: Final = re.compile(r"%([0-9A-Fa-f]{2})")
_ALLOWED_RE: Final = re.compile(r"[A-Za-z0-9._:/-]+")

_PARTITION_RE: Final = re.compile(r"aws(?:-[a-z]+){0,2}")
_REGION_RE: Final = re.compile(r"[a-z]{2}(?:-[a-z0-9]+){1,3}")
_ACCOUNT_RE: Final = re.compile(r"[0-9]{12}")
_ID12_RE: Final = re.compile(r"[a-z0-9]{12}")
# Profile and router ids: letters, digits, '-', with '.'/':' only as separators (so no '..', no trailing '.').
_PROFILE_ID_RE: Final = re.compile(r"[A-Za-z0-9-]+(?:[.:][A-Za-z0-9-]+)*")
_CUSTOM_NAME_RE: Final = re.compile(r"[0-9A-Za-z](?:[_-]?[0-9A-Za-z]){0,62}")
_PROMPT_RE: Final = re.compile(r"(?P<id>[0-9A-Za-z]{10})(?::(?P<version>[0-9]{1,5}))?")
_ENDPOINT_RE: Final = re.compile(r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,62}")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """What a model identifier says on its face, before any control-plane lookup.

    ``route`` is only meaningful when ``base_id`` is known: for ids that hide the model it is a placeholder
    ``"in_region"`` that the resolver replaces.
    """

    raw: str
    kind: Kind
    base_id: str | None
    route: Route
    geo: str | None
    region: str | None
    account: str | None
    partition: str | None
    resource_id: str | None
    #: The identifier after percent-decoding: equal ids in encoded and plain form share one canonical form.
    canonical: str = ""
    #: Prompt version from ``prompt/ID:N``; ``None`` means the draft.
    version: str | None = None

    @property
    def needs_control_plane(self) -> bool:
        """True when the foundation model is not visible in the identifier itself (application inference
        profiles, provisioned models, custom models without a base in the ARN, deployments, imported models,
        prompts, prompt routers). SageMaker endpoints are False: they have no Bedrock model to reveal."""
        return self.base_id is None and self.kind != "sagemaker_endpoint"

    @property
    def is_arn(self) -> bool:
        return self.partition is not None


def parse_model_id(model_id: str) -> ModelRef:
    """Parse ``model_id`` (any form Bedrock accepts, optionally percent-encoded once).

    Raises :class:`InvalidModelIdError` for empty, over-long (> 2048 characters) or malformed identifiers.
    """
    if not isinstance(model_id, str):
        raise InvalidModelIdError(repr(model_id)[:80], f"must be a str, not {type(model_id).__name__}")
    return _parse_cached(model_id)


def strip_version(base_id: str) -> str:
    """Return the price-lookup fallback key of a base foundation-model id.

    Rule: drop every trailing ``:``-segment that is a number (``:0``, ``:2``, ``:512``) or a number
    followed by ``k`` (a context-length variant such as ``:200k``). Nothing else changes; in particular
    ``-vN`` stays, because ``-v1`` and ``-v2`` are different models with different prices, whereas ``:N``
    revisions and context variants are the same model. A geo prefix is not removed: pass
    ``ModelRef.base_id``.

    >>> strip_version("anthropic.claude-3-haiku-20240307-v1:0:200k")
    'anthropic.claude-3-haiku-20240307-v1'
    >>> strip_version("anthropic.claude-sonnet-4-6")
    'anthropic.claude-sonnet-4-6'
    """
    return _strip_version_cached(base_id)


@lru_cache(maxsize=_CACHE_SIZE)
def _strip_version_cached(base_id: str) -> str:
    return _VERSION_SUFFIX_RE.sub("", base_id)


@lru_cache(maxsize=_CACHE_SIZE)
def _parse_cached(raw: str) -> ModelRef:
    if not raw:
        raise InvalidModelIdError(raw, "is empty")
    if len(raw) > MAX_MODEL_ID_LENGTH:
        # The error message repeats the id; keep it bounded so a hostile value cannot flood the logs.
        raise InvalidModelIdError(
            raw[:64] + "…", f"is {len(raw)} characters long; the limit is {MAX_MODEL_ID_LENGTH}"
        )
    text = _percent_decode(raw)
    if not _ALLOWED_RE.fullmatch(text):
        raise InvalidModelIdError(
            raw,
            "contains characters no Bedrock model id has (allowed: letters, digits, '.', '-', '_', ':', '/')",
        )
    if text.startswith("arn:"):
        return _parse_arn(raw, text)
    return _parse_plain(raw, text)


def _percent_decode(raw: str) -> str:
    if "%" not in raw:
        return raw
    if raw.count("%") != len(_PERCENT_RE.findall(raw)):
        raise InvalidModelIdError(raw, "has a '%' that is not a valid percent-escape")
    # Non-ASCII bytes become non-ASCII characters here and are rejected by the character check, and a
    # remaining '%' (double encoding) is rejected the same way: decoding happens exactly once.
    return _PERCENT_RE.sub(lambda m: chr(int(m.group(1), 16)), raw)


def _split_geo(text: str) -> tuple[str | None, str]:
    """Split ``{geo}.{base}`` when ``geo`` is a known prefix and what follows is itself ``provider.model``."""
    head, sep, rest = text.partition(".")
    if sep and head in GEO_PREFIXES and _BASE_ID_RE.fullmatch(rest):
        return head, rest
    return None, text


def _route_of(geo: str | None) -> Route:
    if geo is None:
        return "in_region"
    return "global" if geo == "global" else "geo"


def _parse_plain(raw: str, text: str) -> ModelRef:
    geo, base = _split_geo(text)
    if geo is not None:
        return ModelRef(
            raw=raw,
            kind="inference_profile",
            base_id=base,
            route=_route_of(geo),
            geo=geo,
            region=None,
            account=None,
            partition=None,
            resource_id=None,
            canonical=text,
        )
    if _BASE_ID_RE.fullmatch(text):
        return ModelRef(
            raw=raw,
            kind="foundation_model",
            base_id=text,
            route="in_region",
            geo=None,
            region=None,
            account=None,
            partition=None,
            resource_id=None,
            canonical=text,
        )
    if "." not in text:
        reason = (
            "is not a model id: expected 'provider.model' (e.g. 'anthropic.claude-3-5-haiku-20241022-v1:0'), "
            "a cross-Region profile id such as 'us.provider.model', or a full ARN (application inference "
            "profiles, provisioned and imported models must be passed as ARNs)"
        )
    else:
        reason = (
            "is not 'provider.model[-vN][:M]': each dot-separated part must be 1-63 lowercase letters, "
            "digits or '-', with at most two ':' suffixes"
        )
    raise InvalidModelIdError(raw, reason)


@dataclass(frozen=True, slots=True)
class _Arn:
    raw: str
    text: str
    partition: str
    region: str
    account: str | None

    def ref(
        self,
        kind: Kind,
        resource_id: str,
        *,
        base_id: str | None = None,
        geo: str | None = None,
        version: str | None = None,
    ) -> ModelRef:
        return ModelRef(
            raw=self.raw,
            kind=kind,
            base_id=base_id,
            route=_route_of(geo),
            geo=geo,
            region=self.region,
            account=self.account,
            partition=self.partition,
            resource_id=resource_id,
            canonical=self.text,
            version=version,
        )


_ID12_KINDS: Final[dict[str, Kind]] = {
    "provisioned-model": "provisioned_model",
    "custom-model-deployment": "custom_model_deployment",
    "imported-model": "imported_model",
}


def _parse_arn(raw: str, text: str) -> ModelRef:
    parts = text.split(":", 5)
    if len(parts) != 6:
        raise InvalidModelIdError(
            raw, "is not an ARN of the form arn:partition:service:region:account:resource"
        )
    _, partition, service, region, account, resource = parts
    if not _PARTITION_RE.fullmatch(partition):
        raise InvalidModelIdError(raw, f"has an unknown ARN partition {partition!r}")
    if service not in ("bedrock", "sagemaker"):
        raise InvalidModelIdError(raw, f"is an ARN of service {service!r}, not bedrock or sagemaker")
    if not _REGION_RE.fullmatch(region):
        raise InvalidModelIdError(raw, f"has an invalid region {region!r}")
    rtype, slash, rid = resource.partition("/")
    if not slash or not rid:
        raise InvalidModelIdError(raw, "has no resource id after the resource type")
    arn = _Arn(raw, text, partition, region, account or None)

    if service == "sagemaker":
        if rtype != "endpoint" or not _ENDPOINT_RE.fullmatch(rid):
            raise InvalidModelIdError(raw, "is a SageMaker ARN but not endpoint/{name}")
        _require_account(raw, account)
        return arn.ref("sagemaker_endpoint", rid)

    if rtype == "foundation-model":
        if account:
            raise InvalidModelIdError(raw, "is a foundation-model ARN with an account id (they have none)")
        geo, _ = _split_geo(rid)
        if geo is not None:
            raise InvalidModelIdError(
                raw, f"puts the cross-Region prefix {geo!r} in a foundation-model ARN; use inference-profile/"
            )
        if not _BASE_ID_RE.fullmatch(rid):
            raise InvalidModelIdError(raw, f"has an invalid foundation-model id {rid!r}")
        return arn.ref("foundation_model", rid, base_id=rid)

    _require_account(raw, account)
    if rtype == "inference-profile":
        if not _PROFILE_ID_RE.fullmatch(rid):
            raise InvalidModelIdError(raw, f"has an invalid inference-profile id {rid!r}")
        # A system profile id that is not {geo}.{model} leaves the model to the control plane.
        geo, base = _split_geo(rid)
        return arn.ref("inference_profile", rid, base_id=base if geo else None, geo=geo)
    if rtype == "application-inference-profile":
        if not _PROFILE_ID_RE.fullmatch(rid):
            raise InvalidModelIdError(raw, f"has an invalid application-inference-profile id {rid!r}")
        return arn.ref("application_inference_profile", rid)
    if rtype in _ID12_KINDS:
        if not _ID12_RE.fullmatch(rid):
            raise InvalidModelIdError(raw, f"has an invalid {rtype} id {rid!r} (expected 12 of [a-z0-9])")
        return arn.ref(_ID12_KINDS[rtype], rid)
    if rtype == "custom-model":
        return _parse_custom_model(arn, rid)
    if rtype == "prompt":
        m = _PROMPT_RE.fullmatch(rid)
        if m is None:
            raise InvalidModelIdError(
                raw, f"has an invalid prompt id {rid!r} (expected 10 characters[:version])"
            )
        return arn.ref("prompt", m["id"], version=m["version"])
    if rtype in ("prompt-router", "default-prompt-router"):
        if not _PROFILE_ID_RE.fullmatch(rid):
            raise InvalidModelIdError(raw, f"has an invalid prompt-router id {rid!r}")
        return arn.ref("prompt_router", rid)
    raise InvalidModelIdError(raw, f"has resource type {rtype!r}, which cannot be invoked as a model")


def _parse_custom_model(arn: _Arn, rid: str) -> ModelRef:
    # Real ARNs are custom-model/{base fm id | imported}/{12 chars}. The short custom-model/{name} form is
    # accepted too (some tools and emulators produce it); its base is simply unknown until looked up.
    base, slash, own_id = rid.rpartition("/")
    if not slash:
        if not _CUSTOM_NAME_RE.fullmatch(rid):
            raise InvalidModelIdError(arn.raw, f"has an invalid custom-model id {rid!r}")
        return arn.ref("custom_model", rid)
    if not _ID12_RE.fullmatch(own_id):
        raise InvalidModelIdError(
            arn.raw, f"has an invalid custom-model id {own_id!r} (expected 12 of [a-z0-9])"
        )
    if base == "imported":
        return arn.ref("custom_model", own_id)
    if _split_geo(base)[0] is not None or not _BASE_ID_RE.fullmatch(base):
        raise InvalidModelIdError(arn.raw, f"names an invalid base model {base!r} in a custom-model ARN")
    return arn.ref("custom_model", own_id, base_id=base)


def _require_account(raw: str, account: str) -> None:
    if not _ACCOUNT_RE.fullmatch(account):
        raise InvalidModelIdError(raw, f"has an invalid account id {account!r} (expected 12 digits)")
