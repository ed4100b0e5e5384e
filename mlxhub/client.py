"""gRPC clients for the hub's services, with the API key attached, and error text
a person can act on (status message plus field violations, no traceback)."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2

from mlxhub.config import Settings, load_settings
from mlxhub.errors import status_of
from mlxhub.v1 import inference_pb2_grpc, registry_pb2_grpc, trainer_pb2_grpc

STUBS = {
    "registry": registry_pb2_grpc.RegistryServiceStub,
    "trainer": trainer_pb2_grpc.TrainerServiceStub,
    "inference": inference_pb2_grpc.InferenceServiceStub,
}


class _Metadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Adds fixed metadata (the bearer key) to every call, so callers never forget it."""

    def __init__(self, metadata: list[tuple[str, str]]) -> None:
        self._metadata = metadata

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        class Details(grpc.ClientCallDetails):
            pass

        new = Details()
        new.method = details.method
        new.timeout = details.timeout
        new.credentials = details.credentials
        new.wait_for_ready = getattr(details, "wait_for_ready", None)
        new.compression = getattr(details, "compression", None)
        new.metadata = [*(details.metadata or ()), *self._metadata]
        return new

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)


def auth_metadata(settings: Settings | None = None) -> list[tuple[str, str]]:
    """`authorization: Bearer <MLXHUB_API_KEY>` when that variable is set."""
    key = (settings or load_settings()).api_key
    return [("authorization", f"Bearer {key}")] if key else []


def channel(settings: Settings, service: str = "registry",
            metadata: list[tuple[str, str]] | None = None) -> grpc.Channel:
    """An insecure channel to `service` whose every call carries `metadata` (default: the API key, if any)."""
    raw = grpc.insecure_channel(settings.address(service))
    metadata = auth_metadata(settings) if metadata is None else metadata
    return grpc.intercept_channel(raw, _Metadata(metadata)) if metadata else raw


def connect(settings: Settings, service: str = "registry"):
    """A stub for `service` ("registry", "trainer" or "inference")."""
    return STUBS[service](channel(settings, service))


def format_error(error: grpc.RpcError, address: str | None = None) -> str:
    """One `error: ...` line, then one indented line per field violation."""
    status = status_of(error)
    code = error.code() if hasattr(error, "code") else None
    message = status.message or (code.name if code else "unknown error")
    if code == grpc.StatusCode.UNAVAILABLE and address:
        message = f"cannot reach {address} ({message}); is `mlx-hub up` running?"
    lines = [f"error: {message}"]
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            lines += [f"  {v.field}: {v.description}" for v in bad.field_violations]
    return "\n".join(lines)
