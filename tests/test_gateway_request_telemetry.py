"""What the gateway records per request, through the real registry: a SERVER span that continues
the caller's trace and carries the HTTP attributes, and (at DEBUG only) one access line naming
the request, its status and its request id."""

from __future__ import annotations

import logging

import httpx
from opentelemetry.trace import SpanKind, StatusCode

from gateway.server import running

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{CALLER_TRACE}-b7ad6b7169203331-01"


def test_the_server_span_continues_the_callers_trace_with_http_attributes(registry, settings, finished_spans):
    with running(settings) as base, httpx.Client(base_url=base) as client:
        missing = client.get("/v1/models/nowhere", headers={"traceparent": TRACEPARENT, "user-agent": "probe/1"})
        assert client.get("/v1/models?pageSize=1").status_code == 200
    assert missing.status_code == 404, missing.text
    span = next(s for s in finished_spans() if s.name == "GET /v1/models/nowhere")
    assert span.kind == SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == CALLER_TRACE
    assert format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    attributes = dict(span.attributes)
    assert attributes["http.request.method"] == "GET"
    assert attributes["url.path"] == "/v1/models/nowhere"
    assert "url.query" not in attributes
    assert attributes["user_agent.original"] == "probe/1"
    assert attributes["http.response.status_code"] == missing.status_code
    assert attributes["mlxhub.route"] == "/mlxhub.v1.RegistryService/GetModel"
    assert span.status.status_code != StatusCode.ERROR  # a 4xx is the client's error, not the server's
    listed = next(s for s in finished_spans() if s.name == "GET /v1/models")
    assert listed.attributes["url.query"] == "pageSize=1"
    assert format(listed.context.trace_id, "032x") != CALLER_TRACE  # no traceparent: a trace of its own
    upstream = next(s for s in finished_spans() if s.name == "/mlxhub.v1.RegistryService/GetModel"
                    and format(s.context.trace_id, "032x") == CALLER_TRACE)
    assert upstream.parent.span_id == span.context.span_id  # the registry's span is the gateway span's child


def test_the_access_line_is_logged_at_debug_only(registry, settings, caplog):
    with running(settings) as base, httpx.Client(base_url=base) as client:
        with caplog.at_level(logging.INFO, logger="gateway.access"):
            assert client.get("/v1/models/quiet").status_code == 404
        assert not [r for r in caplog.records if r.name == "gateway.access"]
        with caplog.at_level(logging.DEBUG, logger="gateway.access"):
            answered = client.get("/v1/models/loud", headers={"x-request-id": "req-42"})
    (line,) = [r.getMessage() for r in caplog.records if r.name == "gateway.access"]
    assert line.startswith(f"GET /v1/models/loud {answered.status_code} ")
    assert "route=/mlxhub.v1.RegistryService/GetModel" in line and "request_id=req-42" in line
