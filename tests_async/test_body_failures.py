"""An InvokeModel body that fails (or is cancelled) while the async driver reads it: the call is recorded
once, from what is known, and the caller meets the same error. Fast tests on a stand-in client method."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bedrock_budget.pipeline.operations import BILLABLE
from bedrock_budget.wrapper.async_proxy import call
from bedrock_budget.wrapper.configure import build_meter
from conftest import Records

IMAGE_MODEL = "amazon.titan-image-generator-v2:0"
BODY = json.dumps(
    {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a lighthouse"},
        "imageGenerationConfig": {"numberOfImages": 1, "width": 512, "height": 512, "quality": "standard"},
    }
)


class BrokenBody:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def read(self, amt: int | None = None) -> bytes:
        raise self.error


def invoke(error: BaseException) -> Any:
    async def invoke_model(**kwargs: Any) -> dict[str, Any]:
        return {
            "body": BrokenBody(error),
            "contentType": "application/json",
            "ResponseMetadata": {"RequestId": "r-1", "HTTPStatusCode": 200, "HTTPHeaders": {}},
        }

    return invoke_model


def test_body_error_is_the_callers_and_the_call_is_recorded() -> None:
    records = Records()
    meter = build_meter(listeners=[records])
    error = ConnectionResetError("peer went away")

    async def main() -> None:
        response = await call(
            meter,
            BILLABLE["invoke_model"],
            invoke(error),
            {"modelId": IMAGE_MODEL, "body": BODY},
            "us-east-1",
        )
        assert len(records) == 1
        with pytest.raises(ConnectionResetError) as caught:
            await response["body"].read()
        assert caught.value is error

    asyncio.run(main())
    (record,) = records
    assert record.request_id == "r-1"
    assert record.estimated
    assert record.outcome == "ok"


def test_cancelled_while_reading_the_body_is_recorded_once() -> None:
    records = Records()
    meter = build_meter(listeners=[records])

    async def main() -> None:
        with pytest.raises(asyncio.CancelledError):
            await call(
                meter,
                BILLABLE["invoke_model"],
                invoke(asyncio.CancelledError()),
                {"modelId": IMAGE_MODEL, "body": BODY},
                "us-east-1",
            )

    asyncio.run(main())
    (record,) = records
    assert record.request_id == "r-1"
    assert record.estimated
