"""The ``bedrock-budget demo`` workload, its live view and its budgets (budgets.yaml)."""
