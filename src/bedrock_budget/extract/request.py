"""Read what a request says about its price before it is sent: limits, tiers, media, cache points.

Only sizes and counts leave this module; the text itself is measured and dropped. A request Bedrock would
reject (bad JSON, wrong types) still yields a :class:`RequestInfo` with whatever is knowable: refusing it
is Bedrock's job, and raising here would break the caller's call on its behalf.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from bedrock_budget.extract.content import Measure, measure
from bedrock_budget.extract.families import kind_of
from bedrock_budget.extract.types import RequestInfo, canonical_operation
from bedrock_budget.extract.values import as_count, as_mapping, as_text, dig

__all__ = ["inspect_request", "max_token_paths"]

_Path = tuple[str, ...]

# Where each family's native body puts its output-token cap, in order of preference.
_MAX_TOKEN_PATHS: Final[dict[str, tuple[_Path, ...]]] = {
    "anthropic": (("max_tokens",), ("max_tokens_to_sample",)),
    # Nova 2 documents maxTokens; the first Nova release documented max_new_tokens.
    "nova": (("inferenceConfig", "maxTokens"), ("inferenceConfig", "max_new_tokens")),
    "titan_text": (("textGenerationConfig", "maxTokenCount"),),
    "llama": (("max_gen_len",),),
    "mistral": (("max_tokens",),),
    "mistral_chat": (("max_tokens",),),
    "cohere_text": (("max_tokens",),),
    "cohere_chat": (("max_tokens",),),
    "jamba": (("max_tokens",),),
    "jurassic": (("maxTokens",),),
    "deepseek": (("max_tokens",),),
    "openai_chat": (("max_completion_tokens",), ("max_tokens",)),
}


def max_token_paths(family: str) -> tuple[tuple[str, ...], ...]:
    """Where a family's native InvokeModel body puts its output-token cap, preferred first; ``()`` when
    the family has none (embeddings, images) or is not known."""
    return _MAX_TOKEN_PATHS.get(family, ())


_ANY_MAX_TOKEN_PATH: Final = tuple(dict.fromkeys(p for paths in _MAX_TOKEN_PATHS.values() for p in paths))
# Claude's extended thinking (3.7 used reasoning_config during its preview).
_THINKING_PATHS: Final[tuple[_Path, ...]] = (
    ("thinking", "budget_tokens"),
    ("reasoning_config", "budget_tokens"),
)

# Top-level settings of native bodies: sampling, formats, limits. Not text the model reads.
_CONFIG_KEYS: Final = frozenset(
    {
        "anthropic_version",
        "anthropic_beta",
        "api_version",
        "aspect_ratio",
        "cfg_scale",
        "dimensions",
        "embeddingConfig",
        "embeddingTypes",
        "embedding_types",
        "frequency_penalty",
        "imageGenerationConfig",
        "inferenceConfig",
        "input_type",
        "max_completion_tokens",
        "max_gen_len",
        "max_tokens",
        "max_tokens_to_sample",
        "maxTokens",
        "mode",
        "model",
        "n",
        "normalize",
        "output_dimension",
        "output_format",
        "presence_penalty",
        "reasoning_config",
        "reasoning_effort",
        "return_documents",
        "schemaVersion",
        "seed",
        "steps",
        "stop",
        "stopSequences",
        "stop_sequences",
        "stream",
        "stream_options",
        "taskType",
        "temperature",
        "textGenerationConfig",
        "thinking",
        "topK",
        "topP",
        "top_k",
        "top_n",
        "top_p",
        "truncate",
        "videoGenerationConfig",
    }
)

_MULTI_SHOT_SECONDS: Final = 6  # Nova Reel manual multi-shot: every shot is six seconds.
_DEFAULT_VIDEO_SECONDS: Final = 6  # Nova Reel TEXT_VIDEO when durationSeconds is omitted.


def _first_count(body: Mapping[str, Any], paths: tuple[_Path, ...]) -> int | None:
    for path in paths:
        found = as_count(dig(body, *path))
        if found is not None:
            return found
    return None


def _read_file_like(kwargs: dict[str, Any]) -> object:
    """Replace a file-like ``body`` with its bytes, so reading it here does not consume the caller's call."""
    body = kwargs.get("body")
    if body is None or isinstance(body, bytes | bytearray | memoryview | str):
        return body
    read = getattr(body, "read", None)
    if not callable(read):
        return body
    try:
        data = read()
    except Exception as exc:  # the caller's own file failed: let their call see the same error
        kwargs["body"] = _FailedReader(exc)
        return None
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, bytes | bytearray | memoryview):
        return None
    kwargs["body"] = bytes(data)
    return kwargs["body"]


class _FailedReader:
    """Stands in for a file whose read failed; botocore reading it raises the original error."""

    def __init__(self, error: BaseException) -> None:
        self._error = error

    def read(self, *_: object) -> bytes:
        raise self._error


def _parse_json(raw: object) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    if isinstance(raw, memoryview):
        raw = raw.tobytes()
    if not isinstance(raw, bytes | bytearray | str):
        return None
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _measure_body(body: Mapping[str, Any]) -> Measure:
    found = Measure()
    for key, value in body.items():
        if key not in _CONFIG_KEYS:
            measure({key: value}, found)
    return found


def _image_request(family: str, body: Mapping[str, Any]) -> tuple[int, str | None, str | None]:
    """Number of images asked for, ``WIDTHxHEIGHT`` and quality, when the body says."""
    if family == "stability":
        if "text_prompts" in body:  # legacy SDXL
            count = as_count(body.get("samples"))
            return (1 if count is None else count), _size(body), None
        return 1, None, None
    config = as_mapping(body.get("imageGenerationConfig")) or {}
    if body.get("taskType") == "BACKGROUND_REMOVAL":
        return 1, None, None
    count = as_count(config.get("numberOfImages"))
    quality = config.get("quality")
    return (1 if count is None else count), _size(config), quality if isinstance(quality, str) else None


def _size(config: Mapping[str, Any]) -> str | None:
    width, height = as_count(config.get("width")), as_count(config.get("height"))
    return f"{width}x{height}" if width and height else None


def _video_seconds(model_input: Mapping[str, Any]) -> int:
    seconds = as_count(dig(model_input, "videoGenerationConfig", "durationSeconds"))
    if seconds is not None:
        return seconds
    shots = dig(model_input, "multiShotManualParams", "shots")
    if isinstance(shots, list):
        return _MULTI_SHOT_SECONDS * len(shots)
    return _DEFAULT_VIDEO_SECONDS if model_input.get("taskType", "TEXT_VIDEO") == "TEXT_VIDEO" else 0


def _embedding_texts(family: str, body: Mapping[str, Any]) -> int:
    if family == "titan_embed":
        return 1 if isinstance(body.get("inputText"), str) else 0
    for key in ("texts", "inputs"):
        items = body.get(key)
        if isinstance(items, list):
            return len(items)
    return 0


def _native(operation: str, family: str, body: Mapping[str, Any] | None, **extra: Any) -> RequestInfo:
    """RequestInfo for a model-native body (InvokeModel, its stream, CountTokens, StartAsyncInvoke)."""
    if body is None:
        return RequestInfo(operation, family, **extra)
    found = _measure_body(body)
    kind = kind_of(family)
    output_images, image_size, image_quality = (
        _image_request(family, body) if kind == "image" else (0, None, None)
    )
    documents = body.get("documents") if kind == "rerank" else None
    return RequestInfo(
        operation,
        family,
        max_output_tokens=_first_count(body, _MAX_TOKEN_PATHS.get(family, _ANY_MAX_TOKEN_PATH)),
        thinking_budget_tokens=_first_count(body, _THINKING_PATHS),
        input_bytes=found.text_bytes,
        images=found.images,
        document_bytes=found.document_bytes,
        cache_ttl=found.cache_ttl,
        output_images=output_images,
        image_size=image_size,
        image_quality=image_quality,
        video_seconds=_video_seconds(body) if kind == "video" else 0,
        embedding_texts=_embedding_texts(family, body) if kind == "embedding" else 0,
        rerank_documents=len(documents) if isinstance(documents, list) else 0,
        template_parts=found.parts,
        tools=found.tools,
        provider_tools=found.provider_tools,
        videos=found.videos,
        **extra,
    )


def _invoke(operation: str, family: str, kwargs: dict[str, Any]) -> RequestInfo:
    body = _parse_json(_read_file_like(kwargs))
    return _native(
        operation,
        family,
        body,
        service_tier=as_text(kwargs.get("serviceTier")),
        latency=as_text(kwargs.get("performanceConfigLatency")),
        guardrail=kwargs.get("guardrailIdentifier") is not None,
    )


def _converse_measure(kwargs: Mapping[str, Any]) -> Measure:
    found = Measure()
    measure(kwargs.get("messages"), found)
    # System text, tool specs and prompt variables are read by the model too, but never carry images.
    images = found.images
    measure(kwargs.get("system"), found)
    tools = dig(kwargs, "toolConfig", "tools")
    if tools is not None:
        measure({"tools": tools}, found)
    measure(kwargs.get("promptVariables"), found)
    found.images = images
    return found


def _converse(operation: str, family: str, kwargs: dict[str, Any]) -> RequestInfo:
    found = _converse_measure(kwargs)
    extra = as_mapping(kwargs.get("additionalModelRequestFields")) or {}
    max_tokens = as_count(dig(kwargs, "inferenceConfig", "maxTokens"))
    if max_tokens is None:
        max_tokens = _first_count(extra, _MAX_TOKEN_PATHS.get(family, ()))
    return RequestInfo(
        operation,
        family,
        max_output_tokens=max_tokens,
        thinking_budget_tokens=_first_count(extra, _THINKING_PATHS),
        input_bytes=found.text_bytes,
        images=found.images,
        document_bytes=found.document_bytes,
        cache_ttl=found.cache_ttl,
        service_tier=as_text(dig(kwargs, "serviceTier", "type")),
        latency=as_text(dig(kwargs, "performanceConfig", "latency")),
        guardrail=as_mapping(kwargs.get("guardrailConfig")) is not None,
        template_parts=found.parts,
        tools=found.tools,
        provider_tools=found.provider_tools,
        videos=found.videos,
    )


def _apply_guardrail(operation: str, family: str, kwargs: dict[str, Any]) -> RequestInfo:
    found = measure(kwargs.get("content"), Measure())
    return RequestInfo(operation, family, input_bytes=found.text_bytes, images=found.images, guardrail=True)


def _guardrail_checks(operation: str, family: str, kwargs: dict[str, Any]) -> RequestInfo:
    found = measure(kwargs.get("messages"), Measure())
    return RequestInfo(operation, family, input_bytes=found.text_bytes, guardrail=True)


def _count_tokens(operation: str, family: str, kwargs: dict[str, Any]) -> RequestInfo:
    converse = as_mapping(dig(kwargs, "input", "converse"))
    if converse is not None:
        return _converse(operation, family, dict(converse))
    return _native(operation, family, _parse_json(dig(kwargs, "input", "invokeModel", "body")))


def _start_async(operation: str, family: str, kwargs: dict[str, Any]) -> RequestInfo:
    return _native(operation, family, as_mapping(kwargs.get("modelInput")))


_INSPECTORS: Final[dict[str, Callable[[str, str, dict[str, Any]], RequestInfo]]] = {
    "Converse": _converse,
    "ConverseStream": _converse,
    "InvokeModel": _invoke,
    "InvokeModelWithResponseStream": _invoke,
    "ApplyGuardrail": _apply_guardrail,
    "InvokeGuardrailChecks": _guardrail_checks,
    "CountTokens": _count_tokens,
    "StartAsyncInvoke": _start_async,
}


def inspect_request(operation: str, family: str, kwargs: dict[str, Any]) -> RequestInfo:
    """What ``kwargs`` (the boto3 call's keyword arguments) say about the call's price.

    ``operation`` is the botocore operation name (``"InvokeModel"``) or the boto3 method name. A file-like
    ``kwargs["body"]`` is read and replaced by its bytes, so the caller's call still sends the same bytes.
    """
    op = canonical_operation(operation)
    inspector = _INSPECTORS.get(op)
    if inspector is None:
        return RequestInfo(op, family)
    try:
        return inspector(op, family, kwargs)
    except Exception:
        # Malformed input the checks above did not foresee: the estimate degrades, the call goes on.
        return RequestInfo(op, family)
