"""The table RoPE the CPU serving path uses gives MLX's `mx.fast.rope` results, for both
layouts, scalar and per-sequence offsets, and falls back to it where the table does not
apply; swapped into a model it changes neither the parameters nor the logits."""

from __future__ import annotations

import mlx.core as mx
import pytest
from mlx import nn
from mlx.utils import tree_flatten
from mlx_lm.models.cache import make_prompt_cache

from inference_svc import loader
from inference_svc.cpu.rope import TableRoPE, use_table_rope


def close(a: mx.array, b: mx.array) -> bool:
    return mx.allclose(a, b, atol=1e-4, rtol=1e-4).item()


@pytest.mark.parametrize("traditional", [True, False])
@pytest.mark.parametrize(("base", "scale"), [(10000.0, 1.0), (100000.0, 0.5)])
def test_table_rope_matches_mlx_rope(traditional, base, scale):
    rope = nn.RoPE(64, traditional=traditional, base=base, scale=scale)
    table = TableRoPE(rope, positions=256)
    x = mx.random.normal((2, 3, 5, 64), key=mx.random.key(0))
    for offset in (0, 7, 251):
        assert close(table(x, offset=offset), rope(x, offset=offset)), offset
    rows = table(x, offset=mx.array([3, 40]))  # batched decoding: one offset per sequence
    assert close(rows[0], rope(x[:1], offset=3)[0]) and close(rows[1], rope(x[1:], offset=40)[0])


def test_table_rope_falls_back_where_the_table_does_not_apply():
    partial = nn.RoPE(32, traditional=True)  # rotates only part of the head
    x = mx.random.normal((1, 2, 3, 64), key=mx.random.key(1))
    assert close(TableRoPE(partial, positions=16)(x, offset=2), partial(x, offset=2))
    full = nn.RoPE(64, traditional=True)
    assert close(TableRoPE(full, positions=16)(x, offset=20), full(x, offset=20))  # beyond the table


def test_swapped_into_a_model_it_keeps_parameters_and_logits(tiny_model):
    model = loader.load(str(tiny_model), "", loader.QUANTIZED).model  # no swap in this format
    before = dict(tree_flatten(model.parameters()))
    tokens = mx.array([[1, 5, 9, 3, 7]])
    expected = model(tokens, cache=make_prompt_cache(model))
    assert use_table_rope(model, positions=512) == len(model.layers)
    ropes = {id(layer.self_attn.rope) for layer in model.layers}
    assert len(ropes) == 1 and isinstance(model.layers[0].self_attn.rope, TableRoPE)  # one shared table
    assert dict(tree_flatten(model.parameters())).keys() == before.keys()
    cache = make_prompt_cache(model)
    assert close(model(tokens[:, :3], cache=cache), expected[:, :3])
    assert close(model(tokens[:, 3:], cache=cache), expected[:, 3:])  # decoding on from the KV cache


def test_the_cpu_loader_serves_with_the_table(tiny_model):
    loaded = loader.load(str(tiny_model), "", loader.FLOAT32)
    assert isinstance(loaded.model.layers[0].self_attn.rope, TableRoPE)
