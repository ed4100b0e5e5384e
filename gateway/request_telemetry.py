"""What the gateway records about each HTTP request, in one pass: its server span, its RED
metrics, and (at DEBUG) one access-log line.

The span comes from the OpenTelemetry API directly rather than its ASGI middleware, which
gathered a dozen attributes from the scope before knowing whether the span would be kept and
cost the gateway a third of its time per request; here attributes are built only for a span
that records. The access line is logged once, by the gateway, instead of uvicorn's access log
on the serving path: `MLXHUB_LOG_LEVEL=DEBUG` turns it on, with the request id and trace id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlxhub.telemetry import HTTP_DURATION, HTTP_REQUESTS

access_log = logging.getLogger("gateway.access")

# Label sets seen so far -> their metric children (prometheus_client's `labels()` locks and
# rebuilds the key on every call). Bounded, since a client chooses the method it sends.
_MAX_CACHED_LABELS = 4096


class RequestTelemetryMiddleware:
    """One SERVER span per request (named `<METHOD> <path>`, child of an incoming `traceparent`),
    request count and duration per route template and status, and the access line."""

    def __init__(self, app: ASGIApp, route_label: Callable[[str, str], str]) -> None:
        self.app = app
        self.route_label = route_label
        self.tracer = trace.get_tracer("gateway")
        self.trace_headers = {name.encode() for name in propagate.get_global_textmap().fields}
        self.durations: dict[tuple[str, str], object] = {}
        self.counts: dict[tuple[str, str, int], object] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        route = self.route_label(method, scope.get("raw_path", b"").decode("latin-1") or path)
        carrier = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in scope["headers"] if name in self.trace_headers}
        parent = propagate.extract(carrier) if carrier else None
        status = 500  # unless a response starts: an exception the app did not answer

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        # The extracted context (trace and baggage) is current for the whole request, under the span.
        span = self.tracer.start_span(f"{method} {path}", context=parent, kind=SpanKind.SERVER)
        token = context.attach(trace.set_span_in_context(span, parent))
        recording = span.is_recording()
        if recording:
            span.set_attributes(_request_attributes(scope, route))
        failure: BaseException | None = None
        try:
            await self.app(scope, receive, send_recording)
        except BaseException as error:
            failure = error
            raise
        finally:
            seconds = time.perf_counter() - started
            if recording:
                span.set_attribute("http.response.status_code", status)
                if failure is not None:
                    span.record_exception(failure)
                    span.set_status(Status(StatusCode.ERROR, f"{type(failure).__name__}: {failure}"))
                elif status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            self._count(route, method, status, seconds)
            if access_log.isEnabledFor(logging.DEBUG):
                access_log.debug("%s %s %d %.2fms route=%s request_id=%s", method, path, status, seconds * 1000,
                                 route, scope.get("state", {}).get("request_id", ""))
            context.detach(token)
            span.end()

    def _count(self, route: str, method: str, status: int, seconds: float) -> None:
        duration = self.durations.get((route, method))
        if duration is None:
            duration = HTTP_DURATION.labels(route, method)
            if len(self.durations) < _MAX_CACHED_LABELS:
                self.durations[(route, method)] = duration
        duration.observe(seconds)
        count = self.counts.get((route, method, status))
        if count is None:
            count = HTTP_REQUESTS.labels(route, method, str(status))
            if len(self.counts) < _MAX_CACHED_LABELS:
                self.counts[(route, method, status)] = count
        count.inc()


def _request_attributes(scope: Scope, route: str) -> dict[str, str | int]:
    """The HTTP server span attributes of OpenTelemetry's semantic conventions that the scope has."""
    attributes: dict[str, str | int] = {
        "http.request.method": scope["method"],
        "url.scheme": scope.get("scheme", "http"),
        "url.path": scope["path"],
        "network.protocol.version": scope.get("http_version", ""),
        "mlxhub.route": route,
    }
    if scope.get("query_string"):
        attributes["url.query"] = scope["query_string"].decode("latin-1")
    server, client = scope.get("server"), scope.get("client")
    if server:
        attributes["server.address"], attributes["server.port"] = server[0], server[1] or 0
    if client:
        attributes["client.address"], attributes["client.port"] = client[0], client[1] or 0
    for name, value in scope["headers"]:
        if name == b"user-agent":
            attributes["user_agent.original"] = value.decode("latin-1")
    return attributes
