"""Which bedrock-runtime operations are billable, and how each one is shaped."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    name: str
    # Response key that holds an EventStream, for streaming operations.
    stream_key: str | None = None
    # False for operations that do not name a model (ApplyGuardrail).
    has_model: bool = True


BILLABLE: dict[str, Operation] = {
    op.method: op
    for op in (
        Operation("converse", "Converse"),
        Operation("converse_stream", "ConverseStream", stream_key="stream"),
        Operation("invoke_model", "InvokeModel"),
        Operation("invoke_model_with_response_stream", "InvokeModelWithResponseStream", stream_key="body"),
        Operation("apply_guardrail", "ApplyGuardrail", has_model=False),
        Operation("start_async_invoke", "StartAsyncInvoke"),
    )
}
