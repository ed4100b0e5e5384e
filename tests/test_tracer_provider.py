"""The tracer provider of a process: with no OTLP endpoint, a process that asks for it
(the gateway) records no span of its own, yet every span still has a valid trace id to pass
on; a sampled caller's trace, or an endpoint, records as before."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from mlxhub.config import load_settings
from mlxhub.telemetry import tracer_provider


def sampled_parent() -> trace.Context:
    parent = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(parent))


def test_without_an_endpoint_the_gateway_records_only_sampled_callers_traces(tmp_path):
    settings = load_settings({"MLXHUB_HOME": str(tmp_path)})
    tracer = tracer_provider("probe", settings, record_unexported=False).get_tracer("probe")
    own = tracer.start_span("own")
    assert not own.is_recording() and own.get_span_context().is_valid  # an id to pass on, nothing built
    continued = tracer.start_span("continued", context=sampled_parent())
    assert continued.is_recording() and continued.get_span_context().trace_id == 0x0AF7651916CD43DD8448EB211C80319C


def test_by_default_or_with_an_endpoint_every_span_records(tmp_path):
    quiet = load_settings({"MLXHUB_HOME": str(tmp_path)})
    assert tracer_provider("probe", quiet).get_tracer("probe").start_span("s").is_recording()
    exporting = load_settings({"MLXHUB_HOME": str(tmp_path), "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    provider = tracer_provider("probe", exporting, record_unexported=False)
    try:
        assert provider.get_tracer("probe").start_span("s").is_recording()
    finally:
        provider.shutdown()
