"""The MLP gate the CPU serving path uses (`inference_svc.cpu.activation`) gives SiLU's values
over the whole float range that matters, and swapped into a model it keeps the parameters
and the logits."""

from __future__ import annotations

import mlx.core as mx
from mlx import nn
from mlx.utils import tree_flatten
from mlx_lm.models import llama

from inference_svc import loader
from inference_svc.cpu import activation


def test_tanh_is_within_a_few_float_steps_of_mlx():
    x = mx.linspace(-30, 30, 200_001)
    assert mx.max(mx.abs(activation.tanh(x) - mx.tanh(x))).item() < 5e-7


def test_the_gate_matches_silu_times_x():
    gate = mx.linspace(-40, 40, 100_001)
    x = mx.random.normal(gate.shape, key=mx.random.key(0))
    expected = nn.silu(gate) * x
    error = mx.abs(activation.swiglu(gate, x) - expected)
    # tanh's absolute error (<4e-7) scaled by |gate * x| / 2: a few float steps of the product's scale
    assert mx.max(error / (1 + mx.abs(gate * x))).item() < 5e-7
    batch = mx.random.normal((4, 1, 1536), key=mx.random.key(1)) * 4  # shapeless: any shape, one kernel
    error = mx.abs(activation.swiglu(batch, batch) - nn.silu(batch) * batch)
    assert mx.max(error / (1 + batch * batch)).item() < 5e-7


def test_swapped_into_a_model_it_keeps_parameters_and_logits(tiny_model):
    model = loader.load(str(tiny_model), "", loader.QUANTIZED).model  # no swaps in this format
    assert type(model.layers[0].mlp) is llama.MLP
    before = dict(tree_flatten(model.parameters()))
    tokens = mx.array([[1, 5, 9, 3, 7], [2, 4, 6, 8, 10]])
    expected = model(tokens)
    assert activation.use_fast_gate(model) == len(model.layers)
    assert isinstance(model.layers[0].mlp, activation.FastGateMLP)
    after = dict(tree_flatten(model.parameters()))
    assert after.keys() == before.keys() and all(after[k] is before[k] for k in before)
    assert mx.allclose(model(tokens), expected, atol=1e-4).item()


def test_the_cpu_loader_serves_with_the_fast_gate(tiny_model):
    loaded = loader.load(str(tiny_model), "", loader.FLOAT32)
    assert isinstance(loaded.model.layers[0].mlp, activation.FastGateMLP)
