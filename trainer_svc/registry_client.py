"""The registry as the trainer sees it: resolve the base model, look up datasets and
output models (forwarding the caller's authorization), and register the trained
adapter as a new version, with the service credential on behalf of the job's creator.
Look-ups answer plain values (`BaseVersion`, `RegisteredDataset`); registry errors come
back as the same HubError codes."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2

from mlxhub.auth import service_metadata
from mlxhub.client import auth_metadata
from mlxhub.config import Settings
from mlxhub.errors import FailedPrecondition, HubError, InvalidArgument, NotFound, status_of
from mlxhub.telemetry import traced_channel
from mlxhub.v1 import registry_pb2, registry_pb2_grpc

TIMEOUT = 30.0


@dataclass(frozen=True)
class BaseVersion:
    """A resolved model version: `kind` is FULL or ADAPTER; `base_version` names an adapter's base."""

    model: str
    version: int
    kind: str
    artifact_path: str
    base_version: str = ""


@dataclass(frozen=True)
class RegisteredDataset:
    """A registered dataset: where it lies, what it hashed to, and its format (CHAT, COMPLETIONS, TEXT)."""

    name: str
    path: str
    sha256: str
    format: str


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

    def resolve(self, reference: str, metadata=None) -> BaseVersion:
        request = registry_pb2.ResolveModelReferenceRequest(reference=reference)
        v = self._call("ResolveModelReference", request, "model", metadata).version
        kind = registry_pb2.ModelVersionKind.Name(v.kind).removeprefix("MODEL_VERSION_KIND_")
        return BaseVersion(v.model, v.version, kind, v.artifact_path, v.base_version)

    def dataset(self, name: str, field: str = "dataset", metadata=None) -> RegisteredDataset:
        d = self._call("GetDataset", registry_pb2.GetDatasetRequest(name=name), field, metadata).dataset
        return RegisteredDataset(d.name, d.path, d.sha256, registry_pb2.DatasetFormat.Name(d.format).removeprefix(
            "DATASET_FORMAT_"))

    def model(self, name: str, field: str = "output_model", metadata=None) -> str:
        """The model's name, once the registry has it (NOT_FOUND naming `field` otherwise)."""
        return self._call("GetModel", registry_pb2.GetModelRequest(name=name), field, metadata).model.name

    def create_version(self, request: registry_pb2.CreateModelVersionRequest,
                       on_behalf_of: str = "") -> registry_pb2.ModelVersion:
        """Register a version; recorded as `on_behalf_of`'s (the job's creator) when the service credential is set."""
        metadata = service_metadata(self.service_key, on_behalf_of) if on_behalf_of else None
        return self._call("CreateModelVersion", request, "output_model", metadata).version

    def close(self) -> None:
        self.channel.close()
