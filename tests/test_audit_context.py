"""Who and why from one place: the AuditContext interceptor sets the call's principal, request id and
trace id for everything the call runs (unary and streaming), and nothing leaks past the call."""

from __future__ import annotations

from types import SimpleNamespace

import grpc

from mlxhub.audit import AuditContext, acting_as, current_meta

KEYS = {"k-alice": "alice"}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def call(handler_factory, behavior, metadata):
    handler = AuditContext(KEYS).intercept_service(
        lambda details: handler_factory(behavior), SimpleNamespace(method="/x.Y/Z", invocation_metadata=metadata))
    return handler


def test_a_unary_call_runs_as_its_caller_and_leaves_no_trace():
    seen = []
    metadata = (("authorization", "Bearer k-alice"), ("x-request-id", "req-7"), ("traceparent", TRACEPARENT))
    handler = call(grpc.unary_unary_rpc_method_handler, lambda request, context: seen.append(current_meta()),
                   metadata)
    handler.unary_unary(None, None)
    assert seen == [{"principal": "alice", "request_id": "req-7", "trace_id": "0af7651916cd43dd8448eb211c80319c"}]
    assert current_meta()["principal"] == ""  # after the call: nobody


def test_a_stream_runs_as_its_caller_for_every_message_and_gets_a_request_id():
    def behavior(request, context):
        yield current_meta()
        yield current_meta()

    handler = call(grpc.unary_stream_rpc_method_handler, behavior, (("authorization", "Bearer wrong"),))
    first, second = list(handler.unary_stream(None, None))
    assert first == second and first["principal"] == "anonymous" and len(first["request_id"]) == 36


def test_acting_as_nests_and_restores():
    with acting_as("worker/w1", "job-1", trace_id="t1"):
        with acting_as("trainer/reaper", trace_id=""):
            assert current_meta() == {"principal": "trainer/reaper", "request_id": "", "trace_id": ""}
        assert current_meta() == {"principal": "worker/w1", "request_id": "job-1", "trace_id": "t1"}
