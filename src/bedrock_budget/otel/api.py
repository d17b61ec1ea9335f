"""The one place that imports the OpenTelemetry API, on first use, so the package imports without it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bedrock_budget.otel.names import METER_NAME

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter, MeterProvider

INSTALL_HINT = "install the extra: pip install 'bedrock-budget[otel]'"


class OTelNotInstalledError(ImportError):
    """The OpenTelemetry API (the ``otel`` extra) is not installed."""


def get_meter(meter_provider: MeterProvider | None) -> Meter:
    """Our meter from ``meter_provider``, or from the global provider the application configured."""
    try:
        from opentelemetry import metrics
    except ImportError as exc:
        raise OTelNotInstalledError(
            f"bedrock-budget's OpenTelemetry metrics need the opentelemetry-api package; {INSTALL_HINT}"
        ) from exc
    from bedrock_budget import __version__

    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    return provider.get_meter(METER_NAME, __version__)
