"""Many LoRA adapter versions on one loaded base, in one batch (`inference_svc.lora`): each row's
greedy tokens equal its adapter served alone through mlx-lm's `load_adapters` on the same weights,
rows on the base decode as without adapters, adapters cost only their matrices in the cache, and
an adapter goes while its base stays (a tiny random llama)."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import pytest
from mlx_lm.generate import generate_step
from mlx_lm.tuner.utils import load_adapters

from bench.adapters import make_adapter
from inference_svc import footprint, loader, lora
from inference_svc.cache import ModelCache, ModelSpec
from inference_svc.decode import sampling
from inference_svc.decode.batching import Batches
from inference_svc.decode.engine import Engine
from inference_svc.decode.generation import Chunk, Done, Failed, Request
from inference_svc.decode.sampling import Sampling
from mlxhub.errors import FailedPrecondition

STEPS = 12
PROMPTS = ["hello there", "the cat sat on", "one two three four", "abc", "zebra crossing"]
# (rank, num_layers, keys): different layers, keys and ranks, so the per-layer stacks pad and skip.
SHAPES = [(4, 2, ("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj")), (8, 1, ("self_attn.v_proj", "mlp.up_proj")),
          (2, 2, ("mlp.gate_proj", "mlp.up_proj", "self_attn.o_proj", "self_attn.k_proj"))]


@pytest.fixture(scope="module")
def adapters(tiny_model, tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("adapters")
    return [make_adapter(tiny_model, root / f"a{i}", seed=i + 1, rank=rank, num_layers=layers, keys=keys, strength=0.5)
            for i, (rank, layers, keys) in enumerate(SHAPES)]


def alone(tiny_model: Path, adapter: Path | None, prompt: list[int]) -> list[int]:
    """Greedy tokens of `prompt` on the base (as the service loads it) with `adapter` put on by mlx-lm."""
    model = loader.load(str(tiny_model), "", loader.FLOAT32).model
    if adapter is not None:
        model.freeze()
        load_adapters(model, str(adapter))
    steps = generate_step(mx.array(prompt), model, max_tokens=STEPS, sampler=sampling.greedy)
    return [int(token) for token, _ in steps]


def encode(tiny_model: Path, text: str) -> list[int]:
    return loader.load(str(tiny_model), "", loader.FLOAT32).tokenizer.encode(text)


@pytest.mark.parametrize("mode", [lora.STACK, lora.GATHER, lora.GROUP])
def test_each_row_of_a_mixed_batch_decodes_as_its_adapter_alone(tiny_model, adapters, mode):
    loaded = loader.load(str(tiny_model), "", loader.FLOAT32)
    router = lora.Router(loaded.model, mode)
    attached = [loader.load(str(tiny_model), str(a), loader.FLOAT32) for a in adapters]
    for adapter in attached:
        router.attach(adapter)
    # rows: base, a0, a1, a2, a0 again: five rows on four versions in one batch
    rows = [None, attached[0], attached[1], attached[2], attached[0]]
    sources = [None, adapters[0], adapters[1], adapters[2], adapters[0]]
    prompts = [loaded.tokenizer.encode(p) for p in PROMPTS]
    expected = [alone(tiny_model, source, prompt) for source, prompt in zip(sources, prompts, strict=True)]
    assert _decode(loaded, router, prompts, rows, steps=STEPS) == expected
    # the adapters change what the model says (else this test would prove nothing)
    first = loaded.tokenizer.encode(PROMPTS[0])
    outputs = [alone(tiny_model, None, first)] + [alone(tiny_model, a, first) for a in adapters]
    assert len({tuple(o) for o in outputs}) == len(outputs)


@pytest.mark.parametrize("mode", [lora.STACK, lora.GATHER, lora.GROUP])
def test_rows_that_leave_and_join_a_running_batch_keep_decoding_as_their_adapter_alone(tiny_model, adapters, mode):
    """The batch's set of adapters shrinks (rows finish) and grows (rows join with an adapter none of the
    running rows uses): STACK mode's pack holds every attached adapter, so nothing is built meanwhile."""
    loaded = loader.load(str(tiny_model), "", loader.FLOAT32)
    router = lora.Router(loaded.model, mode)
    attached = [loader.load(str(tiny_model), str(a), loader.FLOAT32) for a in adapters]
    for adapter in attached:
        router.attach(adapter)
    batch = Batches(lora.RoutedModel(loaded.model, router), stop_tokens=[], completion_batch_size=8,
                    prefill_batch_size=8)
    tokens: dict[int, list[int]] = {}
    wanted: dict[int, tuple[Path | None, list[int], int]] = {}

    def insert(prompt: str, which: int | None, steps: int) -> None:
        encoded = loaded.tokenizer.encode(prompt)
        (uid,) = batch.insert([encoded], max_tokens=[steps], samplers=[sampling.greedy])
        router.assign(uid, None if which is None else attached[which])
        tokens[uid], wanted[uid] = [], (None if which is None else adapters[which], encoded, steps)

    for prompt, which, steps in zip(PROMPTS, [None, 0, 1, None, 0], [STEPS, 4, STEPS, STEPS, 6], strict=True):
        insert(prompt, which, steps)
    packs = set()
    for step in range(STEPS + 8):
        if step == 7:  # a0's rows are gone; a2 (new to the batch) and a0 again join
            insert(PROMPTS[3], 2, 8)
            insert(PROMPTS[1], 0, 8)
        for response in batch.next()[1]:
            tokens[response.uid].append(response.token)
        packs.add(id(router.pack))
    batch.close()
    for uid, (source, prompt, steps) in wanted.items():
        assert tokens[uid] == alone(tiny_model, source, prompt)[:steps], uid
    if mode == lora.STACK:
        assert len(packs) == 1  # the attached adapters' storage: rows leaving and joining build nothing


def test_adapters_share_the_base_weights_and_go_while_it_stays(tiny_model, adapters):
    spec = ModelSpec("tiny/versions/1", str(tiny_model))
    specs = [ModelSpec(f"tiny/versions/{i + 2}", str(tiny_model), str(a), spec.version) for i, a in enumerate(adapters)]
    fmt = loader.FLOAT32
    engine = Engine(lambda s: loader.load(s.path, s.adapter_path, fmt), 1024**3, 3600.0, max_running=8, max_queued=16,
                    estimate=lambda s: footprint.served_bytes(s.path, s.adapter_path, fmt)).start()
    try:
        versions = [spec, *specs, specs[0]]
        generations = [engine.submit(Request(v, Sampling(max_tokens=STEPS), prompt=p))
                       for v, p in zip(versions, PROMPTS, strict=True)]
        got = [[t for e in _events(g) if isinstance(e, Chunk) for t in e.token_ids] for g in generations]
        expected = [alone(tiny_model, a, encode(tiny_model, p))
                    for a, p in zip([None, *adapters, adapters[0]], PROMPTS, strict=True)]
        # the end-of-sequence token is not sent: compare up to it
        assert got == [e[:len(g)] for g, e in zip(got, expected, strict=True)] and all(got)

        entries = {e.spec.version: e for e in engine.cache.snapshot()}
        base = entries[spec.version]
        assert base.state is not None and all(entries[s.version].state is None for s in specs)  # one batch
        for s, a in zip(specs, adapters, strict=True):
            entry = entries[s.version]
            assert entry.base is base and entry.loaded.nbytes == (a / "adapters.safetensors").stat().st_size - _header(a)
            assert entry.loaded.nbytes < base.loaded.nbytes / 10
            assert footprint.served_bytes(s.path, s.adapter_path, fmt) == entry.loaded.nbytes
        assert base.served == 1 and entries[specs[0].version].served == 2
        # the adapters' matrices are held once: the router's pack is their storage, not a copy beside it
        shares = [entries[s.version].loaded.nbytes for s in specs]
        assert base.router.pack.nbytes == sum(shares)
        assert base.nbytes == base.loaded.nbytes + base.router.working_bytes < base.loaded.nbytes + sum(shares) / 10
        before = engine.cache.used_bytes
        assert engine.unload(specs[1].version).unloaded == [specs[1].version]
        assert base.router.pack.nbytes == sum(shares) - shares[1]
        assert engine.call(lambda: engine.cache.used_bytes) <= before - shares[1]
        again = engine.submit(Request(specs[0], Sampling(max_tokens=STEPS), prompt=PROMPTS[1]))
        got = [t for e in _events(again) if isinstance(e, Chunk) for t in e.token_ids]
        assert got == alone(tiny_model, adapters[0], encode(tiny_model, PROMPTS[1]))[:len(got)] and got
    finally:
        engine.stop()


def test_a_mixed_decode_holds_each_adapter_matrix_once_and_a_detach_frees_its_share(tiny_model, tmp_path):
    """MLX's own count of live memory: base + adapters after a mixed decode in each mode hold the adapters'
    matrices once (a pack beside them would double it), and a detached adapter's share is freed."""
    dirs = [make_adapter(tiny_model, tmp_path / f"big{i}", seed=10 + i, rank=16, num_layers=2, strength=0.5)
            for i in range(3)]
    loaded = loader.load(str(tiny_model), "", loader.FLOAT32)
    gc.collect()
    empty = mx.get_active_memory()
    attached = [lora.read_adapter(str(d), f"a{i}") for i, d in enumerate(dirs)]
    matrices = [a.nbytes for a in attached]
    router = lora.Router(loaded.model)
    for adapter in attached:
        router.attach(adapter)
    assert [a.nbytes for a in attached] == matrices and router.pack.nbytes == sum(matrices)
    prompts = [loaded.tokenizer.encode(p) for p in PROMPTS[:4]]
    rows = [attached[0], attached[1], attached[2], None]
    for mode in (lora.STACK, lora.GATHER, lora.STACK):  # GATHER's padded stacks go when it is left
        router.mode = mode
        _decode(loaded, router, prompts, rows, steps=4)
    gc.collect()
    held = mx.get_active_memory() - empty
    assert sum(matrices) <= held < sum(matrices) * 1.1, (held, matrices)

    working = router.working_bytes  # the routes' masks, dropped with the pack they were made for
    assert working < sum(matrices) / 10
    router.detach(attached[1])
    gc.collect()
    freed = held - (mx.get_active_memory() - empty)
    # slack: the allocator's rounding of a few small arrays (a pack left behind would be all of it)
    assert abs(freed - (matrices[1] + working)) < matrices[1] / 4, (freed, working, matrices)
    assert attached[1].matrices == {} and router.pack.nbytes == matrices[0] + matrices[2]
    with pytest.raises(FailedPrecondition, match="adapter a1 is not attached"):
        router.route([attached[1]])
    # the others were pointed into the new pack and still decode as they do alone
    got = _decode(loaded, router, prompts[:2], [attached[2], attached[0]], steps=STEPS)
    assert got == [alone(tiny_model, dirs[2], prompts[0]), alone(tiny_model, dirs[0], prompts[1])]


def _decode(loaded, router: lora.Router, prompts: list[list[int]], rows: list, steps: int) -> list[list[int]]:
    """Greedy tokens of `prompts` decoded in one batch, row i on adapter rows[i]."""
    batch = Batches(lora.RoutedModel(loaded.model, router), stop_tokens=[], completion_batch_size=8,
                    prefill_batch_size=8)
    uids = batch.insert(prompts, max_tokens=[steps] * len(prompts), samplers=[sampling.greedy] * len(prompts))
    for uid, adapter in zip(uids, rows, strict=True):
        router.assign(uid, adapter)
    tokens: dict[int, list[int]] = {uid: [] for uid in uids}
    while sum(map(len, tokens.values())) < steps * len(prompts):
        for response in batch.next()[1]:
            tokens[response.uid].append(response.token)
    batch.close()
    for uid in uids:
        router.release(uid)
    return [tokens[uid] for uid in uids]


def _events(generation):
    while True:
        event = generation.events.get(timeout=120)
        assert not isinstance(event, Failed), event.error
        yield event
        if isinstance(event, Done):
            return


def _header(adapter: Path) -> int:
    """The bytes of a safetensors file that are not tensor data (its length prefix and JSON header)."""
    data = (adapter / "adapters.safetensors").read_bytes()
    return 8 + int.from_bytes(data[:8], "little")


@dataclass
class Fake:
    nbytes: int


def test_cache_evicts_idle_adapters_before_their_base_and_a_base_with_its_adapters():
    cache = ModelCache(lambda s: Fake(10 if s.adapter_path else 60), budget_bytes=100, keep_alive_s=60)
    base_spec = ModelSpec("m/versions/1", "/m")
    base = cache.get(base_spec)
    one = cache.install(ModelSpec("m/versions/2", "/m", "/a2", base_spec.version), Fake(10), base=base)
    two = cache.install(ModelSpec("m/versions/3", "/m", "/a3", base_spec.version), Fake(10), base=base)
    assert cache.used_bytes == 80
    one.active = base.active = 1  # a request on adapter 2 (the engine counts it on the base too)
    cache.install(ModelSpec("m/versions/4", "/m", "/a4", base_spec.version), Fake(30), base=base)
    # adapter 3 was idle and made room; the base and the busy adapter stay
    assert [e.spec.version for e in cache.snapshot()] == ["m/versions/1", "m/versions/2", "m/versions/4"]
    assert two.loaded is None
    one.active = base.active = 0
    base.last_used = one.last_used = 0.0
    cache.loaded(ModelSpec("m/versions/4", "/m", "/a4", base_spec.version)).last_used = 100.0
    cache.unload_idle(now=70.0)  # adapter 2 expired and goes; adapter 4 is kept, and so is its base
    assert [e.spec.version for e in cache.snapshot()] == ["m/versions/1", "m/versions/4"]
    cache.unload_idle(now=200.0)  # all idle and expired: the base goes with its adapters
    assert cache.snapshot() == []


def test_an_adapter_for_another_base_is_refused_naming_the_layer(tiny_model, tmp_path):
    from bench.tiny_model import make_tiny_model

    other = make_tiny_model(tmp_path / "wide", hidden_size=96)
    adapter = loader.load(str(other), str(make_adapter(other, tmp_path / "a", seed=3, num_layers=2, keys=("self_attn.q_proj",))),
                          loader.FLOAT32)
    router = lora.Router(loader.load(str(tiny_model), "", loader.FLOAT32).model)
    with pytest.raises(FailedPrecondition, match="q_proj maps 96 -> 96 but the base layer maps 64 -> 64"):
        router.attach(adapter)
    assert router.adapters == []
