"""Helpers shared by the inference tests: register a model directory, read a stream."""

from __future__ import annotations

from pathlib import Path

from google.rpc import error_details_pb2

from mlxhub.errors import status_of
from mlxhub.v1 import inference_pb2 as ipb
from mlxhub.v1 import registry_pb2 as rpb


def register(registry_stub, name: str, directory: Path, alias: str = "") -> int:
    try:
        registry_stub.GetModel(rpb.GetModelRequest(name=name))
    except Exception:  # noqa: BLE001 - NOT_FOUND: create it
        registry_stub.CreateModel(rpb.CreateModelRequest(name=name))
    version = registry_stub.CreateModelVersion(
        rpb.CreateModelVersionRequest(name=name, artifact_path=str(directory))
    ).version.version
    if alias:
        registry_stub.SetAlias(rpb.SetAliasRequest(name=name, alias=alias, version=version))
    return version


def chat(model: str, text: str, **sampling) -> ipb.GenerateStreamRequest:
    return ipb.GenerateStreamRequest(model=model, messages=[ipb.ChatMessage(role="user", content=text)],
                                     sampling=ipb.SamplingParams(**sampling))


def field_violations(error) -> list[str]:
    fields = []
    for detail in status_of(error).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return fields
