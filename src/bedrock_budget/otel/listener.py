"""The per-call OpenTelemetry listener: ``bb.wrap(client, listeners=[OTelListener()])``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import bedrock_budget.otel.names as names
from bedrock_budget.otel.api import get_meter
from bedrock_budget.otel.attributes import AttributePolicy, Attributes

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, Meter, MeterProvider

    from bedrock_budget.pricing.table import PriceTable
    from bedrock_budget.records import CallRecord


class OTelListener:
    """Records every :class:`~bedrock_budget.records.CallRecord` as OpenTelemetry GenAI metrics.

    ``meter_provider``: where the instruments are created (default: the global provider your application
    set up with ``opentelemetry.metrics.set_meter_provider``). ``latest_experimental``: emit the newest
    GenAI draft instead of the default names (default: read ``OTEL_SEMCONV_STABILITY_OPT_IN``). Attribute
    bounds (``app_labels``, ``user_labels``, ``top_n``) work as for
    :class:`~bedrock_budget.metrics.PrometheusListener`; see :mod:`bedrock_budget.otel` for every name.
    """

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        *,
        latest_experimental: bool | None = None,
        user_labels: bool | Iterable[str] = False,
        top_n: int | None = None,
        app_labels: int | Iterable[str] = 50,
        app_key: str = "app",
        user_key: str = "user",
        server_address: str | None = None,
        server_port: int = 443,
        price_table: PriceTable | None = None,
    ) -> None:
        if price_table is None:
            from bedrock_budget.pricing.table import default_price_table

            price_table = default_price_table()
        self._attributes = AttributePolicy(
            price_table,
            user_labels=user_labels,
            top_n=top_n,
            app_labels=app_labels,
            app_key=app_key,
            user_key=user_key,
            server_address=server_address,
            server_port=server_port,
        )
        meter = get_meter(meter_provider)
        self.latest_experimental = (
            names.latest_experimental() if latest_experimental is None else latest_experimental
        )
        self._duration = meter.create_histogram(
            names.OPERATION_DURATION,
            unit=names.UNIT_SECONDS,
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=names.DURATION_BUCKETS,
        )
        self._first_chunk = meter.create_histogram(
            names.TIME_TO_FIRST_CHUNK,
            unit=names.UNIT_SECONDS,
            description="Time from the request to the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=names.DURATION_BUCKETS,
        )
        self._cost = meter.create_counter(
            names.COST,
            unit=names.UNIT_USD,
            description="Priced cost of metered Bedrock calls in US dollars.",
        )
        self._requests = meter.create_counter(
            names.REQUESTS,
            unit=names.UNIT_REQUEST,
            description="Metered Bedrock calls by outcome (ok, error, blocked, partial).",
        )
        if self.latest_experimental:
            self._latest = _LatestTokenInstruments(meter)
        else:
            self._token_usage = meter.create_histogram(
                names.TOKEN_USAGE,
                unit=names.UNIT_TOKEN,
                description="Number of input and output tokens used.",
                explicit_bucket_boundaries_advisory=names.TOKEN_BUCKETS,
            )

    def __call__(self, record: CallRecord) -> None:
        attrs = self._attributes(record)
        self._requests.add(1, attrs.outcome)
        cost = record.cost
        if cost is not None:
            # Exact until here: the Decimal total becomes the nearest float only for the exporter.
            self._cost.add(float(cost.total_usd), attrs.spend)
        if record.outcome == "blocked":
            # The call never reached Bedrock: no operation to time and no tokens used.
            return
        self._duration.record(record.latency_seconds, attrs.failed)
        first_chunk = record.time_to_first_token_seconds
        if first_chunk is not None:
            self._first_chunk.record(first_chunk, attrs.operation)
        usage = record.usage
        # Bedrock's input count excludes cache reads and writes; the conventions' input count includes them.
        input_tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        if self.latest_experimental:
            self._latest.record(record, input_tokens, attrs.failed, attrs.token_counts)
        elif record.usage_source != "none":
            self._token_usage.record(input_tokens, attrs.input_tokens)
            self._token_usage.record(usage.output_tokens, attrs.output_tokens)


class _LatestTokenInstruments:
    """The newest draft's token metrics: counters per token kind, histograms per direction."""

    def __init__(self, meter: Meter) -> None:
        def counter(name: str, description: str) -> Counter:
            return meter.create_counter(name, unit=names.UNIT_TOKEN, description=description)

        def histogram(name: str, description: str) -> Histogram:
            return meter.create_histogram(
                name,
                unit=names.UNIT_TOKEN,
                description=description,
                explicit_bucket_boundaries_advisory=names.TOKEN_BUCKETS,
            )

        self.input = counter(names.USAGE_INPUT_TOKENS, "Input tokens used, including cached tokens.")
        self.output = counter(names.USAGE_OUTPUT_TOKENS, "Output tokens used, including reasoning tokens.")
        self.cache_read = counter(names.USAGE_CACHE_READ_TOKENS, "Input tokens served from the prompt cache.")
        self.cache_write = counter(
            names.USAGE_CACHE_WRITE_TOKENS, "Input tokens written to the prompt cache."
        )
        self.per_call_input = histogram(names.OPERATION_INPUT_TOKENS, "Input tokens per inference operation.")
        self.per_call_output = histogram(
            names.OPERATION_OUTPUT_TOKENS, "Output tokens per inference operation."
        )

    def record(
        self,
        record: CallRecord,
        input_tokens: int,
        failed: Attributes,
        counted: Attributes,
    ) -> None:
        usage = record.usage
        # The draft records every inference operation, failed ones with 0 and an unknown modality.
        self.input.add(input_tokens, counted)
        self.output.add(usage.output_tokens, counted)
        self.cache_read.add(usage.cache_read_tokens, counted)
        self.cache_write.add(usage.cache_write_tokens, counted)
        self.per_call_input.record(input_tokens, failed)
        self.per_call_output.record(usage.output_tokens, failed)
