"""Who and why, from one place: every event an aggregate records carries `meta` (principal,
request id, trace id) taken from the context of the current call.

A gRPC call sets that context once (`AuditContext`, installed by `mlxhub.serving`); work
that no call started (a trainer worker, the reaper) says who it acts as with `acting_as`.
Aggregates derive from `HubAggregate`, whose events all declare `meta` and get it filled
here, so no command signature threads a `meta` argument through. An `@event` method that
needs who did it (e.g. to record `created_by`) declares `meta: Meta | None = None` and
receives the event's own `meta`, also when the event is replayed.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import grpc
from eventsourcing.domain import Aggregate

from mlxhub.auth import principal_of
from mlxhub.telemetry import current_trace_id

Meta = dict[str, str]

NOBODY: Meta = {"principal": "", "request_id": "", "trace_id": ""}
_current: ContextVar[Meta | None] = ContextVar("mlxhub_audit_meta", default=None)


def current_meta() -> Meta:
    """principal, request id and trace id of the call (or `acting_as` block) running now."""
    meta = _current.get()
    if meta is None:
        return dict(NOBODY, trace_id=current_trace_id())
    return dict(meta)


def principal() -> str:
    return current_meta()["principal"]


@contextlib.contextmanager
def acting_as(principal: str, request_id: str = "", trace_id: str | None = None) -> Iterator[Meta]:
    """Record the events of this block as `principal`'s (trace id: the current span's, unless given)."""
    meta = {"principal": principal, "request_id": request_id,
            "trace_id": current_trace_id() if trace_id is None else trace_id}
    token = _current.set(meta)
    try:
        yield meta
    finally:
        _current.reset(token)


def call_meta(metadata, api_keys: dict[str, str]) -> Meta:
    """Who and why of a gRPC call, from its metadata: the authenticated principal, the caller's
    `x-request-id` (a fresh one if none) and the trace id (the current span's, else `traceparent`'s)."""
    first: dict[str, str] = {}
    for key, value in metadata or ():
        first.setdefault(key, value)  # a repeated key counts by its first value, as authorization does
    trace_id = current_trace_id()
    traceparent = first.get("traceparent", "")
    if not trace_id and isinstance(traceparent, str) and traceparent.count("-") >= 3:
        trace_id = traceparent.split("-")[1]
    return {
        "principal": principal_of(metadata, api_keys),
        "request_id": first.get("x-request-id") or str(uuid.uuid4()),
        "trace_id": trace_id,
    }


class AuditContext(grpc.ServerInterceptor):
    """Sets the audit context for the whole of each call (inside its tracing span, so the trace
    id is the call's). Placed after the auth interceptor: refused calls record nothing."""

    def __init__(self, api_keys: dict[str, str]) -> None:
        self.api_keys = api_keys

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        metadata = handler_call_details.invocation_metadata
        api_keys = self.api_keys

        def unary(behavior):
            def call(request, context):
                token = _current.set(call_meta(metadata, api_keys))
                try:
                    return behavior(request, context)
                finally:
                    _current.reset(token)

            return call

        def streaming(behavior):
            def call(request, context):
                token = _current.set(call_meta(metadata, api_keys))
                try:
                    yield from behavior(request, context)
                finally:
                    _current.reset(token)

            return call

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                unary(handler.unary_unary), handler.request_deserializer, handler.response_serializer)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                streaming(handler.unary_stream), handler.request_deserializer, handler.response_serializer)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                unary(handler.stream_unary), handler.request_deserializer, handler.response_serializer)
        return grpc.stream_stream_rpc_method_handler(
            streaming(handler.stream_stream), handler.request_deserializer, handler.response_serializer)


class HubAggregate(Aggregate):
    """An aggregate whose every event carries `meta`: who caused it and in which request and trace."""

    class Event(Aggregate.Event):
        meta: Meta

    @classmethod
    def _create(cls, event_class: Any, **kwargs: Any):  # type: ignore[override]
        if kwargs.get("meta") is None:
            kwargs["meta"] = current_meta()
        return super()._create(event_class, **kwargs)

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        if kwargs.get("meta") is None:
            kwargs["meta"] = current_meta()
        super().trigger_event(event_class, **kwargs)
