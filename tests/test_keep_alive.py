"""Per-version keep-alive (Ollama's keep_alive on each request), UnloadModel, and what
ListLoadedModels says of each loaded version: the cache's rules on stand-in entries, then
the same through the real service (tiny random llama, and an adapter of it) and the gateway."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime

import grpc
import httpx
import pytest
from inference_util import chat, register
from test_inference_engine import make_adapter

from gateway.server import running
from inference_svc.cache import ModelCache, ModelSpec
from mlxhub.errors import ResourceExhausted
from mlxhub.v1 import common_pb2
from mlxhub.v1 import inference_pb2 as pb
from mlxhub.v1 import registry_pb2 as rpb

GB = 1024**3


@dataclass
class Fake:
    nbytes: int


def spec(n: int) -> ModelSpec:
    return ModelSpec(f"m/versions/{n}", f"/models/{n}")


def test_each_version_keeps_its_own_keep_alive_and_a_pin_outlives_them_all():
    cache = ModelCache(lambda s: Fake(10), budget_bytes=100, keep_alive_s=60)
    short, pinned, default = cache.get(spec(1)), cache.get(spec(2)), cache.get(spec(3))
    cache.keep_alive(short, 5.0)
    cache.keep_alive(pinned, -1.0)
    start = max(e.last_used for e in (short, pinned, default))
    assert cache.expires(short) == short.last_used + 5 and cache.expires(pinned) is None
    cache.unload_idle(now=start + 10)
    assert [e.spec.version for e in cache.snapshot()] == ["m/versions/2", "m/versions/3"]
    cache.keep_alive(pinned, None)  # a request without keep_alive leaves a pin as it is
    cache.unload_idle(now=start + 10_000)
    assert [e.spec.version for e in cache.snapshot()] == ["m/versions/2"] and pinned.pinned
    cache.keep_alive(pinned, 0.0)  # ... a request that sets one replaces it
    cache.unload_idle(now=pinned.last_used)
    assert cache.snapshot() == []


def test_a_preloaded_version_is_held_until_a_request_asks_for_keep_alive_0():
    cache = ModelCache(lambda s: Fake(10), budget_bytes=100, keep_alive_s=5)
    entry = cache.get(spec(1))
    entry.preloaded.append("alias prod of m")
    cache.keep_alive(entry, 600.0)
    cache.unload_idle(now=entry.last_used + 10_000)
    assert cache.snapshot() == [entry] and cache.expires(entry) is None
    cache.keep_alive(entry, 0.0)
    assert entry.preloaded == []
    cache.unload_idle(now=entry.last_used)
    assert cache.snapshot() == []


def test_queued_requests_keep_their_version_past_its_keep_alive():
    cache = ModelCache(lambda s: Fake(10), budget_bytes=100, keep_alive_s=0)
    entry = cache.get(spec(1))
    cache.unload_idle(now=entry.last_used + 1, wanted={"m/versions/1"})
    assert cache.snapshot() == [entry]
    cache.unload_idle(now=entry.last_used + 1)
    assert cache.snapshot() == []


def test_pinned_versions_are_never_evicted_and_a_load_that_cannot_fit_names_them():
    cache = ModelCache(lambda s: Fake(40), budget_bytes=100, keep_alive_s=60)
    pinned, idle = cache.get(spec(1)), cache.get(spec(2))
    cache.keep_alive(pinned, -1.0)
    cache.get(spec(3))  # the idle, unpinned version makes room; the pinned one (least recently used) stays
    assert [e.spec.version for e in cache.snapshot()] == ["m/versions/1", "m/versions/3"] and idle.loaded is None
    cache.keep_alive(cache.find("m/versions/3"), -1.0)
    with pytest.raises(ResourceExhausted) as caught:
        cache.get(spec(4))
    assert "pinned (keep_alive -1): m/versions/1, m/versions/3 hold" in caught.value.message
    assert "UnloadModel" in caught.value.message
    assert cache.unload(pinned) == ["m/versions/1"]  # only an explicit unload lifts a pin
    cache.get(spec(4))


def test_an_adapters_keep_alive_keeps_its_base_loaded():
    cache = ModelCache(lambda s: Fake(40), budget_bytes=100, keep_alive_s=5)
    base = cache.get(spec(1))
    adapter = cache.install(ModelSpec("m/versions/2", "/models/1", "/a", "m/versions/1"), Fake(10), base=base)
    cache.keep_alive(adapter, 100.0)
    assert cache.expires(base) == adapter.last_used + 100
    cache.unload_idle(now=base.last_used + 50)  # the base's own 5 s ran out; its adapter's 100 s did not
    assert cache.snapshot() == [base, adapter]
    cache.keep_alive(adapter, -1.0)
    assert cache.expires(base) is None
    cache.get(spec(3)).active = 1  # 50 held + 40: fits without evicting; now in use
    with pytest.raises(ResourceExhausted, match="m/versions/2"):  # the pinned adapter holds its base too
        cache.get(spec(4))
    assert base.loaded is not None and adapter.loaded is not None


# ----- through the service ------------------------------------------------------------------
def loaded(stub) -> dict[str, pb.LoadedModel]:
    return {m.adapter_version or m.model_version: m for m in stub.ListLoadedModels(pb.ListLoadedModelsRequest()).models}


def eventually(check, timeout: float = 60.0):
    """Poll `check` until it returns something true (the engine unloads between its steps)."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)
    return result


def ask(stub, model: str, **keep) -> pb.GenerateResponse:
    return stub.Generate(pb.GenerateRequest(model=model, prompt="hello", sampling=pb.SamplingParams(max_tokens=4),
                                            **keep))


@pytest.fixture
def tiny_versions(registry_stub, tiny_model, tmp_path):
    """tiny/versions/1 (a base, alias `prod`) and tiny/versions/2 (an adapter of it)."""
    register(registry_stub, "tiny", tiny_model, alias="prod")
    adapter = make_adapter(tiny_model, tmp_path / "adapter")
    registry_stub.CreateModelVersion(rpb.CreateModelVersionRequest(
        name="tiny", artifact_path=str(adapter), lineage=common_pb2.Lineage(parent_version="tiny/versions/1")))
    return "tiny/versions/1", "tiny/versions/2"


def test_keep_alive_per_request_through_the_service(inference_stub, tiny_versions):
    base, adapter = tiny_versions
    ask(inference_stub, base, keep_alive_seconds=0)  # unloads as soon as the answer is out
    eventually(lambda: base not in loaded(inference_stub))

    ask(inference_stub, base, keep_alive_seconds=120)
    entry = loaded(inference_stub)[base]
    assert entry.unload_time.ToNanoseconds() - entry.last_used_time.ToNanoseconds() == pytest.approx(120e9, abs=1e9)
    assert entry.kind == pb.LOADED_MODEL_KIND_BASE and not entry.pinned and entry.preloaded == ""
    assert entry.bytes > 0 and entry.memory_gb == pytest.approx(entry.bytes / GB)

    ask(inference_stub, adapter, keep_alive_seconds=-1)  # pins the adapter, and so keeps its base
    models = loaded(inference_stub)
    assert models[adapter].pinned and not models[adapter].HasField("unload_time")
    assert models[adapter].kind == pb.LOADED_MODEL_KIND_ADAPTER and models[adapter].model_version == base
    assert 0 < models[adapter].bytes < models[base].bytes / 10
    assert not models[base].pinned and not models[base].HasField("unload_time")

    ask(inference_stub, base)  # unset: the server default (60 s in the fixture) for the base
    entry = loaded(inference_stub)[base]
    assert not entry.HasField("unload_time")  # still held by its pinned adapter

    with pytest.raises(grpc.RpcError) as caught:
        ask(inference_stub, base, keep_alive_seconds=math.nan)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "keep_alive_seconds" in caught.value.details()


def test_a_keep_alive_of_centuries_is_listed_at_the_last_time_a_timestamp_holds(inference_stub, tiny_versions):
    base, _ = tiny_versions
    ask(inference_stub, base, keep_alive_seconds=1e16)
    assert loaded(inference_stub)[base].unload_time.ToJsonString() == "9999-12-31T23:59:59Z"


def test_unload_model_now_and_after_the_running_requests(inference_stub, tiny_versions):
    base, adapter = tiny_versions
    ask(inference_stub, base, keep_alive_seconds=-1)
    ask(inference_stub, adapter)
    unloaded = inference_stub.UnloadModel(pb.UnloadModelRequest(model="tiny@prod"))  # a base goes with its adapters
    assert list(unloaded.unloaded_versions) == [base, adapter] and loaded(inference_stub) == {}
    with pytest.raises(grpc.RpcError) as caught:
        inference_stub.UnloadModel(pb.UnloadModelRequest(model="tiny@prod"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details().startswith("tiny@prod points to tiny/versions/1: tiny/versions/1 is not loaded")
    with pytest.raises(grpc.RpcError) as caught:
        inference_stub.UnloadModel(pb.UnloadModelRequest(model="not a reference"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    ask(inference_stub, adapter)
    unloaded = inference_stub.UnloadModel(pb.UnloadModelRequest(model=adapter))  # an adapter goes alone
    assert list(unloaded.unloaded_versions) == [adapter] and set(loaded(inference_stub)) == {base}

    stream = inference_stub.GenerateStream(chat(base, "hello", max_tokens=4000))
    next(stream)  # decoding
    busy = inference_stub.UnloadModel(pb.UnloadModelRequest(model=base))
    assert (list(busy.unloaded_versions), list(busy.unloading_versions), busy.running_requests) == ([], [base], 1)
    assert base in loaded(inference_stub)  # still serving its stream
    stream.cancel()
    eventually(lambda: base not in loaded(inference_stub))


def test_unload_model_through_the_gateway(inference, registry_stub, tiny_model, settings):
    register(registry_stub, "tiny", tiny_model)
    with running(settings) as url, httpx.Client(base_url=url, timeout=60) as http:
        assert http.post("/v1/generate", json={"model": "tiny", "prompt": "hi", "sampling": {"maxTokens": 2},
                                               "keepAliveSeconds": -1}).status_code == 200
        models = http.get("/v1/inference/models").json()["models"]
        assert [(m["modelVersion"], m["kind"], m["pinned"]) for m in models] == [
            ("tiny/versions/1", "LOADED_MODEL_KIND_BASE", True)]
        assert int(models[0]["bytes"]) > 0 and "unloadTime" not in models[0]
        unloaded = http.post("/v1/inference/models:unload", json={"model": "tiny/versions/1"})
        assert unloaded.status_code == 200 and unloaded.json()["unloadedVersions"] == ["tiny/versions/1"]
        again = http.post("/v1/inference/models:unload", json={"model": "tiny/versions/1"})
        assert again.status_code == 404 and "tiny/versions/1 is not loaded" in again.json()["message"]


def test_ollamas_keep_alive_on_the_openai_routes(inference, registry_stub, tiny_model, settings):
    """`keep_alive` in an OpenAI request body, as Ollama takes it: seconds, or a duration; negative pins."""
    register(registry_stub, "tiny", tiny_model)
    with running(settings) as url, httpx.Client(base_url=f"{url}/openai/v1", timeout=60) as http:
        def complete(keep_alive) -> httpx.Response:
            return http.post("/completions", json={"model": "tiny", "prompt": "hi", "max_tokens": 2,
                                                   "keep_alive": keep_alive})

        def models() -> dict[str, dict]:
            listed = httpx.get(f"{url}/v1/inference/models").json()
            return {m["modelVersion"]: m for m in listed.get("models", [])}

        assert complete("1h30m").status_code == 200
        entry = models()["tiny/versions/1"]
        kept = to_seconds(entry["unloadTime"]) - to_seconds(entry["lastUsedTime"])
        assert kept == pytest.approx(5400, abs=1)
        chat = http.post("/chat/completions", json={"model": "tiny", "max_tokens": 2, "keep_alive": -1,
                                                     "messages": [{"role": "user", "content": "hi"}]})
        assert chat.status_code == 200 and models()["tiny/versions/1"]["pinned"]
        assert complete(0).status_code == 200  # unloads once the answer is out
        eventually(lambda: "tiny/versions/1" not in models())
        for bad in ("soon", "5", True, "1h-30m"):
            refused = complete(bad)
            assert refused.status_code == 400, (bad, refused.text)
            assert refused.json()["error"]["param"] == "keep_alive" and "duration" in refused.json()["error"]["message"]


def to_seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()
