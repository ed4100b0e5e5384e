"""The server interceptors every hub service installs (assembled, in order, by `mlxhub.serving`):
RED metrics per RPC, API-key auth, and the budget of streaming calls. Each is one concern; the
rules they apply live elsewhere (who a key is: `mlxhub.auth`; the metrics: `mlxhub.telemetry`)."""

from __future__ import annotations

import threading
import time

import grpc

from mlxhub.auth import OPEN_METHOD_PREFIXES, bearer_key, delegation_error
from mlxhub.errors import ResourceExhausted, Unauthenticated, abort
from mlxhub.telemetry import RPC_DURATION, RPC_REQUESTS, RPC_STREAMS_OPEN


def code_name(context: grpc.ServicerContext, failed: bool) -> str:
    """The status code a call ended with, as the metrics label it."""
    code = context.code()
    if code is None:
        return "UNKNOWN" if failed else "OK"
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


class MetricsInterceptor(grpc.ServerInterceptor):
    """Rate, errors (by code) and duration of every RPC of a sync gRPC server."""

    def __init__(self, service: str) -> None:
        self.service = service

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        labels = (self.service, method)

        def record(context, started: float, failed: bool) -> None:
            RPC_DURATION.labels(*labels).observe(time.perf_counter() - started)
            RPC_REQUESTS.labels(*labels, code_name(context, failed)).inc()

        if handler.response_streaming:
            inner = handler.unary_stream

            def unary_stream(request, context):
                started, failed = time.perf_counter(), True
                try:
                    yield from inner(request, context)
                    failed = False
                finally:
                    record(context, started, failed and context.code() is None and not context.is_active())

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, handler.request_deserializer, handler.response_serializer
            )

        inner_unary = handler.unary_unary

        def unary_unary(request, context):
            started, failed = time.perf_counter(), True
            try:
                response = inner_unary(request, context)
                failed = False
                return response
            finally:
                record(context, started, failed)

        return grpc.unary_unary_rpc_method_handler(unary_unary, handler.request_deserializer, handler.response_serializer)


class ApiKeyInterceptor(grpc.ServerInterceptor):
    """Refuses every call without a known API key (when the hub has keys), and every call that asks
    to act on behalf of someone without the service credential; health and reflection stay open."""

    def __init__(self, api_keys: dict[str, str]) -> None:
        self.api_keys = api_keys

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if not self.api_keys or method.startswith(OPEN_METHOD_PREFIXES):
            return continuation(handler_call_details)
        metadata = handler_call_details.invocation_metadata
        key = bearer_key(metadata)
        if key in self.api_keys:
            error = delegation_error(metadata, self.api_keys[key])
            if error is None:
                return continuation(handler_call_details)
        else:
            problem = "wrong API key" if key else "missing API key"
            error = Unauthenticated(
                f"{problem}; send the header 'authorization: Bearer <key>' with a key from MLXHUB_API_KEYS")

        def reject(request, context):
            abort(context, error)

        handler = continuation(handler_call_details)
        if handler is not None and handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(reject)
        return grpc.unary_unary_rpc_method_handler(reject)


class StreamBudget(grpc.ServerInterceptor):
    """At most `limit` streaming calls at a time. Each holds a pool thread for its whole life (a
    followed event log or a watched job: hours), so unbounded they take every thread and unary calls
    and health checks queue behind them; the stream past the limit is answered RESOURCE_EXHAUSTED at
    once. Streams that auth refused never count (this interceptor comes after auth)."""

    def __init__(self, service: str, limit: int) -> None:
        self.service, self.limit = service, limit
        self.slots = threading.BoundedSemaphore(limit)

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or not handler.response_streaming:
            return handler
        if handler.request_streaming:
            return grpc.stream_stream_rpc_method_handler(self.admitted(handler.stream_stream),
                                                         handler.request_deserializer, handler.response_serializer)
        return grpc.unary_stream_rpc_method_handler(self.admitted(handler.unary_stream),
                                                    handler.request_deserializer, handler.response_serializer)

    def admitted(self, behavior):
        """`behavior` run within the budget: a slot taken before it starts, given back when it ends."""

        def stream(request, context):
            if not self.slots.acquire(blocking=False):
                abort(context, ResourceExhausted(
                    f"the {self.service} service already serves {self.limit} streams, its limit; close one or "
                    f"retry later (MLXHUB_{self.service.upper()}_MAX_STREAMS sets the limit)",
                    reason="TOO_MANY_STREAMS", metadata={"max_streams": str(self.limit)},
                ))
            RPC_STREAMS_OPEN.labels(self.service).inc()
            try:
                yield from behavior(request, context)
            finally:
                RPC_STREAMS_OPEN.labels(self.service).dec()
                self.slots.release()

        return stream
