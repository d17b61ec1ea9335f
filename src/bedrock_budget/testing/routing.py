"""Request path → operation. Labels are matched still percent-encoded (an ARN's ``/`` arrives as
``%2F``) and decoded afterwards."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

__all__ = ["Route", "match_route"]


@dataclass(frozen=True, slots=True)
class Route:
    operation: str
    params: dict[str, str]


_LABEL: Final = r"([^/]+)"
_ROUTES: Final[tuple[tuple[str, re.Pattern[str], str, tuple[str, ...]], ...]] = tuple(
    (method, re.compile(pattern), operation, names)
    for method, pattern, operation, names in (
        ("POST", rf"/model/{_LABEL}/converse", "Converse", ("modelId",)),
        ("POST", rf"/model/{_LABEL}/converse-stream", "ConverseStream", ("modelId",)),
        ("POST", rf"/model/{_LABEL}/invoke", "InvokeModel", ("modelId",)),
        (
            "POST",
            rf"/model/{_LABEL}/invoke-with-response-stream",
            "InvokeModelWithResponseStream",
            ("modelId",),
        ),
        ("POST", rf"/model/{_LABEL}/count-tokens", "CountTokens", ("modelId",)),
        (
            "POST",
            rf"/guardrail/{_LABEL}/version/{_LABEL}/apply",
            "ApplyGuardrail",
            ("guardrailIdentifier", "guardrailVersion"),
        ),
        ("POST", r"/async-invoke", "StartAsyncInvoke", ()),
        ("GET", r"/async-invoke", "ListAsyncInvokes", ()),
        ("GET", rf"/async-invoke/{_LABEL}", "GetAsyncInvoke", ("invocationArn",)),
        # Control plane (service "bedrock"), so ARN-resolving code can run against the same server.
        ("GET", rf"/inference-profiles/{_LABEL}", "GetInferenceProfile", ("inferenceProfileIdentifier",)),
        ("GET", r"/foundation-models", "ListFoundationModels", ()),
        (
            "GET",
            rf"/provisioned-model-throughput/{_LABEL}",
            "GetProvisionedModelThroughput",
            ("provisionedModelId",),
        ),
    )
)


def match_route(method: str, path: str) -> Route | None:
    for route_method, pattern, operation, names in _ROUTES:
        if route_method != method:
            continue
        found = pattern.fullmatch(path)
        if found is not None:
            return Route(
                operation, {name: unquote(value) for name, value in zip(names, found.groups(), strict=True)}
            )
    return None
