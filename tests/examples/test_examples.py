"""Every program in ``examples/`` run against the fake Bedrock (and Redis, Redis Cluster, moto's SNS),
checked on what it prints and what it does - not only on its exit code.

Script-like examples run as subprocesses with ``-W error``, configured only through the environment as a
user would; the FastAPI app and the SNS example run in-process (TestClient, moto's in-process mock).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import uuid4

import pytest

import bedrock_budget as bb
from bedrock_budget.budgets import Ledger
from bedrock_budget.pricing import default_price_table
from bedrock_budget.testing import FakeBedrock, UsageSpec
from polling import wait_until
from service_fixtures import free_port, port_open, unavailable

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
BUDGETS_YAML = EXAMPLES / "budgets.yaml"

HAIKU = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA_LITE = "us.amazon.nova-lite-v1:0"
NOVA_PRO = "us.amazon.nova-pro-v1:0"


# --- helpers ---------------------------------------------------------------------------------------------


def need(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        unavailable(f"{module} is not installed (pip install -e '.[dev]')")


def price(model_id: str, **tokens: int) -> Decimal:
    return default_price_table().price(model_id, bb.Usage(**tokens), region="us-east-1").total_usd


# Variables that would point an example at real AWS, change its budgets, or send traces somewhere.
FOREIGN_ENV = ("AWS_", "BEDROCK_", "LANGCHAIN_", "LANGSMITH_", "OTEL_")


def example_env(fake: FakeBedrock | None = None, **extra: str) -> dict[str, str]:
    """The caller's environment without anything AWS-, budget- or tracing-related, plus dummy keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
    env.update(
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="x",
        AWS_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    if fake is not None:
        env["BEDROCK_ENDPOINT_URL"] = fake.endpoint_url
    env.update(extra)
    return env


def run_example(name: str, env: dict[str, str], *, expect: int = 0, cwd: Path = REPO) -> str:
    done = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / name)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == expect, f"{name} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def call_lines(stdout: str) -> list[dict[str, str]]:
    """``Converse model=... cost_usd=...`` lines as dicts (``operation`` plus every key=value)."""
    found = []
    for line in stdout.splitlines():
        head, _, rest = line.partition(" ")
        if head in ("Converse", "ConverseStream"):
            fields = dict(part.split("=", 1) for part in rest.split() if "=" in part)
            found.append({"operation": head, **fields})
    return found


def value_of(stdout: str, key: str) -> str:
    for line in stdout.splitlines():
        for part in line.split():
            if part.startswith(f"{key}="):
                return part.partition("=")[2]
    raise AssertionError(f"{key}= not printed:\n{stdout}")


def streamed_chunks(stdout: str) -> int:
    """How many pieces the example's streamed turn arrived in (``stream: N chunks: <text>``)."""
    found = re.search(r"^stream: (\d+) chunks: lorem ipsum", stdout, re.MULTILINE)
    assert found is not None, stdout
    return int(found.group(1))


def load_example(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bb_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # pydantic resolves annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake(fake_bedrock: FakeBedrock) -> FakeBedrock:
    return fake_bedrock


@pytest.fixture
def in_process_env(fake: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(FOREIGN_ENV):
            monkeypatch.delenv(key)
    for key, value in example_env(fake).items():
        monkeypatch.setenv(key, value)


# --- wrap_existing_client.py -----------------------------------------------------------------------------


def test_wrap_existing_client_prints_what_the_price_table_says(fake: FakeBedrock) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=1200, output_tokens=180, cache_read_tokens=4000))
    fake.set_usage(NOVA_LITE, UsageSpec(input_tokens=350, output_tokens=40))

    out = run_example("wrap_existing_client.py", example_env(fake))

    chat, summary = call_lines(out)
    chat_cost = price(HAIKU, input_tokens=1200, output_tokens=180, cache_read_tokens=4000)
    summary_cost = price(NOVA_LITE, input_tokens=350, output_tokens=40)
    assert chat == {
        "operation": "Converse",
        "model": "anthropic.claude-haiku-4-5-20251001-v1:0",
        "user": "u-1042",
        "input_tokens": "1200",
        "output_tokens": "180",
        "cache_read_tokens": "4000",
        "cost_usd": str(chat_cost),
    }
    assert summary["operation"] == "ConverseStream"
    assert summary["model"] == "amazon.nova-lite-v1:0"
    assert Decimal(summary["cost_usd"]) == summary_cost
    assert Decimal(value_of(out, "total_usd")) == chat_cost + summary_cost > 0
    assert [(r.operation, r.model_id) for r in fake.requests] == [
        ("Converse", HAIKU),
        ("ConverseStream", NOVA_LITE),
    ]


# --- budgets.yaml ----------------------------------------------------------------------------------------


def test_budgets_yaml_loads_with_every_kind_of_budget() -> None:
    budgets = {b.name: b for b in bb.load_budgets(BUDGETS_YAML)}

    monthly = [b for b in budgets.values() if b.is_global and b.window.kind == "month"]
    assert [b.action for b in monthly] == ["block"]
    assert any(b.scope.get("app") not in (None, "*") and b.window.kind == "day" for b in budgets.values())
    per_user = [b for b in budgets.values() if b.scope.get("user") == "*" and b.action == "block"]
    assert per_user
    assert all(b.limit_usd for b in per_user)
    assert any(b.action == "warn" for b in budgets.values())

    (tokens,) = [b for b in budgets.values() if b.limit_tokens is not None]
    assert tokens.token_weights["cache_read"] == Decimal("0.1")
    assert tokens.token_weights["input"] == 1

    # The cascade: Sonnet's budget hands over to Haiku, whose own budget hands over to Nova.
    downgrades = {b.model: b for b in budgets.values() if b.action == "downgrade"}
    sonnet = downgrades["anthropic.claude-sonnet-4-5-20250929-v1:0"]
    assert sonnet.downgrade_to is not None
    haiku = downgrades[bb.parse_model_id(sonnet.downgrade_to).base_id]
    assert haiku.downgrade_to is not None
    assert bb.parse_model_id(haiku.downgrade_to).base_id not in downgrades


def test_budgets_yaml_names_only_priced_models() -> None:
    table = default_price_table()
    for budget in bb.load_budgets(BUDGETS_YAML):
        for model in (budget.model, budget.downgrade_to):
            if model is not None:
                assert table.price(model, bb.Usage(input_tokens=1_000)).total_usd > 0, model


def test_budgets_yaml_cascade_shadow_and_token_weights_act_on_calls(fake: FakeBedrock) -> None:
    fake.set_usage(NOVA_LITE, UsageSpec(input_tokens=100, output_tokens=10, cache_read_tokens=1000))
    # Today's Sonnet and Haiku money already spent, and a proposed per-user cap that every call exceeds.
    exhausted = {"sonnet-daily", "haiku-daily", "per-user-daily-proposed"}
    budgets = [
        b.replace(limit_usd="0.000000001") if b.name in exhausted else b
        for b in bb.load_budgets(BUDGETS_YAML)
    ]
    records: list[bb.CallRecord] = []
    with Ledger("memory://", budgets) as ledger:
        client = bb.wrap(
            fake.client(), ledger=ledger, listeners=[records.append], attribution={"app": "chat"}
        )
        with bb.attribute(tenant="acme", user="u-1"):
            client.converse(
                modelId=SONNET,
                messages=[{"role": "user", "content": [{"text": "Plan my week."}]}],
                inferenceConfig={"maxTokens": 500},
            )
        (record,) = records
        assert record.outcome == "ok"
        assert record.downgraded_from == SONNET
        assert record.model_id == "amazon.nova-lite-v1:0"
        assert [r.model_id for r in fake.requests] == [NOVA_LITE]
        assert record.budget_warnings == ("per-user-daily-proposed",)
        # 100 input + 10 output + 1000 cache reads weighted 0.1
        assert ledger.read("per-tenant-monthly-tokens", {"tenant": "acme"}).spent_tokens == 210
        for name, scope in (
            ("org-monthly", None),
            ("chat-app-daily", None),
            ("per-user-daily", {"user": "u-1"}),
        ):
            assert ledger.read(name, scope).spent_usd == record.cost_usd > 0


def test_budgets_yaml_path_is_accepted_by_wrap(fake: FakeBedrock) -> None:
    client = bb.wrap(fake.client(), budgets=str(BUDGETS_YAML), attribution={"app": "chat"})
    guard = client.bedrock_budget_meter.guard
    assert guard is not None
    assert {b.name for b in guard.ledger.budgets} >= {"org-monthly", "per-user-daily", "sonnet-daily"}


# --- fastapi_app.py --------------------------------------------------------------------------------------


@pytest.fixture
def chat_api(in_process_env: None, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    need("fastapi")
    need("httpx")
    return load_example("fastapi_app", monkeypatch)


def test_fastapi_app_answers_until_the_user_budget_is_spent_then_429(
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
        assert response.json()["error"] == "budget_exceeded"
        assert response.json()["budget"] == "per-user-daily"
        assert 1 <= int(response.headers["Retry-After"]) <= 25 * 3600
        # The refused request never reached Bedrock; the answered ones were billed exactly.
        assert len(fake.calls("converse")) == answered
        status = http.get("/budget", headers=alice).json()
        assert Decimal(status["spent_usd"]) == per_call * answered
        assert Decimal(status["limit_usd"]) == Decimal("0.02")

        # Another user has a budget of their own.
        bob = http.post("/chat", json={"message": "Hi"}, headers={"X-User-Id": "bob"})
        assert bob.status_code == 200
    assert {(r.attribution["user"], r.attribution["app"]) for r in records if r.outcome == "ok"} == {
        ("alice", "chat-api"),
        ("bob", "chat-api"),
    }
    assert [r.outcome for r in records].count("blocked") == 1


def test_fastapi_app_refuses_unattributable_requests(chat_api: ModuleType, fake: FakeBedrock) -> None:
    from fastapi.testclient import TestClient

    with TestClient(chat_api.create_app()) as http:
        assert http.post("/chat", json={"message": "Hi"}).status_code == 401
        bad = http.post("/chat", json={"message": "Hi"}, headers={"X-User-Id": "not a {valid} id"})
        assert bad.status_code == 400
        assert bad.json() == {"error": "invalid X-User-Id"}
    assert fake.request_count == 0


# --- sns_alerts.py ---------------------------------------------------------------------------------------


@pytest.fixture
def sns_queue(in_process_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str, str]]:
    """moto's SNS topic with an SQS queue subscribed, so the test reads what was published."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="bedrock-budget-alerts")["TopicArn"]
        queue = sqs.create_queue(QueueName="budget-alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn["QueueArn"])
        monkeypatch.setenv("BUDGET_ALERTS_TOPIC_ARN", topic)
        yield sqs, queue, topic


def test_sns_alerts_publish_50_80_100_percent_to_the_topic(
    sns_queue: tuple[Any, str, str],
    fake: FakeBedrock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sqs, queue, topic = sns_queue
    fake.set_usage(NOVA_LITE, UsageSpec(input_tokens=1000, output_tokens=100))
    monkeypatch.setenv("TEAM_SOFT_CAP_USD", "0.001")
    monkeypatch.setenv("TEAM_HARD_CAP_USD", "0.0013")

    assert load_example("sns_alerts", monkeypatch).main() == 0

    out = capsys.readouterr().out
    assert "blocked by team-daily-hard-cap" in out
    assert value_of(out, "sns_published") == "3"
    assert value_of(out, "sns_failed") == "0"
    per_call = price(NOVA_LITE, input_tokens=1000, output_tokens=100)
    assert Decimal(value_of(out, "spent_usd")) == int(value_of(out, "calls")) * per_call

    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    envelopes = [json.loads(m["Body"]) for m in messages]
    assert {e["TopicArn"] for e in envelopes} == {topic}
    alerts = sorted((json.loads(e["Message"]) for e in envelopes), key=lambda a: a["threshold"])
    assert [a["threshold"] for a in alerts] == [50, 80, 100]
    assert {a["budget"] for a in alerts} == {"team-daily-soft-cap"}
    assert {json.dumps(a["scope"]) for a in alerts} == {'{"team": "search"}'}
    for alert, envelope in zip(alerts, sorted(envelopes, key=lambda e: e["Subject"]), strict=True):
        assert Decimal(alert["spent"]) * 100 >= Decimal(alert["limit"]) * alert["threshold"]
        assert envelope["Subject"].startswith("Budget team-daily-soft-cap at ")


def documented_env(name: str) -> dict[str, str]:
    """The ``NAME=value`` settings of the run command in an example's docstring."""
    return dict(re.findall(r"\b([A-Z][A-Z0-9_]+)=(\S+)", " ".join(documented_commands(name))))


def test_sns_alerts_with_the_documented_caps_alerts_every_threshold_twice_in_a_row(
    sns_queue: tuple[Any, str, str],
    fake: FakeBedrock,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The fake's default answers: short, as a real model's answer to this prompt would be.
    documented = documented_env("sns_alerts.py")
    assert set(documented) == {"BUDGET_ALERTS_TOPIC_ARN", "TEAM_SOFT_CAP_USD", "TEAM_HARD_CAP_USD"}
    for name in ("TEAM_SOFT_CAP_USD", "TEAM_HARD_CAP_USD"):
        monkeypatch.setenv(name, documented[name])
    for _ in range(2):  # each run is its own process with its own in-memory budgets
        assert load_example("sns_alerts", monkeypatch).main() == 0
        out = capsys.readouterr().out
        assert "blocked by team-daily-hard-cap" in out
        assert value_of(out, "sns_published") == "3"


def test_sns_alerts_needs_a_topic(
    in_process_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("BUDGET_ALERTS_TOPIC_ARN", raising=False)
    assert load_example("sns_alerts", monkeypatch).main() == 2
    assert "BUDGET_ALERTS_TOPIC_ARN" in capsys.readouterr().err


def _spend_until_refused(client: Any) -> int:
    for done in range(100):
        try:
            client.converse(
                modelId=NOVA_LITE,
                messages=[{"role": "user", "content": [{"text": "Rewrite this search query. " * 30}]}],
                inferenceConfig={"maxTokens": 200},
            )
        except bb.BudgetExceededError:
            return done
    raise AssertionError("the budget never refused a call")


def test_a_block_budget_alerts_at_100_percent_once_it_refuses_calls(fake: FakeBedrock) -> None:
    # Realistic answers: input as long as the prompt, output below maxTokens. (Fixed usage above the
    # estimate would let actual spend overshoot the limit and fire the alert by accident.)
    fake.set_usage(NOVA_LITE, UsageSpec(output_tokens=150))
    alerts: list[Any] = []
    budget = bb.Budget("team-daily", limit_usd="0.001", action="block", thresholds=[50, 80, 100])
    with Ledger("memory://", [budget], alert_sinks=[alerts.append]) as ledger:
        client = bb.wrap(fake.client(), ledger=ledger)
        assert _spend_until_refused(client) > 0
        assert _spend_until_refused(client) == 0  # refused again: no second alert
    # A block budget's spend stops short of its limit: the 100% alert is the refusal's.
    assert [(a.threshold, a.refused) for a in alerts] == [(50, False), (80, False), (100, True)]
    assert alerts[-1].percentage < 100
    refusal = alerts[-1]
    assert "started refusing calls" in refusal.message
    # The refused call's worst case did not fit beside what was spent and held.
    assert refusal.held is not None
    assert refusal.requested is not None
    assert refusal.spent + refusal.held + refusal.requested > refusal.limit


# --- redis_store.py / redis_cluster_store.py -------------------------------------------------------------


def _drop_keys(url: str, prefix: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = [k.decode() for k in client.scan_iter(match=f"{prefix}*", count=1000)]
        for key in keys:  # one by one: on a cluster node, keys of different slots cannot share a DEL
            client.delete(key)
        return keys
    finally:
        client.close()


def test_redis_store_shares_spend_between_processes(redis_url: str, fake: FakeBedrock) -> None:
    fake.set_usage(HAIKU, UsageSpec(input_tokens=800, output_tokens=120))
    per_call = price(HAIKU, input_tokens=800, output_tokens=120)
    prefix = f"bb-example-{uuid4().hex[:8]}:"
    env = example_env(fake, BEDROCK_BUDGET_REDIS_URL=redis_url, BEDROCK_BUDGET_KEY_PREFIX=prefix)
    try:
        first = run_example("redis_store.py", env)
        assert [Decimal(line["cost_usd"]) for line in call_lines(first)] == [per_call, per_call]
        assert Decimal(value_of(first, "user_spent_usd")) == 2 * per_call
        # A second process sees the first one's spend: the counter lives in Redis, not in the process.
        second = run_example("redis_store.py", env)
        assert Decimal(value_of(second, "user_spent_usd")) == 4 * per_call
        assert Decimal(value_of(second, "app_spent_usd")) == 4 * per_call
    finally:
        keys = _drop_keys(redis_url, prefix)
    assert any("per-user-daily" in k and "user=u-17" in k for k in keys), keys
    assert any("chat-app-daily" in k for k in keys), keys
    assert fake.request_count == 4


def test_redis_store_outage_policy_deny_refuses_and_allow_journals(fake: FakeBedrock) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    denied = run_example("redis_store.py", example_env(fake, BEDROCK_BUDGET_REDIS_URL=dead), expect=3)
    assert "refused:" in denied
    assert "outage policy is 'deny'" in denied
    assert fake.request_count == 0

    allowed = run_example(
        "redis_store.py",
        example_env(fake, BEDROCK_BUDGET_REDIS_URL=dead, BEDROCK_BUDGET_ON_STORE_ERROR="allow"),
    )
    # Both calls' settlements wait in the journal: each call's budget spend and its spend-ledger entry.
    assert value_of(allowed, "journal_depth") == "4"
    assert [line["outcome"] for line in call_lines(allowed)] == ["ok", "ok"]
    assert fake.request_count == 2


def test_redis_cluster_store_reserves_across_slots(cluster_url: str, fake: FakeBedrock) -> None:
    fake.set_usage(NOVA_PRO, UsageSpec(input_tokens=500, output_tokens=60))
    per_call = price(NOVA_PRO, input_tokens=500, output_tokens=60)
    prefix = f"bb-example-{uuid4().hex[:8]}:"
    env = example_env(fake, BEDROCK_BUDGET_REDIS_CLUSTER_URL=cluster_url, BEDROCK_BUDGET_KEY_PREFIX=prefix)

    out = run_example("redis_cluster_store.py", env)

    assert value_of(out, "output_tokens") == "60"
    spent = {
        line.split()[0]: (value_of(line, "spent_usd"), value_of(line, "reserved_usd"))
        for line in out.splitlines()
        if "spent_usd=" in line
    }
    assert spent == {
        name: (str(per_call), "0")
        for name in ("org-monthly", "chat-app-daily", "per-tenant-daily", "per-user-daily")
    }
    nodes = cluster_url.removeprefix("redis+cluster://").split(",")
    keys = [k for node in nodes for k in _drop_keys(f"redis://{node}/0", prefix)]
    for name in ("org-monthly", "chat-app-daily", "per-tenant-daily", "per-user-daily"):
        assert any(name in k for k in keys), (name, keys)


def test_redis_cluster_store_needs_seed_nodes() -> None:
    run_example("redis_cluster_store.py", example_env(), expect=2)


# --- langchain_chat.py / strands_agent.py ----------------------------------------------------------------


def test_langchain_example_meters_a_chat_and_a_streamed_turn(fake: FakeBedrock) -> None:
    need("langchain_aws")
    fake.set_usage(HAIKU, UsageSpec(input_tokens=600, output_tokens=45))
    per_call = price(HAIKU, input_tokens=600, output_tokens=45)

    out = run_example("langchain_chat.py", example_env(fake))

    assert "chat: lorem ipsum" in out
    assert streamed_chunks(out) > 1
    lines = call_lines(out)
    assert [line["operation"] for line in lines] == ["Converse", "ConverseStream"]
    for line in lines:
        assert line["model"] == "anthropic.claude-haiku-4-5-20251001-v1:0"
        assert line["user"] == "u-17"
        assert (line["input_tokens"], line["output_tokens"]) == ("600", "45")
        assert Decimal(line["cost_usd"]) == per_call
    assert Decimal(value_of(out, "total_usd")) == 2 * per_call
    # The second turn carries the first answer as history: LangChain's conversation reached Bedrock.
    second = fake.calls("converse_stream")[0].json()
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]


def test_strands_example_meters_a_chat_and_a_streamed_turn(fake: FakeBedrock) -> None:
    need("strands")
    fake.set_usage(NOVA_PRO, UsageSpec(input_tokens=400, output_tokens=35))
    fake.set_usage(HAIKU, UsageSpec(input_tokens=300, output_tokens=20, cache_read_tokens=1500))
    chat_cost = price(NOVA_PRO, input_tokens=400, output_tokens=35)
    stream_cost = price(HAIKU, input_tokens=300, output_tokens=20, cache_read_tokens=1500)

    out = run_example("strands_agent.py", example_env(fake))

    assert "chat: lorem ipsum" in out
    assert streamed_chunks(out) > 1
    chat, stream = call_lines(out)
    assert (chat["operation"], chat["model"], chat["user"]) == ("Converse", "amazon.nova-pro-v1:0", "u-17")
    assert Decimal(chat["cost_usd"]) == chat_cost
    assert (stream["operation"], stream["model"], stream["user"]) == (
        "ConverseStream",
        "anthropic.claude-haiku-4-5-20251001-v1:0",
        "u-17",
    )
    assert Decimal(stream["cost_usd"]) == stream_cost
    assert Decimal(value_of(out, "total_usd")) == chat_cost + stream_cost
    assert [(r.operation, r.model_id) for r in fake.requests] == [
        ("Converse", NOVA_PRO),
        ("ConverseStream", HAIKU),
    ]


# --- high_throughput_leases.py ---------------------------------------------------------------------------


@pytest.mark.redis
def test_high_throughput_leases_runs_twice_in_a_row_from_any_directory(
    redis_url: str, fake: FakeBedrock, tmp_path: Path
) -> None:
    # As documented: no key prefix given, so each run must not find the previous run's spend.
    env = example_env(fake, BEDROCK_BUDGET_REDIS_URL=redis_url)
    prefixes = []
    try:
        for _ in range(2):
            out = run_example("high_throughput_leases.py", env, cwd=tmp_path)
            prefixes.append(value_of(out, "key_prefix"))
            assert int(value_of(out, "calls_made")) > 0
            assert value_of(out, "within_limits") == "True"
            assert value_of(out, "records_match_store") == "True"
    finally:
        for prefix in prefixes:
            _drop_keys(redis_url, prefix)
    assert len(set(prefixes)) == 2


@pytest.mark.redis
def test_high_throughput_leases_stop_at_the_limit_and_settle_every_call(
    redis_url: str, fake: FakeBedrock
) -> None:
    prefix = f"bb-example-{uuid4().hex[:8]}:"
    env = example_env(fake, BEDROCK_BUDGET_REDIS_URL=redis_url, BEDROCK_BUDGET_KEY_PREFIX=prefix)
    try:
        out = run_example("high_throughput_leases.py", env)
    finally:
        keys = _drop_keys(redis_url, prefix)
    assert any("org-daily" in k for k in keys), keys

    made = int(value_of(out, "calls_made"))
    assert int(value_of(out, "calls_refused")) > 0
    assert float(value_of(out, "calls_per_s")) > 0
    # Refused calls never reached Bedrock: the fake saw exactly the calls that were made.
    assert fake.request_count == made > 0
    assert value_of(out, "records_match_store") == "True"
    assert value_of(out, "within_limits") == "True"

    org = next(line for line in out.splitlines() if line.startswith("org "))
    record_cost = Decimal(value_of(org, "record_cost_usd"))
    spent = Decimal(value_of(org, "spent_usd"))
    assert record_cost == spent > 0
    assert spent <= Decimal(value_of(org, "limit_usd"))
    assert Decimal(value_of(org, "reserved_usd")) == 0  # every lease closed and settled

    teams = [line for line in out.splitlines() if line.startswith("team=")]
    assert len(teams) == 4
    assert sum(int(value_of(line, "calls")) for line in teams) == made
    for line in teams:
        team_spent = Decimal(value_of(line, "spent_usd"))
        assert Decimal(value_of(line, "record_cost_usd")) == team_spent
        assert team_spent <= Decimal(value_of(line, "limit_usd"))
    assert sum(Decimal(value_of(line, "spent_usd")) for line in teams) == spent


# --- every documented run command, verbatim --------------------------------------------------------------


def documented_commands(name: str) -> list[str]:
    """The shell commands of the last literal block (``::``) in an example's docstring, continuation
    lines joined."""
    doc = ast.get_docstring(ast.parse((EXAMPLES / name).read_text()))
    assert doc is not None, name
    blocks: list[list[str]] = []
    lines = iter(doc.splitlines())
    for line in lines:
        if not line.rstrip().endswith("::"):
            continue
        block: list[str] = []
        for inner in lines:
            if inner.startswith("    "):
                block.append(inner[4:])
            elif inner.strip() or block:
                break
        blocks.append(block)
    assert blocks, f"{name} documents no command"
    return "\n".join(blocks[-1]).replace("\\\n", " ").splitlines()


LOCAL_FAKE = "bedrock-budget fake-bedrock --port 4010 &"


def run_documented(name: str, fake: FakeBedrock, cwd: Path, **extra: str) -> str:
    """Run an example's documented command in a shell from ``cwd``, with the installed ``python`` and
    ``bedrock-budget`` first on PATH. The documented ``fake-bedrock`` on port 4010 is this test's fake (a
    fixed port would collide with other test runs)."""
    commands = documented_commands(name)
    script = "\n".join(c for c in commands if c.strip() != LOCAL_FAKE)
    if LOCAL_FAKE in commands:
        script = script.replace("http://127.0.0.1:4010", fake.endpoint_url)
    env = example_env(None if LOCAL_FAKE in commands else fake, **extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-euc", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"{script}\nexited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("wrap_existing_client.py", None),
        ("langchain_chat.py", "langchain_aws"),
        ("strands_agent.py", "strands"),
    ],
)
def test_documented_command_works_twice_from_a_checkout(
    name: str, module: str | None, fake: FakeBedrock, tmp_path: Path
) -> None:
    if module is not None:
        need(module)
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "examples").symlink_to(EXAMPLES)  # a checkout's layout, away from the test's working directory
    outputs = [run_documented(name, fake, clone) for _ in range(2)]
    for out in outputs:
        assert Decimal(value_of(out, "total_usd")) > 0
    assert fake.request_count == 4


@pytest.mark.redis
@pytest.mark.parametrize("name", ["redis_store.py", "high_throughput_leases.py"])
def test_documented_redis_command_works_twice_from_a_checkout(
    name: str, redis_url: str, fake: FakeBedrock, tmp_path: Path
) -> None:
    (tmp_path / "examples").symlink_to(EXAMPLES)
    extra = {"BEDROCK_BUDGET_REDIS_URL": redis_url}
    if name == "redis_store.py":
        # Its documented prefix is shared on purpose (every worker sees the same spend): keep test runs apart.
        extra["BEDROCK_BUDGET_KEY_PREFIX"] = f"bb-example-{uuid4().hex[:8]}:"
    prefixes: list[str] = []
    try:
        for _ in range(2):
            out = run_documented(name, fake, tmp_path, **extra)
            if name == "high_throughput_leases.py":
                prefixes.append(value_of(out, "key_prefix"))
                assert value_of(out, "within_limits") == "True"
    finally:
        for prefix in [*prefixes, extra.get("BEDROCK_BUDGET_KEY_PREFIX", "")]:
            if prefix:
                _drop_keys(redis_url, prefix)


def test_fastapi_documented_commands_serve_and_bill_twice_from_a_checkout(
    fake: FakeBedrock, tmp_path: Path
) -> None:
    need("fastapi")
    need("uvicorn")
    clone, elsewhere = tmp_path / "clone", tmp_path / "elsewhere"
    clone.mkdir()
    elsewhere.mkdir()
    (clone / "examples").symlink_to(EXAMPLES)
    serve, *requests = documented_commands("fastapi_app.py")
    assert " --app-dir examples " in serve
    env = example_env(fake)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # Verbatim from a checkout, then from another directory with --app-dir naming the examples, as documented.
    for cwd, command in (
        (clone, serve),
        (elsewhere, serve.replace("--app-dir examples", f"--app-dir {EXAMPLES}")),
    ):
        port = free_port()  # the documented port 8000 may be taken on a shared machine
        with subprocess.Popen(
            ["bash", "-euc", command.replace("8000", str(port))],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # uvicorn runs under bash: stop the whole group
        ) as server:
            try:

                def listening(server: subprocess.Popen[str] = server, port: int = port) -> bool:
                    assert server.poll() is None, server.communicate()[1]
                    return port_open("127.0.0.1", port)

                wait_until(listening, 30, interval=0.1, message=f"uvicorn to listen on port {port}")
                answers = [
                    subprocess.run(
                        ["bash", "-euc", request.replace("8000", str(port))],
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=30,
                        check=True,
                    ).stdout
                    for request in requests
                ]
            finally:
                os.killpg(server.pid, signal.SIGTERM)
        chat, budget = (json.loads(answer) for answer in answers)
        assert chat["output_tokens"] > 0
        assert Decimal(budget["spent_usd"]) > 0
        assert Decimal(budget["limit_usd"]) == Decimal("0.50")
    assert len(fake.calls("converse")) == 2
