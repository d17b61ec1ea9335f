"""examples/fastapi_async_app.py served in-process (FastAPI's TestClient) against the fake Bedrock: answers
until the user's daily budget is spent, then 429 before anything reaches Bedrock; the budget endpoint reads
the spend the async ledger settled."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest

import bedrock_budget as bb
from bedrock_budget.testing import FakeBedrock, UsageSpec
from examples.test_examples import in_process_env, load_example, need, price

__all__ = ["in_process_env"]

HAIKU = "anthropic.claude-haiku-4-5-20251001-v1:0"


@pytest.fixture
def chat_api(in_process_env: None, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    need("fastapi")
    need("httpx")
    # The async app uses fastapi_app's middleware and models, imported by name from its own directory.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "examples"))
    monkeypatch.delitem(sys.modules, "fastapi_app", raising=False)
    return load_example("fastapi_async_app", monkeypatch)


# Newer Starlette test clients prefer another HTTP package; httpx is what the dev extra installs.
@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated")
def test_async_fastapi_app_answers_until_the_user_budget_is_spent_then_429(
    chat_api: ModuleType, fake: FakeBedrock
) -> None:
    from fastapi.testclient import TestClient

    fake.set_usage(HAIKU, UsageSpec(input_tokens=2000, output_tokens=300))
    per_call = price(HAIKU, input_tokens=2000, output_tokens=300)
    records: list[bb.CallRecord] = []
    app = chat_api.create_app(user_daily_limit_usd="0.02", listeners=[records.append])
    alice = {"X-User-Id": "alice"}
    with TestClient(app) as http:
        answered = 0
        for _ in range(50):
            response = http.post("/chat", json={"message": "Hi there", "max_tokens": 300}, headers=alice)
            if response.status_code != 200:
                break
            assert response.json()["output_tokens"] == 300
            answered += 1
        assert answered >= 2
        assert response.status_code == 429
        assert response.json()["budget"] == "per-user-daily"
        assert 1 <= int(response.headers["Retry-After"]) <= 25 * 3600
        assert len(fake.calls("converse")) == answered  # the refused request never reached Bedrock
        status = http.get("/budget", headers=alice).json()
        assert Decimal(status["spent_usd"]) == per_call * answered
        assert Decimal(status["limit_usd"]) == Decimal("0.02")
        assert http.post("/chat", json={"message": "Hi"}, headers={"X-User-Id": "bob"}).status_code == 200
        assert http.post("/chat", json={"message": "Hi"}).status_code == 401
    assert [r.outcome for r in records].count("blocked") == 1
    assert {r.attribution["user"] for r in records if r.outcome == "ok"} == {"alice", "bob"}
