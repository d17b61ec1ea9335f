"""Without the ``otel`` extra the package still imports, and using it says which extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Runs in a fresh interpreter where importing OpenTelemetry fails, as it does when it is not installed.
SCRIPT = textwrap.dedent(
    """
    import importlib.abc
    import sys

    class NoOpenTelemetry(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoOpenTelemetry())

    import bedrock_budget.otel
    import bedrock_budget.otel.attributes
    import bedrock_budget.otel.gauges
    import bedrock_budget.otel.listener
    import bedrock_budget.otel.names
    from bedrock_budget.metrics import LedgerBudgetSource
    from bedrock_budget.otel import BudgetGauges, OTelListener, OTelNotInstalledError

    assert not any(m.split(".")[0] == "opentelemetry" for m in sys.modules)
    class Ledger:
        def status(self):
            return []

    source = LedgerBudgetSource(Ledger())
    for build in (lambda: OTelListener(), lambda: BudgetGauges(source)):
        try:
            build()
        except OTelNotInstalledError as exc:
            assert isinstance(exc, ImportError)
            print(exc)
        else:
            raise AssertionError("built without OpenTelemetry")
    """
)


def test_the_package_imports_and_explains_the_missing_extra() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    messages = done.stdout.strip().splitlines()
    assert len(messages) == 2
    for message in messages:
        assert "pip install 'bedrock-budget[otel]'" in message
        assert "opentelemetry-api" in message
