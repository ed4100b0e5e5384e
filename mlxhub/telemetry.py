"""Observability shared by every process: Prometheus RED metrics per RPC, the
metrics endpoint, OpenTelemetry tracing (OTLP when OTEL_EXPORTER_OTLP_ENDPOINT
is set) and JSON logs that carry the trace id."""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
from collections.abc import Callable

import grpc
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from mlxhub.config import Settings, load_settings
from mlxhub.memory import RELEASE_EVERY_S, release_free_memory

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
RPC_REQUESTS = Counter("mlxhub_rpc_requests_total", "RPCs handled, by final status code", ["service", "method", "code"])
RPC_DURATION = Histogram(
    "mlxhub_rpc_duration_seconds",
    "RPC handling time (for streams: until the stream ends)",
    ["service", "method"],
    buckets=DURATION_BUCKETS,
)
RPC_STREAMS_OPEN = Gauge("mlxhub_rpc_streams_open", "Streaming RPCs being served (each holds a server thread)",
                         ["service"])

HTTP_REQUESTS = Counter("mlxhub_http_requests_total", "Gateway HTTP requests", ["route", "method", "status"])
HTTP_DURATION = Histogram(
    "mlxhub_http_duration_seconds", "Gateway HTTP handling time", ["route", "method"], buckets=DURATION_BUCKETS
)
PROJECTION_LAG = Gauge("mlxhub_projection_lag_events", "Events recorded but not yet in the read model", ["application"])
PUBLISH_LAG = Gauge("mlxhub_nats_publish_lag_events", "Events recorded but not yet published on NATS", ["application"])

log = logging.getLogger(__name__)


def _or_nan(read: Callable[[], float]) -> Callable[[], float]:
    """A scrape-time reading that reports NaN instead of failing /metrics when the database is away."""

    def reading() -> float:
        try:
            return read()
        except Exception:  # noqa: BLE001  (any database or pool error: the gauge is unknown, not the scrape broken)
            return math.nan

    return reading


def watch_lag(application: str, app, view, publisher=None) -> None:
    """Lag gauges computed at scrape time from the log's head and the tracked positions."""

    def head() -> int:
        return app.recorder.max_notification_id() or 0

    PROJECTION_LAG.labels(application).set_function(
        _or_nan(lambda: max(0, head() - (view.max_tracking_id(app.name) or 0))))
    if publisher is not None:
        PUBLISH_LAG.labels(application).set_function(_or_nan(publisher.lag))


def tracer_provider(service: str, settings: Settings | None = None, *, record_unexported: bool = True) -> TracerProvider:
    """A tracer provider named after the service; spans go out over OTLP when an endpoint is set
    (the exporter reads the rest of its OTEL_EXPORTER_OTLP_* options itself).

    With no endpoint and `record_unexported=False`, its sampler drops every span that does not
    continue a sampled caller's trace before the span is built: trace ids still go upstream and
    into the logs and events, but no span is built for nobody (the gateway's choice: recording
    its server span cost it about an eighth of its CPU per request)."""
    exporting = (settings or load_settings()).telemetry.tracing_enabled
    sampler = ParentBased(ALWAYS_OFF) if not (exporting or record_unexported) else None
    provider = TracerProvider(resource=Resource.create({"service.name": f"mlxhub-{service}"}), sampler=sampler)
    if exporting:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def setup_tracing(service: str, settings: Settings | None = None, *, record_unexported: bool = True) -> TracerProvider:
    """The process's tracer provider (`tracer_provider`), set as OpenTelemetry's global one."""
    provider = tracer_provider(service, settings, record_unexported=record_unexported)
    trace.set_tracer_provider(provider)
    return provider


def traced_channel(address: str) -> grpc.Channel:
    """A channel from one hub service to another: each call gets a client span and carries the
    current trace context, so the callee's spans (and the events it records) join the caller's trace."""
    from opentelemetry.instrumentation.grpc import client_interceptor, grpcext

    return grpcext.intercept_channel(grpc.insecure_channel(address), client_interceptor())


def start_metrics(settings: Settings, service: str) -> str | None:
    """Serve /metrics for this process on its metrics address (port 0 turns it off)."""
    host, _, port = settings.metrics_address(service).rpartition(":")
    if int(port) == 0:
        return None
    bind = host if settings.api_keys else "127.0.0.1"
    start_http_server(int(port), addr=bind)
    return f"http://{host}:{port}/metrics"


def serve_until_signalled(service: str, settings: Settings, server) -> None:
    """Run a started service until SIGINT / SIGTERM, with its /metrics endpoint; then stop it,
    letting in-flight calls finish within MLXHUB_SHUTDOWN_GRACE_S. Meanwhile the idle main thread
    gives freed heap memory back to the OS every few seconds (mlxhub.memory: otherwise resident
    memory grows to the sum of past peaks though what the service holds stays level)."""
    service_log = logging.getLogger(f"{service}_svc")
    service_log.info("metrics on %s", start_metrics(settings, service))
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    while not stopping.wait(RELEASE_EVERY_S):
        release_free_memory()
    service_log.info("stopping")
    server.stop(grace=settings.shutdown_grace_s)


def current_trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        trace_id = current_trace_id()
        if trace_id:
            entry["trace_id"] = trace_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(service: str, settings: Settings | None = None) -> None:
    """Structured JSON logs on stderr, one object per line, with the trace id when there is one."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(service))
    logging.basicConfig(level=(settings or load_settings()).telemetry.log_level, handlers=[handler], force=True)
