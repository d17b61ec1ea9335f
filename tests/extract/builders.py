"""Builders for boto3-shaped responses and stream events, as botocore hands them to the caller."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from botocore.response import StreamingBody

from bedrock_budget.extract import RequestInfo, family_of, inspect_request


def streaming_body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


class UntouchableBody:
    """A body that fails the test if anything reads it (header-complete calls must not)."""

    def read(self, *_: object) -> bytes:
        pytest.fail("the response body was read although the headers were sufficient")


def invoke_response(
    body: Mapping[str, Any] | bytes | object | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    **top: Any,
) -> dict[str, Any]:
    """An InvokeModel result as boto3 returns it: modeled top-level keys plus raw lower-case headers."""
    if isinstance(body, Mapping):
        body = streaming_body(json.dumps(body).encode())
    elif isinstance(body, bytes):
        body = streaming_body(body)
    http_headers = {
        "date": "Sat, 22 Nov 2026 10:00:00 GMT",
        "content-type": "application/json",
        "x-amzn-requestid": "5b1c7f0e-3f1a-4a0b-9d57-2f3d8f3c9a11",
        "x-amzn-bedrock-invocation-latency": "812",
        **(headers or {}),
    }
    return {
        "ResponseMetadata": {
            "RequestId": http_headers["x-amzn-requestid"],
            "HTTPStatusCode": 200,
            "HTTPHeaders": http_headers,
            "RetryAttempts": 0,
        },
        "contentType": "application/json",
        "body": body,
        **top,
    }


def token_headers(
    input_tokens: int, output_tokens: int, *, cache_read: int | None = None, cache_write: int | None = None
) -> dict[str, str]:
    headers = {
        "x-amzn-bedrock-input-token-count": str(input_tokens),
        "x-amzn-bedrock-output-token-count": str(output_tokens),
    }
    if cache_read is not None:
        headers["x-amzn-bedrock-cache-read-input-token-count"] = str(cache_read)
    if cache_write is not None:
        headers["x-amzn-bedrock-cache-write-input-token-count"] = str(cache_write)
    return headers


def chunk(payload: Mapping[str, Any]) -> dict[str, Any]:
    """One InvokeModelWithResponseStream event: botocore has already base64-decoded ``bytes``."""
    return {"chunk": {"bytes": json.dumps(payload).encode()}}


def chunks(*payloads: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    return (chunk(p) for p in payloads)


def invoke_request(model_id: str, body: Mapping[str, Any], **kwargs: Any) -> RequestInfo:
    call = {"modelId": model_id, "body": json.dumps(body).encode(), **kwargs}
    return inspect_request("InvokeModel", family_of(model_id), call)


def converse_request(model_id: str, **kwargs: Any) -> RequestInfo:
    call: dict[str, Any] = {"modelId": model_id, **kwargs}
    return inspect_request("Converse", family_of(model_id), call)
