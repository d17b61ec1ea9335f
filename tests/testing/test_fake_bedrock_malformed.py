"""Malformed requests get Bedrock's error classes: never a hang, never a 500 from the fake."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

import pytest

from bedrock_budget.testing import FakeBedrock

from .fakebedrock_support import CLAUDE, USER_HELLO

CONVERSE_PATH = "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"


def raw_request(
    fake: FakeBedrock, method: str, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(fake.host, fake.port, timeout=5)
    try:
        connection.request(method, path, body, headers or {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"", b"\xff\xfe"])
def test_converse_with_a_bad_json_body(fake: FakeBedrock, body: bytes) -> None:
    status, headers, payload = raw_request(fake, "POST", CONVERSE_PATH, body)
    assert status == 400
    assert headers["x-amzn-errortype"].startswith("ValidationException:")
    assert "message" in json.loads(payload)
    assert fake.requests[-1].error_code == "ValidationException"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'"text"'])
def test_invoke_model_with_a_non_object_body(fake: FakeBedrock, client: Any, body: bytes) -> None:
    with pytest.raises(client.exceptions.ValidationException, match="Malformed input request"):
        client.invoke_model(modelId=CLAUDE, body=body)


@pytest.mark.parametrize(
    ("model_id", "body", "missing"),
    [
        (
            CLAUDE,
            {"anthropic_version": "bedrock-2023-05-31", "messages": [{"role": "user", "content": "x"}]},
            "max_tokens",
        ),
        (CLAUDE, {"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "anthropic_version"),
        ("amazon.nova-lite-v1:0", {"inferenceConfig": {"maxTokens": 5}}, "messages"),
        ("amazon.titan-text-express-v1", {"textGenerationConfig": {}}, "inputText"),
        ("meta.llama3-8b-instruct-v1:0", {"max_gen_len": 5}, "prompt"),
        ("mistral.mistral-7b-instruct-v0:2", {"max_tokens": 5}, "prompt"),
        ("cohere.command-r-v1:0", {"max_tokens": 5}, "message"),
        ("ai21.jamba-1-5-mini-v1:0", {"max_tokens": 5}, "messages"),
        ("openai.gpt-oss-20b-1:0", {"max_tokens": 5}, "messages"),
        ("amazon.titan-embed-text-v2:0", {"dimensions": 256}, "inputText"),
        ("cohere.embed-english-v3", {"input_type": "search_query"}, "texts"),
        ("amazon.titan-image-generator-v1", {"textToImageParams": {"text": "x"}}, "taskType"),
        ("stability.sd3-5-large-v1:0", {"seed": 1}, "prompt"),
    ],
)
def test_missing_required_native_field(
    fake: FakeBedrock, client: Any, model_id: str, body: dict[str, Any], missing: str
) -> None:
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.invoke_model(modelId=model_id, body=json.dumps(body))
    assert f"required key [{missing}] not found" in caught.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "assistant", "content": [{"text": "hi"}]}],
        [{"role": "robot", "content": [{"text": "hi"}]}],
    ],
)
def test_converse_rejects_bad_conversations(fake: FakeBedrock, client: Any, messages: list[Any]) -> None:
    with pytest.raises(client.exceptions.ValidationException):
        client.converse(modelId=CLAUDE, messages=messages)


def test_converse_without_messages(fake: FakeBedrock, client: Any) -> None:
    with pytest.raises(client.exceptions.ValidationException, match="must start with a user message"):
        client.converse(modelId=CLAUDE)


def test_unknown_operation(fake: FakeBedrock) -> None:
    status, headers, _ = raw_request(fake, "POST", "/model/x/invoke-with-bidirectional-stream", b"{}")
    assert status == 404
    assert headers["x-amzn-errortype"].startswith("UnknownOperationException:")
    status, _, _ = raw_request(fake, "DELETE", CONVERSE_PATH, b"")
    assert status == 404


def test_chunked_request_body_is_accepted(fake: FakeBedrock) -> None:
    body = json.dumps({"messages": USER_HELLO}).encode()
    connection = http.client.HTTPConnection(fake.host, fake.port, timeout=5)
    try:
        connection.request("POST", CONVERSE_PATH, iter([body[:10], body[10:]]), encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["usage"]["inputTokens"] == 3
    finally:
        connection.close()


def test_bad_content_length_is_answered_and_the_connection_closed(fake: FakeBedrock) -> None:
    with socket.create_connection((fake.host, fake.port), timeout=5) as sock:
        sock.sendall(f"POST {CONVERSE_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"x-amzn-ErrorType: ValidationException:" in data
    assert b"Connection: close" in data


def test_garbage_request_line_gets_an_answer(fake: FakeBedrock) -> None:
    with socket.create_connection((fake.host, fake.port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01 this is not http\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert b" 400 " in data.split(b"\r\n", 1)[0]
