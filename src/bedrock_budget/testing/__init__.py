"""A local, wire-faithful Bedrock runtime for tests.

:class:`FakeBedrock` serves the ``bedrock-runtime`` REST-JSON protocol on loopback. Real boto3 clients
talk to it through ``endpoint_url`` with dummy credentials, over real HTTP/1.1 and real AWS event-stream
framing, so everything botocore does (serialising, signing, retrying, parsing, raising) runs unchanged.

Quick start::

    from bedrock_budget.testing import FakeBedrock, UsageSpec

    with FakeBedrock() as fake:                    # 127.0.0.1, free port
        client = fake.client()                     # or boto3.client(..., endpoint_url=fake.endpoint_url)
        fake.set_usage("anthropic", UsageSpec(input_tokens=12, output_tokens=30, cache_read_tokens=5))
        fake.fail_next("converse", "ThrottlingException", times=2)
        r = client.converse(modelId="us.anthropic.claude-3-5-haiku-20241022-v1:0", messages=[...])
        assert r["ResponseMetadata"]["RetryAttempts"] == 2
        assert fake.calls("converse")[-1].usage.input_tokens == 12

With pytest, the ``fake_bedrock`` and ``fake_bedrock_client`` fixtures (module
:mod:`bedrock_budget.testing.pytest_plugin`) give each test a fresh server. From a shell,
``bedrock-budget fake-bedrock --port 4010`` runs one until Ctrl-C.

Operations
    Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream, CountTokens, ApplyGuardrail,
    StartAsyncInvoke / GetAsyncInvoke / ListAsyncInvokes, and from the ``bedrock`` control plane
    GetInferenceProfile, GetProvisionedModelThroughput and ListFoundationModels (use
    :meth:`FakeBedrock.control_client`; fill the catalogue with :meth:`~FakeBedrock.set_foundation_models`),
    and the Price List Query API's GetProducts (JSON 1.1, ``NextToken`` paging, ``Filters``; use
    :meth:`FakeBedrock.pricing_client` and :meth:`~FakeBedrock.add_price_list_products`).

Model ids
    Base ids, geo/global profile ids (``us.``, ``eu.``, ``apac.``, ``jp.``, ``au.``, ``in.``, ``us-gov.``,
    ``global.``), foundation-model and inference-profile ARNs, custom-model ARNs (by their base model),
    and ARNs registered with :meth:`~FakeBedrock.add_inference_profile`,
    :meth:`~FakeBedrock.add_provisioned_model` or :meth:`~FakeBedrock.map_model`. An unknown provider is
    a ``ValidationException`` ("The provided model identifier is invalid."); an unregistered
    application-profile / provisioned / imported ARN is a ``ResourceNotFoundException``.

Families (InvokeModel bodies; see :data:`FAMILIES`)
    ========================  ====================================  ==========  =============
    family                    model ids                             body usage  token headers
    ========================  ====================================  ==========  =============
    ``anthropic``             ``anthropic.*`` (Messages API)        yes         yes
    ``nova``                  ``amazon.nova-*`` (text)              yes         yes
    ``titan-text``            ``amazon.titan-text-*``, ``-tg1``     yes         yes
    ``titan-embed``           ``amazon.titan-embed-*``              yes         yes
    ``titan-image``           ``amazon.titan-image-*``              n/a         no
    ``nova-canvas``           ``amazon.nova-canvas-*``              n/a         no
    ``nova-reel``             ``amazon.nova-reel-*`` (async only)   n/a         no
    ``llama``                 ``meta.llama*``                       yes         yes
    ``mistral``               ``mistral.*`` (prompt or messages)    no          yes
    ``cohere``                ``cohere.command*`` (legacy and R)    no          yes
    ``cohere-embed``          ``cohere.embed-*``                    no          yes
    ``ai21``                  ``ai21.*`` (Jamba)                    yes         yes
    ``deepseek``              ``deepseek.*`` (R1 prompt, V3 chat)   V3 only     yes
    ``openai`` / ``qwen``     ``openai.*`` / ``qwen.*``             yes         yes
    ``stability``             ``stability.*`` (current and SDXL)    n/a         no
    ========================  ====================================  ==========  =============

    Streams end with ``amazon-bedrock-invocationMetrics`` on the last chunk; Anthropic streams carry
    ``message_start`` / ``message_delta`` / ``message_stop`` usage. Generated text is filler
    ("lorem ipsum ..."), one word per output token (capped at 2,048 words); the prompt is never echoed.

Scripting (per target: ``"*"``, a family, a base model id, or the exact id sent; most specific wins)
    * :meth:`~FakeBedrock.set_usage` / :meth:`~FakeBedrock.configure`: fixed :class:`UsageSpec`,
      the prompt-proportional default (input = ceil(prompt bytes / 4), output = min(max tokens, 16)),
      or a callable ``(UsageContext) -> UsageSpec``; cache reads and 5m/1h cache writes.
    * ``latency`` / ``first_byte_delay``; ``served_service_tier`` / ``served_latency`` (answer
      "standard" to a request that asked for "optimized"); ``token_headers`` / ``body_usage`` /
      ``invocation_metrics`` switches to exercise fallbacks.
    * Errors: :meth:`~FakeBedrock.fail_next`, :meth:`~FakeBedrock.fail_nth`,
      :meth:`~FakeBedrock.fail_randomly` (seeded), :meth:`~FakeBedrock.fail_mid_stream` (exception event
      after *k* events → ``botocore.exceptions.EventStreamError``). HTTP errors carry Bedrock's status
      and ``x-amzn-ErrorType``, so botocore raises ``client.exceptions.<Code>`` and retries as it would.
    * Inspection: :attr:`~FakeBedrock.requests` / :meth:`~FakeBedrock.calls` return
      :class:`RecordedRequest` objects (operation, model id, headers, body, status, error, reported
      usage). Prompt text is kept only there, in memory; the fake logs nothing about requests.
    * Invocation logs: ``FakeBedrock(invocation_log_dir=...)`` writes Bedrock's model-invocation log records
      (ids and the counts each response reported, never prompt or completion) as gzip'd objects in the
      tree Bedrock writes to S3.

Speed
    TCP_NODELAY, HTTP/1.1 keep-alive, one ``sendall`` per response. One boto3 client reaches roughly
    550-750 calls/s on a 2-vCPU machine (``bench/fake_server_throughput.py``); botocore's own
    per-call work is the limit, not the server. Retry tests: botocore sleeps up to 1 s, then 2 s,
    between throttled attempts; patch ``botocore.retries.standard.ExponentialBackoff.delay_amount``
    to skip that.

Not supported
    InvokeModelWithBidirectionalStream (HTTP/2; boto3 cannot call it), InvokeGuardrailChecks, TLS (so no
    bearer-token auth: clients from :meth:`FakeBedrock.client` sign with SigV4 and dummy keys), tool-use
    and reasoning output, InvokeModel guardrail fields, prompt-management and prompt-router ARNs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from bedrock_budget._lazy_exports import lazy_exports

# Names load on first use: the pytest plugin lives in this package and is imported by every pytest run
# once bedrock-budget is installed, so importing the package must stay nearly free.
_EXPORTS: Final = {
    "AsyncStatus": ".async_jobs",
    "ERRORS": ".errors",
    "STREAM_EXCEPTIONS": ".errors",
    "ErrorInfo": ".errors",
    "FakeBedrock": ".fake",
    "serve": ".fake",
    "FAMILIES": ".families",
    "strip_geo": ".models",
    "OPERATIONS": ".scripting",
    "RecordedRequest": ".scripting",
    "GuardrailUsageSpec": ".usage",
    "ReportedUsage": ".usage",
    "UsageContext": ".usage",
    "UsageFn": ".usage",
    "UsageSpec": ".usage",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:
    from .async_jobs import AsyncStatus as AsyncStatus
    from .errors import ERRORS as ERRORS
    from .errors import STREAM_EXCEPTIONS as STREAM_EXCEPTIONS
    from .errors import ErrorInfo as ErrorInfo
    from .fake import FakeBedrock as FakeBedrock
    from .fake import serve as serve
    from .families import FAMILIES as FAMILIES
    from .models import strip_geo as strip_geo
    from .scripting import OPERATIONS as OPERATIONS
    from .scripting import RecordedRequest as RecordedRequest
    from .usage import GuardrailUsageSpec as GuardrailUsageSpec
    from .usage import ReportedUsage as ReportedUsage
    from .usage import UsageContext as UsageContext
    from .usage import UsageFn as UsageFn
    from .usage import UsageSpec as UsageSpec
