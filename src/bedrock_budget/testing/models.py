"""Model identifiers: from whatever the caller put in ``modelId`` to a base model and its family.

Accepted forms: base ids, geo/global cross-Region profile ids (``us.``, ``eu.``, ``apac.``, ``jp.``,
``au.``, ``in.``, ``us-gov.``, ``global.``), foundation-model and inference-profile ARNs (the model is in the
ARN), and identifiers that hide the model (application inference profiles, provisioned, imported and
custom-deployment models), which resolve through the directory the test fills in.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from .errors import BedrockError
from .families import Family, family_for

__all__ = [
    "ACCOUNT_ID",
    "GEO_PREFIXES",
    "ModelDirectory",
    "ProvisionedModel",
    "ResolvedModel",
    "strip_geo",
]

ACCOUNT_ID: Final = "123456789012"
GEO_PREFIXES: Final = ("us-gov", "us", "eu", "apac", "jp", "au", "in", "global")

# Destination Regions reported for system-defined profiles; indicative, not authoritative.
_GEO_REGIONS: Final[dict[str, tuple[str, ...]]] = {
    "us": ("us-east-1", "us-east-2", "us-west-2"),
    "us-gov": ("us-gov-west-1", "us-gov-east-1"),
    "eu": ("eu-central-1", "eu-west-1", "eu-west-3", "eu-north-1"),
    "apac": ("ap-northeast-1", "ap-southeast-1", "ap-southeast-2", "ap-south-1"),
    "jp": ("ap-northeast-1", "ap-northeast-3"),
    "au": ("ap-southeast-2", "ap-southeast-4"),
    "in": ("ap-south-1", "ap-south-2"),
    "global": ("us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"),
}

_ID_CHARS: Final = re.compile(r"[A-Za-z0-9._:/\-]+")
_INVALID_ID: Final = "The provided model identifier is invalid."
# ARN resource types whose model cannot be read from the ARN itself.
_OPAQUE_TYPES: Final = frozenset(
    {
        "application-inference-profile",
        "provisioned-model",
        "imported-model",
        "custom-model-deployment",
        "custom-model",
    }
)


def strip_geo(model_id: str) -> tuple[str | None, str]:
    """``us.anthropic.x`` → ``("us", "anthropic.x")``; ids without a geo prefix come back unchanged."""
    head, sep, rest = model_id.partition(".")
    if sep and head in GEO_PREFIXES and "." in rest:
        return head, rest
    return None, model_id


def _partition_for(region: str) -> str:
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    requested: str
    base_model_id: str
    family: Family
    geo: str | None


@dataclass(frozen=True, slots=True)
class _ApplicationProfile:
    profile_id: str
    arn: str
    name: str
    model_id: str
    regions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProvisionedModel:
    name: str
    arn: str
    model_id: str
    model_units: int
    commitment_duration: str | None


@dataclass
class ModelDirectory:
    """Identifiers that hide their model, registered per test. Thread-safe."""

    region: str = "us-east-1"
    _aliases: dict[str, str] = field(default_factory=dict)
    _profiles: dict[str, _ApplicationProfile] = field(default_factory=dict)
    _provisioned: dict[str, ProvisionedModel] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _created: datetime = field(default_factory=lambda: datetime(2025, 1, 1, tzinfo=UTC))

    def clear(self) -> None:
        with self._lock:
            self._aliases.clear()
            self._profiles.clear()
            self._provisioned.clear()

    def _short_id(self, kind: str, seed: str) -> str:
        counter = len(self._aliases)
        return hashlib.sha256(f"{kind}:{seed}:{counter}".encode()).hexdigest()[:12]

    def _arn(self, resource: str) -> str:
        return f"arn:{_partition_for(self.region)}:bedrock:{self.region}:{ACCOUNT_ID}:{resource}"

    def map_model(self, identifier: str, model_id: str) -> None:
        with self._lock:
            self._aliases[identifier] = model_id

    def add_application_profile(
        self, model_id: str, name: str | None, regions: tuple[str, ...] | None
    ) -> str:
        with self._lock:
            profile_id = self._short_id("application-inference-profile", model_id)
            arn = self._arn(f"application-inference-profile/{profile_id}")
            geo, _ = strip_geo(model_id)
            chosen = regions or (_GEO_REGIONS[geo] if geo else (self.region,))
            profile = _ApplicationProfile(profile_id, arn, name or f"profile-{profile_id}", model_id, chosen)
            self._profiles[arn] = profile
            self._profiles[profile_id] = profile
            self._aliases[arn] = model_id
            return arn

    def add_provisioned(
        self, model_id: str, name: str | None, model_units: int, commitment_duration: str | None
    ) -> str:
        with self._lock:
            short = self._short_id("provisioned-model", model_id)
            arn = self._arn(f"provisioned-model/{short}")
            record = ProvisionedModel(
                name or f"provisioned-{short}", arn, model_id, model_units, commitment_duration
            )
            self._provisioned[arn] = record
            self._provisioned[record.name] = record
            self._aliases[arn] = model_id
            return arn

    def _alias(self, identifier: str) -> str | None:
        with self._lock:
            return self._aliases.get(identifier)

    def resolve(self, requested: str) -> ResolvedModel:
        """Resolve ``requested`` or raise the error Bedrock would answer with."""
        current = requested
        for _ in range(4):  # aliases may point at profile ids or ARNs, but never loop forever
            target = self._alias(current)
            if target is None:
                break
            current = target
        if not current or len(current) > 2048 or not _ID_CHARS.fullmatch(current):
            raise BedrockError("ValidationException", _INVALID_ID)
        if current.startswith("arn:"):
            current = self._model_from_arn(current)
        geo, base = strip_geo(current)
        family = family_for(base)
        if family is None:
            raise BedrockError("ValidationException", _INVALID_ID)
        return ResolvedModel(requested=requested, base_model_id=base, family=family, geo=geo)

    def _model_from_arn(self, arn: str) -> str:
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[2] != "bedrock" or "/" not in parts[5]:
            raise BedrockError("ValidationException", _INVALID_ID)
        resource_type, _, rest = parts[5].partition("/")
        if resource_type == "foundation-model":
            return rest
        if resource_type == "inference-profile":
            return rest
        if resource_type == "custom-model" and "/" in rest:
            # custom-model/{base model}/{id}: the base model names the family.
            return rest.split("/", 1)[0]
        if resource_type in _OPAQUE_TYPES:
            raise BedrockError(
                "ResourceNotFoundException",
                f"The {resource_type} in the model identifier was not found. Check the ARN and try again.",
            )
        raise BedrockError("ValidationException", _INVALID_ID)

    # --- control plane -------------------------------------------------------------------------

    def _fm_arn(self, base_model_id: str, region: str) -> str:
        return f"arn:{_partition_for(region)}:bedrock:{region}::foundation-model/{base_model_id}"

    def inference_profile(self, identifier: str) -> dict[str, Any]:
        """The GetInferenceProfile response for an application or system-defined profile."""
        with self._lock:
            profile = self._profiles.get(identifier)
        if profile is not None:
            resolved = self.resolve(profile.model_id)
            return {
                "inferenceProfileName": profile.name,
                "inferenceProfileArn": profile.arn,
                "inferenceProfileId": profile.profile_id,
                "models": [{"modelArn": self._fm_arn(resolved.base_model_id, r)} for r in profile.regions],
                "status": "ACTIVE",
                "type": "APPLICATION",
                "createdAt": _iso(self._created),
                "updatedAt": _iso(self._created),
            }
        profile_id = identifier
        if identifier.startswith("arn:"):
            parts = identifier.split(":", 5)
            if len(parts) != 6 or not parts[5].startswith("inference-profile/"):
                raise BedrockError("ResourceNotFoundException", "The inference profile was not found.")
            profile_id = parts[5].partition("/")[2]
        geo, base = strip_geo(profile_id)
        if geo is None or family_for(base) is None:
            raise BedrockError("ResourceNotFoundException", "The inference profile was not found.")
        return {
            "inferenceProfileName": f"{geo.upper()} {base}",
            "inferenceProfileArn": self._arn(f"inference-profile/{profile_id}"),
            "inferenceProfileId": profile_id,
            "models": [{"modelArn": self._fm_arn(base, r)} for r in _GEO_REGIONS[geo]],
            "status": "ACTIVE",
            "type": "SYSTEM_DEFINED",
            "createdAt": _iso(self._created),
            "updatedAt": _iso(self._created),
        }

    def provisioned_throughput(self, identifier: str) -> dict[str, Any]:
        """The GetProvisionedModelThroughput response for a registered provisioned model."""
        with self._lock:
            record = self._provisioned.get(identifier)
        if record is None:
            raise BedrockError("ResourceNotFoundException", "The provisioned model was not found.")
        model_arn = self._fm_arn(self.resolve(record.model_id).base_model_id, self.region)
        out: dict[str, Any] = {
            "modelUnits": record.model_units,
            "desiredModelUnits": record.model_units,
            "provisionedModelName": record.name,
            "provisionedModelArn": record.arn,
            "modelArn": model_arn,
            "desiredModelArn": model_arn,
            "foundationModelArn": model_arn,
            "status": "InService",
            "creationTime": _iso(self._created),
            "lastModifiedTime": _iso(self._created),
        }
        if record.commitment_duration:
            out["commitmentDuration"] = record.commitment_duration
            out["commitmentExpirationTime"] = _iso(self._created.replace(year=self._created.year + 1))
        return out
