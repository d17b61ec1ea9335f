"""StartAsyncInvoke / GetAsyncInvoke / ListAsyncInvokes, kept minimal: jobs finish as soon as they are
started, with the status a test chose (``Completed`` unless told otherwise)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from .errors import BedrockError
from .models import ACCOUNT_ID

__all__ = ["AsyncJobs", "AsyncStatus"]

AsyncStatus = Literal["InProgress", "Completed", "Failed"]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class _Job:
    invocation_arn: str
    model_arn: str
    client_request_token: str | None
    status: AsyncStatus
    failure_message: str | None
    submitted: datetime
    output_data_config: Mapping[str, Any]

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "invocationArn": self.invocation_arn,
            "modelArn": self.model_arn,
            "status": self.status,
            "submitTime": _iso(self.submitted),
            "lastModifiedTime": _iso(self.submitted),
            "outputDataConfig": dict(self.output_data_config),
        }
        if self.client_request_token:
            out["clientRequestToken"] = self.client_request_token
        if self.status != "InProgress":
            out["endTime"] = _iso(self.submitted)
        if self.failure_message:
            out["failureMessage"] = self.failure_message
        return out


class AsyncJobs:
    def __init__(self, region: str) -> None:
        self.region = region
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._by_token: dict[str, str] = {}
        self._default_status: AsyncStatus = "Completed"
        self._default_failure: str | None = None

    def clear(self) -> None:
        with self._lock:
            self._jobs.clear()
            self._by_token.clear()
            self._default_status = "Completed"
            self._default_failure = None

    def set_status(
        self, status: AsyncStatus, failure_message: str | None, invocation_arn: str | None
    ) -> None:
        with self._lock:
            if invocation_arn is None:
                self._default_status = status
                self._default_failure = failure_message
                return
            job = self._jobs.get(invocation_arn)
            if job is None:
                raise KeyError(invocation_arn)
            self._jobs[invocation_arn] = replace(job, status=status, failure_message=failure_message)

    def start(self, base_model_id: str, token: str | None, output_data_config: Mapping[str, Any]) -> str:
        with self._lock:
            if token is not None and token in self._by_token:
                return self._by_token[token]
            short = hashlib.sha256(f"{len(self._jobs)}:{token}:{base_model_id}".encode()).hexdigest()[:12]
            arn = f"arn:aws:bedrock:{self.region}:{ACCOUNT_ID}:async-invoke/{short}"
            self._jobs[arn] = _Job(
                invocation_arn=arn,
                model_arn=f"arn:aws:bedrock:{self.region}::foundation-model/{base_model_id}",
                client_request_token=token,
                status=self._default_status,
                failure_message=self._default_failure if self._default_status == "Failed" else None,
                submitted=datetime.now(UTC).replace(microsecond=0),
                output_data_config=output_data_config,
            )
            if token is not None:
                self._by_token[token] = arn
            return arn

    def get(self, invocation_arn: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(invocation_arn)
        if job is None:
            raise BedrockError("ValidationException", "The provided invocation ARN was not found.")
        return job.describe()

    def list(self, status: str | None, max_results: int | None, next_token: str | None) -> dict[str, Any]:
        with self._lock:
            jobs = [job for job in self._jobs.values() if status is None or job.status == status]
        start = int(next_token) if next_token and next_token.isdigit() else 0
        end = len(jobs) if max_results is None else start + max_results
        out: dict[str, Any] = {"asyncInvokeSummaries": [job.describe() for job in jobs[start:end]]}
        if end < len(jobs):
            out["nextToken"] = str(end)
        return out
