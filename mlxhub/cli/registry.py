"""`mlx-hub whoami` and `mlx-hub stats`: what the registry says about you and about itself."""

from __future__ import annotations

from mlxhub.cli import rpc
from mlxhub.cli.output import JsonOpt, details, emit
from mlxhub.v1 import registry_pb2 as pb


def whoami(as_json: JsonOpt = False) -> None:
    """Who the registry takes you for (your API key's principal)."""
    response = rpc.call("WhoAmI", pb.WhoAmIRequest())
    emit(response, as_json, lambda r: f"{r.principal}" + ("" if r.auth_enabled else " (the hub has no API keys)"))


def stats(as_json: JsonOpt = False) -> None:
    """How many models, versions, datasets and aliases the registry holds."""
    response = rpc.call("GetRegistryStats", pb.GetRegistryStatsRequest())
    emit(response, as_json, lambda r: details("registry", [
        ("models", r.model_count), ("versions", r.version_count), ("datasets", r.dataset_count),
        ("aliases", r.alias_count), ("last event", r.last_event_position),
    ]))
