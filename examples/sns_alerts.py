"""Budget alerts to Amazon SNS at 50 %, 80 % and 100 % of a team's daily spend.

Two budgets per team: a *soft cap* that only alerts (action ``warn``, thresholds 50/80/100) and a *hard
cap* above it that blocks. The soft cap warns before anything is refused; the hard cap's own 100 % alert
arrives with its first refusal (``alert.refused`` is true: a blocking budget refuses the call that would
cross its limit, so its spend stops short of 100 %).

Each threshold fires once per team and day, across every process sharing the budget store. Alerts are
published from a background thread, so a slow SNS call never delays a Bedrock call; closing the ledger
drains what is still queued. The message is the alert as JSON (budget, scope, spent, limit, resets_at...),
ready for an email/Slack/Lambda subscription.

Run (the topic must exist and your credentials must allow ``sns:Publish``)::

    BUDGET_ALERTS_TOPIC_ARN=arn:aws:sns:us-east-1:123456789012:bedrock-budget-alerts \\
    TEAM_SOFT_CAP_USD=0.0001 TEAM_HARD_CAP_USD=0.0002 python examples/sns_alerts.py

``BEDROCK_ENDPOINT_URL`` points the Bedrock calls elsewhere (e.g. ``bedrock-budget fake-bedrock``);
``SNS_ENDPOINT_URL`` does the same for SNS. ``DEMO_CALLS`` bounds the demo loop (default 100). The caps
above are sized for it: a call to this model with this short prompt costs about $0.000005, so the soft
cap's thresholds are crossed and the hard cap stops the loop within the run.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import boto3

import bedrock_budget as bb
from bedrock_budget.alerts import Alert, SnsSink
from bedrock_budget.budgets import Ledger

MODEL = "us.amazon.nova-lite-v1:0"
TEAM = "search"


def region() -> str:
    return os.environ.get("AWS_REGION", "us-east-1")


def bedrock_client() -> Any:
    # An unset BEDROCK_ENDPOINT_URL means boto3's regional endpoint, so one script serves AWS and the fake.
    return boto3.client(
        "bedrock-runtime", region_name=region(), endpoint_url=os.environ.get("BEDROCK_ENDPOINT_URL") or None
    )


def team_budgets(soft_cap_usd: str, hard_cap_usd: str) -> list[bb.Budget]:
    return [
        bb.Budget(
            "team-daily-soft-cap",
            scope={"team": "*"},
            window="day",
            limit_usd=soft_cap_usd,
            action="warn",
            thresholds=[50, 80, 100],
        ),
        # No thresholds: the soft cap already pages; this one only stops the spending.
        bb.Budget(
            "team-daily-hard-cap",
            scope={"team": "*"},
            window="day",
            limit_usd=hard_cap_usd,
            action="block",
            thresholds=[],
        ),
    ]


def print_alert(alert: Alert) -> None:
    print(f"alert: {alert.message}", flush=True)


def main() -> int:
    topic_arn = os.environ.get("BUDGET_ALERTS_TOPIC_ARN")
    if not topic_arn:
        print(
            "set BUDGET_ALERTS_TOPIC_ARN to the SNS topic that should receive budget alerts", file=sys.stderr
        )
        return 2
    sns = boto3.client("sns", region_name=region(), endpoint_url=os.environ.get("SNS_ENDPOINT_URL") or None)
    sink = SnsSink(topic_arn, client=sns)
    budgets = team_budgets(
        os.environ.get("TEAM_SOFT_CAP_USD", "20.00"), os.environ.get("TEAM_HARD_CAP_USD", "25.00")
    )
    calls = 0
    # Closing the ledger (end of the with block) drains the SNS queue before the process exits.
    with Ledger("memory://", budgets, alert_sinks=[sink, print_alert]) as ledger:
        client = bb.wrap(bedrock_client(), ledger=ledger, attribution={"app": "search-assistant"})
        with bb.attribute(team=TEAM):
            for _ in range(int(os.environ.get("DEMO_CALLS", "100"))):
                try:
                    client.converse(
                        modelId=MODEL,
                        messages=[{"role": "user", "content": [{"text": "Rewrite this query for search."}]}],
                        inferenceConfig={"maxTokens": 200},
                    )
                except bb.BudgetExceededError as exc:
                    print(f"blocked by {exc.budget} after {calls} calls; resets at {exc.resets_at}")
                    break
                calls += 1
        spent = ledger.read("team-daily-soft-cap", {"team": TEAM}).spent_usd
    print(f"calls={calls} spent_usd={spent} sns_published={sink.sent} sns_failed={sink.failed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
