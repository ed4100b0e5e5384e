"""Names end where they end: a trailing newline is not a look-alike of a valid name."""

from __future__ import annotations

import grpc
import pytest
from test_registry import error_of, events, field_violations

from mlxhub.names import name_problem, parse_reference
from mlxhub.v1 import registry_pb2 as pb


@pytest.mark.parametrize("name", ["demo\n", "demo\r\n", "demo\n\n", "\ndemo"])
def test_a_name_with_a_newline_is_not_valid(name):
    assert name_problem(name, "model name") is not None


@pytest.mark.parametrize("reference", ["demo\n", "demo@prod\n", "demo/versions/1\n"])
def test_a_reference_with_a_trailing_newline_is_not_valid(reference):
    with pytest.raises(ValueError, match="not valid"):
        parse_reference(reference)


def test_registry_rejects_names_and_aliases_ending_in_a_newline(registry_stub):
    error = error_of(registry_stub.CreateModel, pb.CreateModelRequest(name="demo\n"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violations(error) == ["name"]
    assert events(registry_stub) == []
    registry_stub.CreateModel(pb.CreateModelRequest(name="demo"))
    error = error_of(registry_stub.SetAlias, pb.SetAliasRequest(name="demo", alias="prod\n", version=1))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "alias" in field_violations(error)
    error = error_of(registry_stub.GetModel, pb.GetModelRequest(name="demo\n"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = error_of(registry_stub.ResolveModelReference, pb.ResolveModelReferenceRequest(reference="demo\n"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
