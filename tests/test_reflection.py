"""Server reflection as `grpcurl describe` uses it: FileContainingSymbol with the full name of a service,
a method or a message, then the symbol looked up in the files that come back. Every service is served
by mlxhub/serving.py, so the registry and the trainer stand for all of them."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


def ask(channel: grpc.Channel, symbol: str) -> reflection_pb2.ServerReflectionResponse:
    """One FileContainingSymbol request on the reflection stream, as grpcurl sends it."""
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
    (response,) = stub.ServerReflectionInfo(iter([request]), timeout=10)
    return response


@pytest.fixture
def registry_channel(registry, settings):
    channel = grpc.insecure_channel(settings.address("registry"))
    yield channel
    channel.close()


@pytest.mark.parametrize("symbol, file", [
    ("mlxhub.v1.RegistryService.ListModels", "mlxhub/v1/registry.proto"),
    ("mlxhub.v1.RegistryService.ReadEvents", "mlxhub/v1/registry.proto"),
    ("grpc.health.v1.Health.Check", "grpc_health/v1/health.proto"),
    ("grpc.health.v1.Health.Watch", "grpc_health/v1/health.proto"),
    ("grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo", "grpc_reflection/v1alpha/reflection.proto"),
    # what resolved before still does
    ("mlxhub.v1.RegistryService", "mlxhub/v1/registry.proto"),
    ("mlxhub.v1.ListModelsRequest", "mlxhub/v1/registry.proto"),
    ("grpc.health.v1.HealthCheckRequest.service", "grpc_health/v1/health.proto"),
])
def test_file_containing_symbol_resolves_methods(registry_channel, symbol, file):
    response = ask(registry_channel, symbol)
    assert not response.HasField("error_response"), response.error_response.error_message
    names = [descriptor_pb2.FileDescriptorProto.FromString(serialized).name
             for serialized in response.file_descriptor_response.file_descriptor_proto]
    assert names[0] == file  # the file itself first, then its dependencies


@pytest.mark.parametrize("symbol", ["mlxhub.v1.RegistryService.NoSuchMethod", "mlxhub.v1.NoSuchService.ListModels",
                                    "ListModels", ""])
def test_unknown_symbols_are_not_found(registry_channel, symbol):
    response = ask(registry_channel, symbol)
    assert response.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_describe_method_through_a_reflection_client(registry_channel):
    """grpc's own reflection client builds the method's descriptor from the server's answers alone."""
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(registry_channel))
    method = pool.FindMethodByName("mlxhub.v1.RegistryService.ReadEvents")
    assert method.input_type.full_name == "mlxhub.v1.ReadEventsRequest" and method.server_streaming
    assert "follow" in method.input_type.fields_by_name
    check = pool.FindMethodByName("grpc.health.v1.Health.Check")
    assert check.output_type.full_name == "grpc.health.v1.HealthCheckResponse"


def test_trainer_methods_resolve(trainer, settings):
    with grpc.insecure_channel(settings.address("trainer")) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        method = pool.FindMethodByName("mlxhub.v1.TrainerService.WatchTrainingJob")
        assert method.input_type.full_name == "mlxhub.v1.WatchTrainingJobRequest"
