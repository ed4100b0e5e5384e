"""The registry as the trainer sees it: resolve the base model, look up datasets and
output models (forwarding the caller's authorization), and register the trained
adapter as a new version, with the service credential on behalf of the job's creator.
Registry errors come back as the same HubError codes."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2

from mlxhub.auth import service_metadata
from mlxhub.client import auth_metadata
from mlxhub.config import Settings
from mlxhub.errors import FailedPrecondition, HubError, InvalidArgument, NotFound, status_of
from mlxhub.telemetry import traced_channel
from mlxhub.v1 import registry_pb2, registry_pb2_grpc

TIMEOUT = 30.0


class Unavailable(HubError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


ERRORS = {grpc.StatusCode.NOT_FOUND: NotFound, grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
          grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition}


def hub_error(error: grpc.RpcError, field: str) -> HubError:
    """The registry's error, re-raised with the field of *our* request that caused it."""
    status = status_of(error)
    cls = ERRORS.get(error.code())
    if cls is None:
        error_cls = type("RegistryError", (HubError,), {"code": error.code(), "reason": error.code().name})
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            error_cls = Unavailable
        return error_cls(f"registry: {status.message}")
    resource = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
            info = error_details_pb2.ResourceInfo()
            detail.Unpack(info)
            resource = {"resource_type": info.resource_type, "resource_name": info.resource_name}
    return cls(f"{field}: {status.message}", field=field, **resource)


class RegistryClient:
    def __init__(self, settings: Settings) -> None:
        self.channel = traced_channel(settings.address("registry"))
        self.stub = registry_pb2_grpc.RegistryServiceStub(self.channel)
        self.service_key = settings.service_key
        # Calls the trainer makes on its own account: the service credential, else the operator's key.
        self.own_metadata = service_metadata(settings.service_key) or auth_metadata(settings)

    def _call(self, method: str, request, field: str, metadata):
        try:
            return getattr(self.stub, method)(request, timeout=TIMEOUT, metadata=metadata or self.own_metadata)
        except grpc.RpcError as error:
            raise hub_error(error, field) from None

    def resolve(self, reference: str, metadata=None) -> registry_pb2.ModelVersion:
        request = registry_pb2.ResolveModelReferenceRequest(reference=reference)
        return self._call("ResolveModelReference", request, "model", metadata).version

    def dataset(self, name: str, field: str = "dataset", metadata=None) -> registry_pb2.Dataset:
        return self._call("GetDataset", registry_pb2.GetDatasetRequest(name=name), field, metadata).dataset

    def model(self, name: str, field: str = "output_model", metadata=None) -> registry_pb2.Model:
        return self._call("GetModel", registry_pb2.GetModelRequest(name=name), field, metadata).model

    def create_version(self, request: registry_pb2.CreateModelVersionRequest,
                       on_behalf_of: str = "") -> registry_pb2.ModelVersion:
        """Register a version; recorded as `on_behalf_of`'s (the job's creator) when the service credential is set."""
        metadata = service_metadata(self.service_key, on_behalf_of) if on_behalf_of else None
        return self._call("CreateModelVersion", request, "output_model", metadata).version

    def close(self) -> None:
        self.channel.close()
