"""OpenTelemetry metrics for bedrock-budget (the ``otel`` extra: ``pip install 'bedrock-budget[otel]'``).

Importing this package needs nothing beyond bedrock-budget; the OpenTelemetry API is imported when a
listener or the gauges are built (without it they raise :class:`OTelNotInstalledError`)::

    import bedrock_budget as bb
    from bedrock_budget.otel import OTelListener

    client = bb.wrap(boto3.client("bedrock-runtime"), listeners=[OTelListener()])

Per call, with the GenAI semantic conventions' names (see :mod:`bedrock_budget.otel.names`):

=================================================  =========  =========  ===============================
metric                                             type       unit       attributes beyond the common
=================================================  =========  =========  ===============================
``gen_ai.client.operation.duration``               histogram  ``s``      error.type on failures
``gen_ai.client.operation.time_to_first_chunk``    histogram  ``s``      (streams only)
``gen_ai.client.token.usage``                      histogram  {token}    gen_ai.token.type, app [, user]
``bedrock_budget.client.cost``                     counter    USD        app [, user], error.type
``bedrock_budget.client.requests``                 counter    {request}  app [, user], outcome, error.type
=================================================  =========  =========  ===============================

Common attributes: ``gen_ai.operation.name``, ``gen_ai.provider.name`` (``aws.bedrock``),
``gen_ai.request.model``, ``gen_ai.response.model``, ``server.address``, ``server.port``. With
``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` the token histogram gives way to the newest
draft's ``gen_ai.client.inference.usage.{input,output,cache_read.input,cache_write.input}_tokens``
counters and ``gen_ai.client.inference.operation.{input,output}_tokens`` histograms.

Budget gauges (observable, read from the store when collected): :class:`BudgetGauges`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from bedrock_budget._lazy_exports import lazy_exports

_EXPORTS: Final = {
    "OTelListener": "bedrock_budget.otel.listener",
    "BudgetGauges": "bedrock_budget.otel.gauges",
    "OTelNotInstalledError": "bedrock_budget.otel.api",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:
    from bedrock_budget.otel.api import OTelNotInstalledError as OTelNotInstalledError
    from bedrock_budget.otel.gauges import BudgetGauges as BudgetGauges
    from bedrock_budget.otel.listener import OTelListener as OTelListener
