"""The demo's workload: a seeded, reproducible plan of calls from three apps and a dozen users.

Prompts are generated filler of realistic sizes (never real text), so the plan says nothing but sizes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HAIKU_45 = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
SONNET_45 = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA_LITE = "amazon.nova-lite-v1:0"
NOVA_MICRO = "us.amazon.nova-micro-v1:0"
TITAN_EMBED = "amazon.titan-embed-text-v2:0"
GUARDRAIL_ID = "support-guardrail"

APP_USERS: dict[str, tuple[str, ...]] = {
    "support-chat": ("u-01", "u-02", "u-03", "u-04", "u-05", "u-06"),
    "legal-review": ("u-07", "u-08"),
    "search": ("u-09", "u-10", "u-11", "u-12"),
}
APP_WEIGHTS = {"support-chat": 5, "legal-review": 2, "search": 3}
_WORDS = ("alpha", "budget", "claim", "delta", "ledger", "policy", "quarter", "refund", "ticket", "vector")


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One call of the plan: who makes it, which operation and model, and how big it is."""

    index: int
    app: str
    user: str
    operation: str
    model_id: str
    prompt_words: int
    max_tokens: int
    cached_prefix: bool = False
    guardrail: bool = False

    def kwargs(self) -> dict[str, Any]:
        """The boto3 keyword arguments for this call."""
        return _BUILDERS[self.operation](self)


def _filler(words: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(_WORDS) for _ in range(words))


_SYSTEM_PROMPT = _filler(900, 1)


def _converse_kwargs(call: PlannedCall) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "modelId": call.model_id,
        "messages": [{"role": "user", "content": [{"text": _filler(call.prompt_words, call.index)}]}],
        "inferenceConfig": {"maxTokens": call.max_tokens},
    }
    if call.cached_prefix:
        kwargs["system"] = [{"text": _SYSTEM_PROMPT}, {"cachePoint": {"type": "default"}}]
    return kwargs


def _nova_invoke_kwargs(call: PlannedCall) -> dict[str, Any]:
    body = {
        "messages": [{"role": "user", "content": [{"text": _filler(call.prompt_words, call.index)}]}],
        "inferenceConfig": {"maxTokens": call.max_tokens},
    }
    return {"modelId": call.model_id, "body": json.dumps(body), "contentType": "application/json"}


def _embed_kwargs(call: PlannedCall) -> dict[str, Any]:
    body = {"inputText": _filler(call.prompt_words, call.index)}
    return {"modelId": call.model_id, "body": json.dumps(body), "contentType": "application/json"}


def _guardrail_kwargs(call: PlannedCall) -> dict[str, Any]:
    return {
        "guardrailIdentifier": GUARDRAIL_ID,
        "guardrailVersion": "1",
        "source": "INPUT",
        "content": [{"text": {"text": _filler(call.prompt_words, call.index)}}],
    }


_BUILDERS: dict[str, Callable[[PlannedCall], dict[str, Any]]] = {
    "converse": _converse_kwargs,
    "converse_stream": _converse_kwargs,
    "invoke_model": _nova_invoke_kwargs,
    "invoke_model_with_response_stream": _nova_invoke_kwargs,
    "embed": _embed_kwargs,
    "apply_guardrail": _guardrail_kwargs,
}


def _support(rng: random.Random, index: int, user: str) -> list[PlannedCall]:
    calls = []
    if rng.random() < 0.2:
        calls.append(
            PlannedCall(index, "support-chat", user, "apply_guardrail", "", rng.randint(200, 2400), 0)
        )
    operation = "converse_stream" if rng.random() < 0.6 else "converse"
    calls.append(
        PlannedCall(
            index, "support-chat", user, operation, HAIKU_45, rng.randint(30, 400), rng.choice((300, 600)),
            cached_prefix=True,
        )
    )  # fmt: skip
    return calls


def _legal(rng: random.Random, index: int, user: str) -> list[PlannedCall]:
    return [PlannedCall(index, "legal-review", user, "converse", SONNET_45, rng.randint(1500, 4000), 1200)]


def _search(rng: random.Random, index: int, user: str) -> list[PlannedCall]:
    roll = rng.random()
    if roll < 0.4:
        return [PlannedCall(index, "search", user, "embed", TITAN_EMBED, rng.randint(50, 500), 0)]
    if roll < 0.7:
        return [PlannedCall(index, "search", user, "invoke_model", NOVA_LITE, rng.randint(300, 1500), 400)]
    return [
        PlannedCall(
            index, "search", user, "invoke_model_with_response_stream", NOVA_MICRO, rng.randint(100, 800), 300
        )
    ]


_APPS: dict[str, Callable[[random.Random, int, str], list[PlannedCall]]] = {
    "support-chat": _support,
    "legal-review": _legal,
    "search": _search,
}


def plan(calls: int, seed: int) -> list[PlannedCall]:
    """``calls`` user requests (a support request may add a guardrail check), the same for the same seed."""
    rng = random.Random(seed)
    apps = list(APP_WEIGHTS)
    weights = [APP_WEIGHTS[app] for app in apps]
    planned: list[PlannedCall] = []
    for index in range(calls):
        app = rng.choices(apps, weights)[0]
        # Users are skewed: the first of each app's users is the heavy one.
        users = APP_USERS[app]
        user = users[0] if rng.random() < 0.4 else rng.choice(users)
        planned.extend(_APPS[app](rng, index, user))
    return planned
