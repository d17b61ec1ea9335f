"""The billable operations, as the proxy names them (defined with the pipeline core)."""

from bedrock_budget.pipeline.operations import BILLABLE, Operation

__all__ = ["BILLABLE", "Operation"]
