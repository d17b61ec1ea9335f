"""The modelled bedrock-runtime errors: HTTP status, default message, and how they go on the wire."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ERRORS",
    "STREAM_EXCEPTIONS",
    "BedrockError",
    "ErrorInfo",
    "canonical_error_code",
    "stream_error_body",
    "stream_member_name",
]


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    status: int
    message: str


# Status codes from the botocore 1.44 service model; messages are the ones Bedrock sends where known.
ERRORS: Final[Mapping[str, ErrorInfo]] = {
    "AccessDeniedException": ErrorInfo(
        403, "You don't have access to the model with the specified model ID."
    ),
    "ValidationException": ErrorInfo(400, "The request failed validation."),
    "ServiceQuotaExceededException": ErrorInfo(
        400, "Your request exceeds the service quota for your account. Try again later."
    ),
    "ThrottlingException": ErrorInfo(429, "Too many requests, please wait before trying again."),
    "ModelNotReadyException": ErrorInfo(
        429, "Model is not ready for inference. Wait and try your request again."
    ),
    "ModelTimeoutException": ErrorInfo(
        408, "Model has timed out in processing the request. Try your request again."
    ),
    "ModelErrorException": ErrorInfo(424, "The model returned an error while processing the request."),
    "ModelStreamErrorException": ErrorInfo(424, "The model stream returned an error."),
    "ResourceNotFoundException": ErrorInfo(404, "The specified resource was not found."),
    "ConflictException": ErrorInfo(400, "The request conflicts with an existing request."),
    "InternalServerException": ErrorInfo(500, "The server encountered an internal error."),
    "ServiceUnavailableException": ErrorInfo(503, "Bedrock is unable to process your request."),
    "UnknownOperationException": ErrorInfo(404, "The requested operation does not exist."),
}

# Members of the ConverseStream / ResponseStream unions; ``modelTimeoutException`` exists only in the
# InvokeModelWithResponseStream union.
STREAM_EXCEPTIONS: Final = frozenset(
    {
        "internalServerException",
        "modelStreamErrorException",
        "validationException",
        "throttlingException",
        "serviceUnavailableException",
        "modelTimeoutException",
    }
)

_ERROR_TYPE_SUFFIX: Final = ":http://internal.amazon.com/coral/com.amazon.bedrock/"


def canonical_error_code(name: str) -> str:
    """``throttlingException`` / ``ThrottlingException`` → ``ThrottlingException``; unknown names raise."""
    code = name[:1].upper() + name[1:]
    if code not in ERRORS:
        raise ValueError(f"unknown Bedrock error {name!r}; known: {', '.join(sorted(ERRORS))}")
    return code


def stream_member_name(name: str) -> str:
    """``ThrottlingException`` / ``throttlingException`` → ``throttlingException`` (the union member)."""
    member = name[:1].lower() + name[1:]
    if member not in STREAM_EXCEPTIONS:
        raise ValueError(f"{name!r} is not a stream exception; known: {', '.join(sorted(STREAM_EXCEPTIONS))}")
    return member


class BedrockError(Exception):
    """Raised inside the server to answer with a modelled error."""

    def __init__(self, code: str, message: str | None = None, **extra: Any) -> None:
        self.code = canonical_error_code(code)
        self.info = ERRORS[self.code]
        self.message = message or self.info.message
        self.extra = extra
        super().__init__(f"{self.code}: {self.message}")

    @property
    def status(self) -> int:
        return self.info.status

    def headers(self) -> list[tuple[str, str]]:
        return [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", self.code + _ERROR_TYPE_SUFFIX),
        ]

    def body(self) -> bytes:
        payload: dict[str, Any] = {"message": self.message}
        payload.update(self.extra)
        return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def stream_error_body(member: str, message: str | None) -> dict[str, Any]:
    """Payload of a mid-stream exception event."""
    code = canonical_error_code(member)
    body: dict[str, Any] = {"message": message or ERRORS[code].message}
    if member == "modelStreamErrorException":
        # botocore keeps only Code and Message of stream exceptions, but Bedrock sends these too.
        body["originalStatusCode"] = 500
        body["originalMessage"] = "The model failed while streaming its response."
    return body
