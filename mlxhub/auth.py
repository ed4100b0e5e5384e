"""API-key auth for the gRPC services, and who/why metadata for events.

When `MLXHUB_API_KEYS` is set, every RPC except health checks and reflection
needs `authorization: Bearer <key>`; the key's principal is recorded in the
metadata of every event the call causes.
"""

from __future__ import annotations

import uuid

import grpc

from mlxhub.errors import Unauthenticated, abort
from mlxhub.telemetry import current_trace_id

OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
ANONYMOUS = "anonymous"


def bearer_key(metadata) -> str:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.lower().startswith("bearer "):
            return value[7:].strip()
    return ""


class ApiKeyInterceptor(grpc.ServerInterceptor):
    def __init__(self, api_keys: dict[str, str]) -> None:
        self.api_keys = api_keys

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if not self.api_keys or method.startswith(OPEN_METHOD_PREFIXES):
            return continuation(handler_call_details)
        key = bearer_key(handler_call_details.invocation_metadata)
        if key in self.api_keys:
            return continuation(handler_call_details)
        problem = "wrong API key" if key else "missing API key"
        error = Unauthenticated(f"{problem}; send the header 'authorization: Bearer <key>' with a key from MLXHUB_API_KEYS")

        def reject(request, context):
            abort(context, error)

        handler = continuation(handler_call_details)
        if handler is not None and handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(reject)
        return grpc.unary_unary_rpc_method_handler(reject)


def call_metadata(context: grpc.ServicerContext, api_keys: dict[str, str]) -> dict[str, str]:
    """principal, request id and trace id of the current call, for event metadata."""
    metadata = dict(context.invocation_metadata() or ())
    principal = api_keys.get(bearer_key(context.invocation_metadata()), ANONYMOUS) if api_keys else ANONYMOUS
    trace_id = current_trace_id()
    traceparent = metadata.get("traceparent", "")
    if not trace_id and traceparent.count("-") >= 3:
        trace_id = traceparent.split("-")[1]
    return {
        "principal": principal,
        "request_id": metadata.get("x-request-id") or str(uuid.uuid4()),
        "trace_id": trace_id,
    }
