"""A FastAPI chat endpoint with a daily budget per user.

* Who pays: a small ASGI middleware reads the ``X-User-Id`` header and attributes every Bedrock call made
  while handling the request to that user (``bb.attribute`` rides on contextvars, so it follows the
  request into FastAPI's thread pool).
* The cap: ``per-user-daily`` (``scope={"user": "*"}``) gives every user their own daily dollar limit.
* The refusal: ``BudgetExceededError`` is raised before anything is sent to Bedrock and becomes
  ``429 Too Many Requests`` with ``Retry-After`` set to when the user's window resets.

Run from the checkout (``pip install fastapi uvicorn``; from elsewhere give ``--app-dir`` the path of
this directory)::

    USER_DAILY_LIMIT_USD=0.50 uvicorn --app-dir examples --factory fastapi_app:create_app --port 8000
    curl -s localhost:8000/chat -H 'X-User-Id: u-17' -H 'content-type: application/json' \\
        -d '{"message": "Hello!"}'
    curl -s localhost:8000/budget -H 'X-User-Id: u-17'

Configuration (environment): ``BEDROCK_ENDPOINT_URL`` (unset: AWS), ``AWS_REGION`` (default us-east-1),
``CHAT_MODEL_ID``, ``USER_DAILY_LIMIT_USD`` (default 2.00), ``BEDROCK_BUDGET_STORE`` (default
``memory://``; use ``redis://...`` when several workers serve the app, so they share one counter).
For a quick try without AWS, run ``bedrock-budget fake-bedrock --port 4010`` and set
``BEDROCK_ENDPOINT_URL=http://127.0.0.1:4010 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from datetime import UTC, datetime
from typing import Annotated, Any

import boto3
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

import bedrock_budget as bb
from bedrock_budget.budgets import BudgetStatus, Ledger

USER_BUDGET = "per-user-daily"
DEFAULT_MODEL = "us.anthropic.claude-haiku-4-5-20251001-v1:0"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class UserAttribution:
    """Pure ASGI middleware: calls made while serving a request are attributed to ``X-User-Id``.

    Pure ASGI rather than ``@app.middleware("http")``: the context is set in the task that runs the
    endpoint, and reset in the same task, which is what contextvars require."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        user = None
        if scope["type"] == "http":
            user = dict(scope["headers"]).get(b"x-user-id", b"").decode("latin-1") or None
        ids: AbstractContextManager[object] = bb.attribute(user=user) if user else nullcontext()
        with ids:
            await self.app(scope, receive, send)


def require_user(x_user_id: Annotated[str | None, Header()] = None) -> str:
    """Every chat call must be attributable, or the per-user budget would not cover it."""
    if not x_user_id:
        raise HTTPException(status_code=401, detail="X-User-Id header required")
    return x_user_id


class ChatIn(BaseModel):
    message: str = Field(min_length=1, max_length=20_000)
    max_tokens: int = Field(default=512, ge=1, le=4096)


class ChatOut(BaseModel):
    reply: str
    input_tokens: int
    output_tokens: int


class BudgetOut(BaseModel):
    user: str
    limit_usd: str
    spent_usd: str
    remaining_usd: str
    resets_at: str | None


def add_error_handlers(app: FastAPI) -> None:
    """Budget refusals become 429 with ``Retry-After``, a store outage 503, a bad user id 400."""

    @app.exception_handler(bb.BudgetExceededError)
    async def budget_exceeded(request: Request, exc: bb.BudgetExceededError) -> JSONResponse:
        headers = {}
        if exc.resets_at is not None:
            wait = (exc.resets_at - datetime.now(UTC)).total_seconds()
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        body = {
            "error": "budget_exceeded",
            "budget": exc.budget,
            "resets_at": exc.resets_at.isoformat() if exc.resets_at else None,
        }
        return JSONResponse(body, status_code=429, headers=headers)

    @app.exception_handler(bb.StoreUnavailableError)
    async def store_down(request: Request, exc: bb.StoreUnavailableError) -> JSONResponse:
        # Outage policy "deny": without the budget store nobody's spend can be checked, so fail closed.
        return JSONResponse({"error": "budget_store_unavailable"}, status_code=503)

    @app.exception_handler(bb.AttributionError)
    async def bad_user_id(request: Request, exc: bb.AttributionError) -> JSONResponse:
        return JSONResponse({"error": "invalid X-User-Id"}, status_code=400)


def budget_out(user: str, status: BudgetStatus) -> BudgetOut:
    limit_usd = status.limit_usd
    assert limit_usd is not None  # the budget above is a dollar budget
    return BudgetOut(
        user=user,
        limit_usd=str(limit_usd),
        spent_usd=str(status.spent_usd),
        remaining_usd=str(max(limit_usd - status.spent_usd - status.reserved_usd, 0)),
        resets_at=status.resets_at.isoformat() if status.resets_at else None,
    )


def bedrock_client() -> Any:
    # An unset BEDROCK_ENDPOINT_URL means boto3's regional endpoint, so the app serves AWS and the fake.
    return boto3.client(
        "bedrock-runtime",
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        endpoint_url=os.environ.get("BEDROCK_ENDPOINT_URL") or None,
    )


def create_app(
    *, user_daily_limit_usd: str | None = None, listeners: list[Callable[[bb.CallRecord], None]] | None = None
) -> FastAPI:
    limit = user_daily_limit_usd or os.environ.get("USER_DAILY_LIMIT_USD", "2.00")
    model_id = os.environ.get("CHAT_MODEL_ID", DEFAULT_MODEL)
    ledger = Ledger(
        os.environ.get("BEDROCK_BUDGET_STORE", "memory://"),
        [bb.Budget(USER_BUDGET, scope={"user": "*"}, window="day", limit_usd=limit, action="block")],
    )
    client = bb.wrap(
        bedrock_client(), ledger=ledger, attribution={"app": "chat-api"}, listeners=listeners or []
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        ledger.close()  # replays spend journalled during a store outage, closes the store

    app = FastAPI(title="chat", lifespan=lifespan)
    app.add_middleware(UserAttribution)

    add_error_handlers(app)

    # A plain `def`: boto3 blocks, so FastAPI runs it in its thread pool (with the request's context).
    @app.post("/chat", dependencies=[Depends(require_user)])
    def chat(body: ChatIn) -> ChatOut:
        response = client.converse(
            modelId=model_id,
            messages=[{"role": "user", "content": [{"text": body.message}]}],
            inferenceConfig={"maxTokens": body.max_tokens},
        )
        text = "".join(block.get("text", "") for block in response["output"]["message"]["content"])
        usage = response["usage"]
        return ChatOut(reply=text, input_tokens=usage["inputTokens"], output_tokens=usage["outputTokens"])

    @app.get("/budget")
    def budget(user: Annotated[str, Depends(require_user)]) -> BudgetOut:
        return budget_out(user, ledger.read(USER_BUDGET, {"user": user}))

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
