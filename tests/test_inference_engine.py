"""Engine parts that need no server: the model cache's budget, LRU and idle unload,
stop strings that span tokens, the context budget, and LoRA adapters loading on top
of their base (a tiny random llama)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from inference_util import register

from inference_svc.cache import ModelCache, ModelSpec
from inference_svc.decode.sampling import Sampling, completion_budget
from inference_svc.decode.stops import find_stop, held_back
from mlxhub.errors import InvalidArgument, ResourceExhausted
from mlxhub.v1 import common_pb2
from mlxhub.v1 import inference_pb2 as pb
from mlxhub.v1 import registry_pb2 as rpb


@dataclass
class Fake:
    nbytes: int


def spec(n: int) -> ModelSpec:
    return ModelSpec(f"m/versions/{n}", f"/models/{n}")


def test_cache_evicts_least_recently_used_idle_versions_within_budget():
    loads = []
    cache = ModelCache(lambda s: loads.append(s.version) or Fake(40), budget_bytes=100, keep_alive_s=60)
    one, two = cache.get(spec(1)), cache.get(spec(2))
    cache.get(spec(1))  # 1 is now the most recently used
    two.active = 0
    one.active = 1  # in use: never evicted
    cache.get(spec(3))
    assert [e.spec.version for e in cache.snapshot()] == ["m/versions/1", "m/versions/3"]
    assert loads == ["m/versions/1", "m/versions/2", "m/versions/3"]
    with pytest.raises(ResourceExhausted, match="MLXHUB_INFERENCE_MEMORY_GB"):
        ModelCache(lambda s: Fake(200), budget_bytes=100, keep_alive_s=60).get(spec(9))


def test_cache_unloads_idle_versions_after_keep_alive():
    cache = ModelCache(lambda s: Fake(10), budget_bytes=100, keep_alive_s=5)
    busy, idle = cache.get(spec(1)), cache.get(spec(2))
    busy.active = 1
    cache.unload_idle(now=idle.last_used + 4)
    assert len(cache.snapshot()) == 2
    cache.unload_idle(now=idle.last_used + 6)
    assert [e.spec.version for e in cache.snapshot()] == ["m/versions/1"]


def test_loads_in_flight_hold_their_estimated_room_until_installed_or_released():
    cache = ModelCache(lambda s: Fake(40), budget_bytes=100, keep_alive_s=60, estimate=lambda s: 40)
    cache.reserve(spec(1))
    cache.reserve(spec(2))  # two loads overlap: 80 of 100 bytes held, none loaded yet
    assert (cache.used_bytes, cache.reserved_bytes) == (0, 80)
    with pytest.raises(ResourceExhausted, match="hold 0.00 GB"):
        cache.reserve(spec(3))
    cache.install(spec(1), Fake(40))
    cache.release(spec(2))  # its load failed
    assert (cache.used_bytes, cache.reserved_bytes) == (40, 0)
    cache.reserve(spec(3))  # room again; version 1 is idle but need not go
    assert [e.spec.version for e in cache.snapshot()] == ["m/versions/1"]
    cache.reserve(spec(4))  # 40 loaded + 40 and 40 reserved: the idle version 1 makes room
    assert cache.snapshot() == [] and cache.reserved_bytes == 80


def test_stop_strings_across_tokens_are_held_back_then_cut():
    assert held_back("The answer is Par", ("Paris",)) == 3
    assert held_back("The answer is", ("Paris",)) == 0
    assert find_stop("The answer is Paris.", ("Paris", "xyz"), emitted=11) == 14
    assert find_stop("The answer", ("Paris",), emitted=0) is None


def test_completion_budget_fits_the_context():
    assert completion_budget(Sampling(), prompt_tokens=10, context=100) == 90
    assert completion_budget(Sampling(max_tokens=5), prompt_tokens=10, context=100) == 5
    with pytest.raises(InvalidArgument) as caught:
        completion_budget(Sampling(), prompt_tokens=100, context=100)
    assert caught.value.field == "prompt"


def make_adapter(base: Path, directory: Path) -> Path:
    """A LoRA adapter for the tiny model, saved the way mlx_lm.lora saves one (non-zero B, so it changes outputs)."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import load_model

    model, _ = load_model(base)
    model.freeze()
    parameters = {"rank": 4, "scale": 20.0, "dropout": 0.0}
    linear_to_lora_layers(model, 2, parameters)
    mx.random.seed(1)
    weights = {k: mx.random.normal(v.shape) * 0.5 for k, v in tree_flatten(model.trainable_parameters())}
    directory.mkdir(parents=True)
    mx.save_safetensors(str(directory / "adapters.safetensors"), weights)
    (directory / "adapter_config.json").write_text(
        json.dumps({"fine_tune_type": "lora", "num_layers": 2, "lora_parameters": parameters}))
    return directory


def test_adapter_version_loads_on_its_base(inference_stub, registry_stub, tiny_model, tmp_path):
    register(registry_stub, "tiny", tiny_model)
    adapter = make_adapter(tiny_model, tmp_path / "adapter")
    registry_stub.CreateModelVersion(rpb.CreateModelVersionRequest(
        name="tiny", artifact_path=str(adapter), lineage=common_pb2.Lineage(parent_version="tiny/versions/1")))

    def ask(model: str) -> pb.GenerateResponse:
        return inference_stub.Generate(pb.GenerateRequest(model=model, prompt="hello",
                                                          sampling=pb.SamplingParams(max_tokens=8)))

    base, tuned = ask("tiny/versions/1"), ask("tiny/versions/2")
    assert (base.model_version, tuned.model_version) == ("tiny/versions/1", "tiny/versions/2")
    assert base.text != tuned.text  # the adapter changed what the model says
    loaded = {m.adapter_version: m.model_version for m in inference_stub.ListLoadedModels(pb.ListLoadedModelsRequest()).models}
    assert loaded == {"": "tiny/versions/1", "tiny/versions/2": "tiny/versions/1"}
