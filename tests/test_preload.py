"""Alias preloading: the versions that chosen aliases point to load without a request, at start
and when an alias moves (the old target is left to its keep-alive), within the memory budget;
a registry that is down at start does not hold the service, which preloads once it is up. The
engine's side on a tiny random llama, then the service against a real registry."""

from __future__ import annotations

import logging
import time

import grpc
import pytest
from inference_util import register
from test_inference_engine import make_adapter

from bench.tiny_model import make_tiny_model
from inference_svc import footprint, loader
from inference_svc.cache import ModelSpec
from inference_svc.decode.engine import Engine
from inference_svc.server import InferenceOptions, InferenceServer
from mlxhub.v1 import inference_pb2 as pb
from mlxhub.v1 import inference_pb2_grpc
from mlxhub.v1 import registry_pb2 as rpb

FMT = loader.FLOAT32


def eventually(check, timeout: float = 90.0):
    """Poll `check` until it returns something true (loads run in threads of their own)."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)
    return result


def engine_with(budget_bytes: int) -> Engine:
    return Engine(lambda s: loader.load(s.path, s.adapter_path, FMT), budget_bytes, 3600.0, max_running=4,
                  max_queued=8, estimate=lambda s: footprint.served_bytes(s.path, s.adapter_path, FMT)).start()


def test_an_adapter_preload_loads_its_base_first_and_a_release_leaves_it_to_its_keep_alive(tiny_model, tmp_path):
    base = ModelSpec("tiny/versions/1", str(tiny_model))
    adapter = ModelSpec("tiny/versions/2", str(tiny_model), str(make_adapter(tiny_model, tmp_path / "a")), base.version)
    engine = engine_with(1024**3)
    try:
        engine.preload(adapter, "alias canary of tiny")
        entry = eventually(lambda: engine.cache.find(adapter.version))
        assert entry.base is engine.cache.find(base.version) and entry.preloaded == ["alias canary of tiny"]
        assert engine.cache.expires(entry.base) is None  # held as its preloaded adapter's base
        engine.preload(base, "alias prod of tiny")  # already loaded: now held for this reason too
        assert entry.base.preloaded == ["alias prod of tiny"]
        engine.release_preload(adapter.version, "alias canary of tiny")
        assert entry.preloaded == [] and engine.cache.expires(entry) == entry.last_used + 3600.0
    finally:
        engine.stop()


def test_a_preload_that_does_not_fit_is_skipped_evicting_nothing(tiny_model, tmp_path, caplog):
    other = ModelSpec("other/versions/1", str(make_tiny_model(tmp_path / "other", layers=3)))
    first = ModelSpec("tiny/versions/1", str(tiny_model))
    size = footprint.served_bytes(first.path, "", FMT)
    engine = engine_with(size + footprint.served_bytes(other.path, "", FMT) - 1)  # room for one of them
    try:
        engine.preload(first, "alias prod of tiny")
        eventually(lambda: engine.cache.find(first.version))
        caplog.set_level(logging.WARNING, logger="inference_svc.decode.engine")
        engine.preload(other, "alias prod of other")  # would need the preloaded version's room
        assert "not preloading other/versions/1 (alias prod of other): cannot load" in caplog.text
        assert [e.spec.version for e in engine.cache.snapshot()] == [first.version]
        assert engine.cache.reserved_bytes == 0
    finally:
        engine.stop()


# ----- the service against a real registry ---------------------------------------------------
def listed(stub) -> dict[str, pb.LoadedModel]:
    return {m.adapter_version or m.model_version: m for m in stub.ListLoadedModels(pb.ListLoadedModelsRequest()).models}


@pytest.fixture
def options() -> InferenceOptions:
    return InferenceOptions(memory_gb=4.0, keep_alive_s=60.0, max_running=4, max_queued=8, preload_aliases=("prod",))


def test_alias_targets_load_at_start_and_when_the_alias_moves(registry_stub, tiny_model, tmp_path, settings, options):
    register(registry_stub, "tiny", tiny_model, alias="prod")
    register(registry_stub, "tiny", make_tiny_model(tmp_path / "v2", layers=3))
    register(registry_stub, "tiny", make_tiny_model(tmp_path / "v3", layers=1), alias="staging")  # not preloaded
    server = InferenceServer(settings, options).start()
    channel = grpc.insecure_channel(settings.address("inference"))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    try:
        first = eventually(lambda: listed(stub).get("tiny/versions/1"))  # no request asked for it
        assert first.preloaded == "alias prod of tiny" and not first.HasField("unload_time") and first.request_count == 0

        registry_stub.SetAlias(rpb.SetAliasRequest(name="tiny", alias="prod", version=2))
        moved = eventually(lambda: listed(stub).get("tiny/versions/2"))
        assert moved.preloaded == "alias prod of tiny" and not moved.HasField("unload_time")
        old = listed(stub)["tiny/versions/1"]  # left to its keep-alive, no longer held
        assert old.preloaded == "" and old.HasField("unload_time")
        assert set(listed(stub)) == {"tiny/versions/1", "tiny/versions/2"}  # staging's target was not loaded

        answer = stub.Generate(pb.GenerateRequest(model="tiny@prod", prompt="hi", sampling=pb.SamplingParams(max_tokens=2)))
        assert answer.model_version == "tiny/versions/2" and listed(stub)["tiny/versions/2"].request_count == 1
    finally:
        channel.close()
        server.stop(grace=1)


def test_a_registry_down_at_start_is_retried_in_the_background(tiny_model, settings, options, caplog):
    from registry_svc.server import RegistryServer  # the test starts the registry itself, after the inference service

    caplog.set_level(logging.WARNING, logger="inference_svc.preload")
    server = InferenceServer(settings, options).start()
    channel = grpc.insecure_channel(settings.address("inference"))
    stub = inference_pb2_grpc.InferenceServiceStub(channel)
    registry = None
    try:
        assert stub.GetServerInfo(pb.GetServerInfoRequest()).memory_budget_gb == 4.0  # serving meanwhile
        eventually(lambda: "retrying in" in caplog.text)
        registry = RegistryServer(settings).start()
        registry_channel = grpc.insecure_channel(settings.address("registry"))
        grpc.channel_ready_future(registry_channel).result(timeout=60)  # past gRPC's reconnect backoff
        from mlxhub.v1 import registry_pb2_grpc

        register(registry_pb2_grpc.RegistryServiceStub(registry_channel), "tiny", tiny_model, alias="prod")
        registry_channel.close()
        assert eventually(lambda: listed(stub).get("tiny/versions/1")).preloaded == "alias prod of tiny"
    finally:
        channel.close()
        server.stop(grace=1)
        if registry is not None:
            registry.stop(grace=1)
