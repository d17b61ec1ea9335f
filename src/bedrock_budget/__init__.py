"""bedrock-budget: know and cap what AWS Bedrock costs you."""

from __future__ import annotations

__version__ = "0.1.0"
