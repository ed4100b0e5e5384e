"""The output head the CPU serving path uses (`inference_svc.cpu.head`) computes the same logits
as `x @ W.T` in either orientation, for tied and untied heads, and keeps the parameters."""

from __future__ import annotations

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten
from mlx_lm.models import llama

from inference_svc import loader
from inference_svc.cpu import head


@pytest.mark.parametrize("shape", [(1, 1, 64), (2, 1, 64), (4, 1, 64), (8, 1, 64), (3, 5, 64), (16, 64)])
def test_project_equals_the_plain_product(shape):
    weight = mx.random.normal((1000, 64), key=mx.random.key(0))
    x = mx.random.normal(shape, key=mx.random.key(1))
    out = head.project(x, weight)
    assert out.shape == (*shape[:-1], 1000)
    assert mx.allclose(out, x @ weight.T, atol=1e-4).item()


def test_a_tied_head_is_swapped_and_gives_the_same_logits(tiny_model):
    model = loader.load(str(tiny_model), "", loader.QUANTIZED).model
    before = dict(tree_flatten(model.parameters()))
    tokens = mx.array([[1, 5, 9]] * 8)  # 8 rows at the last position: the streaming orientation
    expected = model(tokens)
    assert head.use_streaming_head(model) == 1
    assert isinstance(model.model.embed_tokens, head.StreamingEmbedding)
    after = dict(tree_flatten(model.parameters()))
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
    assert mx.allclose(model(tokens), expected, atol=1e-4).item()
    assert mx.allclose(model(tokens[:1]), expected[:1], atol=1e-4).item()


def test_an_untied_head_is_swapped_and_gives_the_same_logits():
    args = llama.ModelArgs(model_type="llama", hidden_size=32, num_hidden_layers=1, intermediate_size=64,
                           num_attention_heads=4, rms_norm_eps=1e-5, vocab_size=300, num_key_value_heads=2,
                           tie_word_embeddings=False)
    model = llama.Model(args)
    tokens = mx.array([[3, 1, 4, 1, 5]] * 2)  # 10 rows
    expected = model(tokens)
    assert head.use_streaming_head(model) == 2  # the lm_head, and the (unused as a head) embedding
    assert isinstance(model.lm_head, head.StreamingHead)
    assert mx.allclose(model(tokens), expected, atol=1e-4).item()


def test_the_cpu_loader_serves_with_the_streaming_head(tiny_model):
    loaded = loader.load(str(tiny_model), "", loader.FLOAT32)
    assert isinstance(loaded.model.model.embed_tokens, head.StreamingEmbedding)
