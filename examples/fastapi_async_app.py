"""The FastAPI chat endpoint of ``fastapi_app.py`` on the async client: ``async def`` endpoints awaiting an
aiobotocore ``bedrock-runtime`` client, with the same daily budget per user.

* The client: one aiobotocore client for the app's lifetime (made in the lifespan), wrapped with an
  ``AsyncLedger``: the budget store is awaited on the event loop, so a request waiting on Redis or on
  Bedrock never holds a worker thread, and nothing in the budget layer blocks the loop.
* Who pays, the cap, the refusal (429 with ``Retry-After``, before anything is sent to Bedrock): as in
  ``fastapi_app.py``, whose middleware, models and error handlers this app uses.
* Shutdown: the lifespan closes the ledger after the client, which sends the settlements still queued.

Run from the checkout (``pip install 'bedrock-budget[async]' fastapi uvicorn``)::

    USER_DAILY_LIMIT_USD=0.50 uvicorn --app-dir examples --factory fastapi_async_app:create_app --port 8000
    curl -s localhost:8000/chat -H 'X-User-Id: u-17' -H 'content-type: application/json' \\
        -d '{"message": "Hello!"}'
    curl -s localhost:8000/budget -H 'X-User-Id: u-17'

Configuration (environment) as for ``fastapi_app.py``; ``BEDROCK_BUDGET_STORE=redis://...`` shares one
budget with every other worker, sync or async.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from aiobotocore.session import get_session
from fastapi import Depends, FastAPI

import bedrock_budget as bb
from bedrock_budget.budgets import AsyncLedger
from fastapi_app import (
    DEFAULT_MODEL,
    USER_BUDGET,
    BudgetOut,
    ChatIn,
    ChatOut,
    UserAttribution,
    add_error_handlers,
    budget_out,
    require_user,
)


def create_app(
    *, user_daily_limit_usd: str | None = None, listeners: list[Callable[[bb.CallRecord], None]] | None = None
) -> FastAPI:
    limit = user_daily_limit_usd or os.environ.get("USER_DAILY_LIMIT_USD", "2.00")
    model_id = os.environ.get("CHAT_MODEL_ID", DEFAULT_MODEL)
    ledger = AsyncLedger(
        os.environ.get("BEDROCK_BUDGET_STORE", "memory://"),
        [bb.Budget(USER_BUDGET, scope={"user": "*"}, window="day", limit_usd=limit, action="block")],
    )
    clients: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        session = get_session()
        async with session.create_client(
            "bedrock-runtime",
            region_name=os.environ.get("AWS_REGION", "us-east-1"),
            endpoint_url=os.environ.get("BEDROCK_ENDPOINT_URL") or None,
        ) as raw:
            clients["bedrock"] = bb.wrap(
                raw, ledger=ledger, attribution={"app": "chat-api"}, listeners=listeners or []
            )
            yield
        await ledger.aclose()  # sends queued settlements, replays spend journalled during an outage

    app = FastAPI(title="chat", lifespan=lifespan)
    app.add_middleware(UserAttribution)
    add_error_handlers(app)

    @app.post("/chat", dependencies=[Depends(require_user)])
    async def chat(body: ChatIn) -> ChatOut:
        response = await clients["bedrock"].converse(
            modelId=model_id,
            messages=[{"role": "user", "content": [{"text": body.message}]}],
            inferenceConfig={"maxTokens": body.max_tokens},
        )
        text = "".join(block.get("text", "") for block in response["output"]["message"]["content"])
        usage = response["usage"]
        return ChatOut(reply=text, input_tokens=usage["inputTokens"], output_tokens=usage["outputTokens"])

    @app.get("/budget")
    async def budget(user: Annotated[str, Depends(require_user)]) -> BudgetOut:
        return budget_out(user, await ledger.read(USER_BUDGET, {"user": user}))

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
