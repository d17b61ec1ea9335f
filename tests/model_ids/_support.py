"""Helpers for the model-id and resolver tests: ARN builders, real boto3 clients, a fake clock, and a small
loopback server answering the ``bedrock`` / ``bedrock-agent`` REST-JSON operations the resolver uses, with
bodies in the shapes of the botocore service models."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from botocore.config import Config

ACCOUNT = "123456789012"
HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"


def fm_arn(model: str, region: str = "us-east-1", partition: str = "aws") -> str:
    return f"arn:{partition}:bedrock:{region}::foundation-model/{model}"


def arn(resource: str, region: str = "us-east-1") -> str:
    return f"arn:aws:bedrock:{region}:{ACCOUNT}:{resource}"


def client_config() -> Config:
    # One attempt and short timeouts: failures are the point of several tests and must be fast.
    return Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)


def make_client(service: str, region: str = "us-east-1", endpoint_url: str | None = None) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=client_config(),
    )


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- loopback control plane ------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    error_type: str | None = None


@dataclass
class Seen:
    raw_path: str
    path: str
    query: dict[str, list[str]]


@dataclass
class FakeControlPlane:
    """Routes are keyed by the decoded request path, e.g. ``/inference-profiles/arn:aws:...``."""

    url: str = ""
    delay: float = 0.0
    routes: dict[str, Reply] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, path: str, body: dict[str, Any]) -> None:
        self.routes[path] = Reply(200, body)

    def error(self, path: str, status: int, error_type: str, message: str) -> None:
        self.routes[path] = Reply(status, {"message": message}, error_type)

    def hits(self, path: str) -> int:
        with self.lock:
            return sum(1 for seen in self.requests if seen.path == path)


def _handler(plane: FakeControlPlane) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            # Path labels arrive percent-encoded (':' and '/' inside an ARN label); decode once, as AWS does.
            path = unquote(parts.path)
            with plane.lock:
                plane.requests.append(Seen(parts.path, path, parse_qs(parts.query)))
            if plane.delay:
                time.sleep(plane.delay)
            reply = plane.routes.get(path) or Reply(
                404, {"message": f"no such resource {path}"}, "ResourceNotFoundException"
            )
            payload = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
            if reply.error_type:
                self.send_header("x-amzn-ErrorType", f"{reply.error_type}:http://internal.amazon.com/")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve_control_plane() -> Iterator[FakeControlPlane]:
    plane = FakeControlPlane()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(plane))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    plane.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield plane
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- response bodies in the shapes of the botocore service models ----------------------------------------

STAMP = "2024-11-04T10:00:00Z"


def inference_profile_body(
    profile_arn: str, model: str, regions: list[str], kind: str = "APPLICATION"
) -> dict[str, Any]:
    return {
        "inferenceProfileName": "team-chat",
        "inferenceProfileArn": profile_arn,
        "inferenceProfileId": profile_arn.rsplit("/", 1)[-1],
        "models": [{"modelArn": fm_arn(model, region)} for region in regions],
        "status": "ACTIVE",
        "type": kind,
        "createdAt": STAMP,
        "updatedAt": STAMP,
    }


def provisioned_body(
    provisioned_arn: str, foundation_arn: str, model_arn: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "modelUnits": 2,
        "desiredModelUnits": 2,
        "provisionedModelName": "prod-haiku",
        "provisionedModelArn": provisioned_arn,
        "modelArn": model_arn or foundation_arn,
        "desiredModelArn": model_arn or foundation_arn,
        "foundationModelArn": foundation_arn,
        "status": "InService",
        "creationTime": STAMP,
        "lastModifiedTime": STAMP,
    }
    body.update(extra)
    return body


def custom_model_body(
    model_arn: str, base_arn: str | None, customization: str = "FINE_TUNING"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "modelArn": model_arn,
        "modelName": "support-tuned",
        "creationTime": STAMP,
        "customizationType": customization,
        "modelStatus": "Active",
    }
    if base_arn is not None:
        body["baseModelArn"] = base_arn
    return body


def deployment_body(deployment_arn: str, custom_model_arn: str) -> dict[str, Any]:
    return {
        "customModelDeploymentArn": deployment_arn,
        "modelDeploymentName": "support-deployment",
        "modelArn": custom_model_arn,
        "createdAt": STAMP,
        "status": "Active",
    }


def imported_body(imported_arn: str) -> dict[str, Any]:
    return {
        "modelArn": imported_arn,
        "modelName": "my-llama",
        "modelArchitecture": "llama3",
        "creationTime": STAMP,
        "customModelUnits": {"customModelUnitsPerModelCopy": 2, "customModelUnitsVersion": "v1.0"},
    }


def prompt_router_body(router_arn: str, fallback_arn: str, model_arns: list[str]) -> dict[str, Any]:
    return {
        "promptRouterName": "Anthropic Prompt Router",
        "routingCriteria": {"responseQualityDifference": 0.0},
        "promptRouterArn": router_arn,
        "models": [{"modelArn": m} for m in model_arns],
        "fallbackModel": {"modelArn": fallback_arn},
        "status": "AVAILABLE",
        "type": "default",
    }


def prompt_body(prompt_arn: str, variants: list[dict[str, Any]], default: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "summarise",
        "id": prompt_arn.rsplit("/", 1)[-1].split(":")[0],
        "arn": prompt_arn,
        "version": "DRAFT",
        "createdAt": STAMP,
        "updatedAt": STAMP,
        "variants": variants,
    }
    if default is not None:
        body["defaultVariant"] = default
    return body


def text_variant(name: str, model_id: str | None = None, **extra: Any) -> dict[str, Any]:
    variant: dict[str, Any] = {
        "name": name,
        "templateType": "TEXT",
        "templateConfiguration": {"text": {"text": "Summarise {{doc}}"}},
    }
    if model_id is not None:
        variant["modelId"] = model_id
    variant.update(extra)
    return variant
