"""Where the reviewed price tables live once installed.

They ship as the package ``bedrock_budget.prices`` (mapped from the repository's prices/ folder by
pyproject's package-dir); resolving them through importlib finds them in a wheel and in an editable
checkout alike.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["BUNDLED_PRICES"]

BUNDLED_PRICES = Path(str(resources.files("bedrock_budget.prices")))
