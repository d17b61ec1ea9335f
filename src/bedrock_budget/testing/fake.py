"""The public face of the test bed: :class:`FakeBedrock` and :func:`serve`."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from .async_jobs import AsyncStatus
from .engine import Engine
from .invocation_log_writer import InvocationLogWriter
from .models import ACCOUNT_ID
from .scripting import LatencyName, ModelBehavior, RecordedRequest, ServiceTierName, normalize_operation
from .server import FakeBedrockServer
from .usage import GuardrailUsageSpec, UsageFn, UsageSpec

if TYPE_CHECKING:
    import boto3
    from botocore.config import Config
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_pricing import PricingClient

__all__ = ["FakeBedrock", "serve"]

_session_lock = threading.Lock()
_session: boto3.session.Session | None = None


def _shared_session() -> boto3.session.Session:
    """One boto3 session for every fake client: loading service models once keeps fixtures fast."""
    global _session
    import boto3
    import botocore.session

    with _session_lock:
        if _session is None:
            # AWS_PROFILE is ignored: the fake needs no real profile, and a CI profile that does not
            # exist on the machine would otherwise fail every client.
            core = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
            _session = boto3.session.Session(
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                region_name="us-east-1",
                botocore_session=core,
            )
        return _session


class FakeBedrock:
    """A local, wire-faithful ``bedrock-runtime`` endpoint for tests.

    Real boto3 clients talk to it over HTTP (``endpoint_url``) with real event-stream framing. Use it as a
    context manager; it binds ``127.0.0.1`` on a free port unless told otherwise::

        with FakeBedrock() as fake:
            client = fake.client()
            fake.set_usage("anthropic.claude-3-5-haiku-20241022-v1:0", UsageSpec(input_tokens=12))
            client.converse(modelId="us.anthropic.claude-3-5-haiku-20241022-v1:0", messages=[...])
            assert fake.requests[-1].operation == "Converse"

    Behaviour is layered per *target*, least specific first: ``"*"`` (everything), a family name
    (``"anthropic"``, ``"nova"``, ``"titan-text"``, ``"llama"``, ...), a base model id, and the model id
    exactly as the caller sent it (for instance a ``us.`` profile id or an ARN).

    ``invocation_log_dir`` turns on model-invocation logging: every answered Converse, ConverseStream,
    InvokeModel and InvokeModelWithResponseStream call leaves a record (ids and the token counts the
    response reported, never prompt or completion) in a gzip'd object under
    ``<dir>/AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/``, as Bedrock delivers
    them to S3, written before the response goes out.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        region: str = "us-east-1",
        invocation_log_dir: Path | str | None = None,
    ) -> None:
        self.region = region
        self._host = host
        self._port = port
        self._engine = Engine(region=region, invocation_logs=self._log_writer(invocation_log_dir))
        self._server: FakeBedrockServer | None = None
        self._thread: threading.Thread | None = None
        self._clients: list[Any] = []
        self._clients_lock = threading.Lock()

    def _log_writer(self, folder: Path | str | None) -> InvocationLogWriter | None:
        if folder is None:
            return None
        return InvocationLogWriter(folder, account_id=ACCOUNT_ID, region=self.region)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = FakeBedrockServer(self._host, self._port, self._engine)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.25}, name="fake-bedrock", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and every client :meth:`client` made."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
        server.stopping.set()
        stopper = threading.Thread(target=server.shutdown, name="fake-bedrock-stop", daemon=True)
        stopper.start()
        while stopper.is_alive():
            self._wake(server)
            stopper.join(0.02)
        server.close_connections()
        server.server_close()
        thread.join(5)
        self._server = None
        self._thread = None

    @staticmethod
    def _wake(server: FakeBedrockServer) -> None:
        # serve_forever only notices shutdown between polls; a connection attempt ends the wait at once.
        host, port = server.server_address[:2]
        try:
            with socket.create_connection((str(host), int(port)), timeout=0.2):
                pass
        except OSError:
            pass

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return self._require_server().server_name

    @property
    def port(self) -> int:
        return self._require_server().server_port

    @property
    def endpoint_url(self) -> str:
        host = self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def _require_server(self) -> FakeBedrockServer:
        if self._server is None:
            raise RuntimeError("FakeBedrock is not running; use it as a context manager or call start()")
        return self._server

    # --- clients -------------------------------------------------------------------------------

    def _make_client(self, service: str, config: Config | None, kwargs: dict[str, Any]) -> Any:
        from botocore.config import Config

        # SigV4 with dummy keys: botocore refuses bearer tokens (AWS_BEARER_TOKEN_BEDROCK) over plain HTTP.
        # (passed as a mapping: older botocore stubs do not know the option yet).
        defaults: dict[str, Any] = {"auth_scheme_preference": "sigv4"}
        merged = Config(**defaults)
        if config is not None:
            merged = merged.merge(config)
        session = _shared_session()
        with _session_lock:
            client = session.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                config=merged,
                **kwargs,
            )
        with self._clients_lock:
            self._clients.append(client)
        return client

    def client(self, *, config: Config | None = None, **kwargs: Any) -> BedrockRuntimeClient:
        """A boto3 ``bedrock-runtime`` client pointed at this server with dummy credentials.

        ``config`` is merged over the defaults (for example ``Config(retries={"total_max_attempts": 1})``);
        other keyword arguments go to ``Session.client``. Clients are closed when the fake stops.
        """
        client: BedrockRuntimeClient = self._make_client("bedrock-runtime", config, kwargs)
        return client

    def control_client(self, *, config: Config | None = None, **kwargs: Any) -> BedrockClient:
        """A boto3 ``bedrock`` (control plane) client for ``get_inference_profile`` and
        ``get_provisioned_model_throughput`` against this server."""
        client: BedrockClient = self._make_client("bedrock", config, kwargs)
        return client

    def pricing_client(self, *, config: Config | None = None, **kwargs: Any) -> PricingClient:
        """A boto3 ``pricing`` (Price List Query API) client for ``get_products`` against this server."""
        client: PricingClient = self._make_client("pricing", config, kwargs)
        return client

    # --- scripting -----------------------------------------------------------------------------

    def configure(
        self,
        target: str = "*",
        *,
        usage: UsageSpec | UsageFn | None = None,
        latency: float | None = None,
        first_byte_delay: float | None = None,
        token_headers: bool | None = None,
        body_usage: bool | None = None,
        invocation_metrics: bool | None = None,
        served_service_tier: ServiceTierName | None = None,
        served_latency: LatencyName | None = None,
        stream_deltas: int | None = None,
    ) -> None:
        """Change how ``target`` behaves; arguments left as ``None`` keep their current value.

        * ``usage``: a :class:`UsageSpec` or a callable ``(UsageContext) -> UsageSpec``.
        * ``latency``: seconds until the response is complete (``metrics.latencyMs``, the
          invocation-latency header and ``invocationLatency`` report it).
        * ``first_byte_delay``: seconds before the first byte; streams send their first event then and
          spread the rest until ``latency`` (``firstByteLatency`` reports it).
        * ``token_headers``: send the ``x-amzn-bedrock-*-token-count`` headers on InvokeModel (default:
          on for text and embedding families, off for image and video families).
        * ``body_usage``: include usage in native InvokeModel bodies and stream chunks (default on).
        * ``invocation_metrics``: put ``amazon-bedrock-invocationMetrics`` on the last stream chunk.
        * ``served_service_tier`` / ``served_latency``: what the response says served the request,
          whatever was asked (default: echo the request; nothing when it asked nothing).
        * ``stream_deltas``: how many text pieces a streamed answer is split into (default 3).
        """
        for name, value in (("latency", latency), ("first_byte_delay", first_byte_delay)):
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
        if stream_deltas is not None and stream_deltas < 1:
            raise ValueError("stream_deltas must be >= 1")
        self._engine.behaviors.update(
            target,
            ModelBehavior(
                usage=usage,
                latency=latency,
                first_byte_delay=first_byte_delay,
                token_headers=token_headers,
                body_usage=body_usage,
                invocation_metrics=invocation_metrics,
                served_service_tier=served_service_tier,
                served_latency=served_latency,
                stream_deltas=stream_deltas,
            ),
        )

    def set_usage(self, target: str, usage: UsageSpec | UsageFn) -> None:
        """Shorthand for ``configure(target, usage=usage)``."""
        self.configure(target, usage=usage)

    def set_latency(
        self, latency: float | None = None, *, first_byte_delay: float | None = None, target: str = "*"
    ) -> None:
        """Shorthand for ``configure(target, latency=..., first_byte_delay=...)``."""
        self.configure(target, latency=latency, first_byte_delay=first_byte_delay)

    def fail_next(
        self,
        operation: str | None = None,
        error: str = "ThrottlingException",
        *,
        times: int = 1,
        model: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching calls with ``error`` (an HTTP error, before any body).

        ``operation`` is an API or boto3 name (``"Converse"`` / ``"converse"``), ``None`` for any;
        ``model`` matches the id as sent, the base model id or the family name.
        """
        self._engine.failures.add(error, operation=operation, model=model, message=message, times=times)

    def fail_nth(
        self,
        n: int,
        operation: str | None = None,
        error: str = "ThrottlingException",
        *,
        model: str | None = None,
        message: str | None = None,
    ) -> None:
        """Fail only the ``n``-th matching call (1-based) counted from now."""
        self._engine.failures.add(error, operation=operation, model=model, message=message, times=1, nth=n)

    def fail_randomly(
        self,
        probability: float,
        *,
        seed: int,
        operation: str | None = None,
        error: str = "ThrottlingException",
        model: str | None = None,
        message: str | None = None,
        times: int | None = None,
    ) -> None:
        """Fail each matching call with ``probability``; the same ``seed`` gives the same sequence."""
        self._engine.failures.add(
            error,
            operation=operation,
            model=model,
            message=message,
            times=times,
            probability=probability,
            seed=seed,
        )

    def fail_mid_stream(
        self,
        after_events: int,
        *,
        operation: str | None = None,
        error: str = "modelStreamErrorException",
        times: int = 1,
        model: str | None = None,
        message: str | None = None,
    ) -> None:
        """Send ``after_events`` normal events, then an exception event (``throttlingException``,
        ``modelStreamErrorException``, ``validationException``, ``internalServerException``,
        ``serviceUnavailableException``, ``modelTimeoutException``), then end the stream. botocore
        raises it as ``EventStreamError`` while the caller iterates."""
        self._engine.failures.add(
            error, operation=operation, model=model, message=message, times=times, after_events=after_events
        )

    def set_guardrail_usage(self, spec: GuardrailUsageSpec, guardrail_id: str = "*") -> None:
        """Units and action ApplyGuardrail (and Converse guardrail traces) report for a guardrail."""
        self._engine.set_guardrail_usage(spec, guardrail_id)

    def map_model(self, identifier: str, model_id: str) -> None:
        """Make an opaque identifier (imported-model, custom-model-deployment ARN, ...) serve ``model_id``."""
        self._engine.directory.map_model(identifier, model_id)

    def add_inference_profile(
        self, model_id: str, *, name: str | None = None, regions: Sequence[str] | None = None
    ) -> str:
        """Create an application inference profile for ``model_id`` (a base or ``us.``-style id) and
        return its ARN; runtime calls accept the ARN and the control plane describes it."""
        return self._engine.directory.add_application_profile(
            model_id, name, tuple(regions) if regions else None
        )

    def add_provisioned_model(
        self,
        model_id: str,
        *,
        name: str | None = None,
        model_units: int = 1,
        commitment_duration: Literal["OneMonth", "SixMonths"] | None = None,
    ) -> str:
        """Create a provisioned model serving ``model_id`` and return its ARN."""
        return self._engine.directory.add_provisioned(model_id, name, model_units, commitment_duration)

    def add_price_list_products(self, service_code: str, products: Iterable[Mapping[str, Any] | str]) -> None:
        """Serve these Price List products (objects, or the JSON strings GetProducts returns) from
        ``pricing.get_products(ServiceCode=service_code)``, after those already added."""
        self._engine.price_list.add_products(service_code, products)

    def load_price_list(self, data: Any) -> int:
        """Serve the products of saved Price List output (``aws pricing get-products`` responses, or bulk
        offer files) from GetProducts, each under its own service code; returns how many were added."""
        return self._engine.price_list.load(data)

    def set_price_list_products(self, service_code: str, products: Iterable[Mapping[str, Any] | str]) -> None:
        """Replace the products of one offer (to script a price change between two runs)."""
        self._engine.price_list.set_products(service_code, products)

    def set_foundation_models(self, summaries: Sequence[Mapping[str, Any]]) -> None:
        """The ``modelSummaries`` the control plane's ``list_foundation_models`` returns."""
        self._engine.price_list.set_foundation_models(summaries)

    def set_async_status(
        self, status: AsyncStatus, *, failure_message: str | None = None, invocation_arn: str | None = None
    ) -> None:
        """Status of one async job, or (without ``invocation_arn``) of jobs started from now on."""
        self._engine.jobs.set_status(status, failure_message, invocation_arn)

    def set_invocation_log_dir(self, folder: Path | str | None) -> None:
        """Write invocation logs under ``folder`` from now on (``None``: stop). :meth:`reset` goes back
        to the constructor's ``invocation_log_dir``."""
        self._engine.invocation_logs = self._log_writer(folder)

    @property
    def invocation_log_dir(self) -> Path | None:
        writer = self._engine.invocation_logs
        return writer.root if writer is not None else None

    # --- inspection ----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        return self._engine.log.snapshot()

    @property
    def request_count(self) -> int:
        return len(self._engine.log)

    def calls(self, operation: str | None = None, *, model: str | None = None) -> list[RecordedRequest]:
        """Recorded requests for one operation and/or model (id as sent, base id or family)."""
        op = normalize_operation(operation) if operation is not None else None
        return [
            r
            for r in self._engine.log.snapshot()
            if (op is None or r.operation == op)
            and (model is None or model in (r.model_id, r.base_model_id, r.family))
        ]

    def clear_requests(self) -> None:
        self._engine.log.clear()

    @property
    def server_errors(self) -> list[BaseException]:
        """Exceptions raised while answering (a bug, or a usage callable that failed); such requests
        were answered with InternalServerException."""
        return list(self._engine.server_errors)

    def reset(self) -> None:
        """Forget all scripting, recorded requests, registered ARNs and async jobs."""
        self._engine.reset()


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    setup: Callable[[FakeBedrock], object] | None = None,
    invocation_log_dir: Path | str | None = None,
) -> None:
    """Run a fake Bedrock until interrupted (Ctrl-C or SIGTERM), printing its endpoint URL first.
    ``setup`` is called with the fake before that, to fill it (price lists, foundation models);
    ``invocation_log_dir`` turns on invocation logs (see :class:`FakeBedrock`)."""
    stop = threading.Event()
    previous: Any = None
    if threading.current_thread() is threading.main_thread():
        # SIGTERM (docker stop, CI teardown) ends the server as cleanly as Ctrl-C does.
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        with FakeBedrock(host, port, invocation_log_dir=invocation_log_dir) as fake:
            if setup is not None:
                setup(fake)
            print(f"fake Bedrock listening on {fake.endpoint_url} (Ctrl-C to stop)", flush=True)
            while not stop.wait(1.0):
                pass
    except KeyboardInterrupt:
        # Ctrl-C may land anywhere after the URL is printed, shutdown included: it is the normal way out.
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
