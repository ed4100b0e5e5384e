"""The mlx-lm internals the inference service relies on (`inference_svc.mlx_lm_compat`) are still
there in the shape it uses. An mlx-lm upgrade that moves one fails here, naming it; then update
the compat module (and its copy of the batch step) before widening the pin in pyproject.toml."""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import inference_svc  # noqa: F401  (fast BLAS: before anything imports MLX)  # isort: skip
from inference_svc import mlx_lm_compat

ROOT = Path(__file__).resolve().parent.parent

# sha256 of mlx-lm 0.32's `GenerationBatch._step` source: `LeanGenerationBatch._step` is that step
# without the log-softmax, so any change to it upstream must be looked at and carried over.
STEP_SHA256 = "d7513c5031029194ca3820ae81d8966b792e66a90c39c1d7ad61d30bc9e8c5ad"


def pinned_mlx_lm() -> Requirement:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [Requirement(d) for d in dependencies if Requirement(d).name == "mlx-lm"]
    assert len(pins) == 1, pins
    return pins[0]


def parameters(function) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_pin_is_the_compat_modules_and_bounded_and_installed():
    pin = pinned_mlx_lm()
    assert pin.specifier == Requirement(mlx_lm_compat.MLX_LM_REQUIREMENT).specifier
    assert any(spec.operator == "<" for spec in pin.specifier), "mlx-lm needs an upper bound: upgrades go through here"
    installed = importlib.metadata.version("mlx-lm")
    assert pin.specifier.contains(installed), f"mlx-lm {installed} is outside the pinned {pin.specifier}"


def test_the_batch_step_is_the_one_the_lean_step_copies():
    from mlx_lm.generate import GenerationBatch

    assert parameters(GenerationBatch._step) == ["self"]
    source = inspect.getsource(GenerationBatch._step)
    digest = hashlib.sha256(source.encode()).hexdigest()
    assert digest == STEP_SHA256, (
        f"mlx-lm's GenerationBatch._step changed (sha256 {digest}); carry the change over to "
        "inference_svc.mlx_lm_compat.LeanGenerationBatch._step, then update STEP_SHA256")
    for name in ("logsumexp", "_current_tokens", "_current_logprobs", "_next_tokens", "_next_logprobs",
                 "fallback_sampler", "logits_processors", "prompt_cache", "mx.async_eval"):
        assert name in source, name


def test_a_generation_batch_has_the_fields_the_lean_step_uses():
    from mlx_lm.generate import GenerationBatch
    from mlx_lm.sample_utils import make_sampler

    assert parameters(GenerationBatch.empty) == ["model", "fallback_sampler"]
    batch = GenerationBatch.empty(None, make_sampler())
    for name in ("model", "uids", "prompt_cache", "tokens", "samplers", "fallback_sampler", "logits_processors",
                 "_current_tokens", "_current_logprobs", "_next_tokens", "_next_logprobs"):
        assert hasattr(batch, name), name
    assert issubclass(mlx_lm_compat.LeanGenerationBatch, GenerationBatch)
    response_fields = {f for f in GenerationBatch.Response.__dataclass_fields__}
    assert {"uid", "token", "finish_reason", "prompt_cache", "all_tokens"} <= response_fields


def test_the_batch_generator_takes_and_holds_what_the_engine_uses():
    from mlx_lm.generate import BatchGenerator

    init = parameters(BatchGenerator.__init__)
    for name in ("model", "stop_tokens", "completion_batch_size", "prefill_batch_size", "prefill_step_size"):
        assert name in init, name
    insert = parameters(BatchGenerator.insert)
    assert insert[:7] == ["self", "prompts", "max_tokens", "caches", "all_tokens", "samplers", "logits_processors"]
    assert parameters(BatchGenerator.remove) == ["self", "uids", "return_prompt_caches"]
    for name in ("next", "close"):
        assert callable(getattr(BatchGenerator, name)), name
    source = inspect.getsource(BatchGenerator)
    assert "self._generation_batch = GenerationBatch.empty(self.model, self.sampler)" in source
    assert "self._generation_batch.extend(" in source  # new sequences merge into the lean batch


def test_generate_step_takes_the_arguments_the_solo_path_passes():
    from mlx_lm.generate import generate_step

    signature = inspect.signature(generate_step)
    assert list(signature.parameters)[:2] == ["prompt", "model"]
    for name in ("max_tokens", "sampler", "prompt_cache", "prefill_step_size"):
        assert signature.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name


def test_the_detokenizers_leading_space_switches_exist():
    from mlx_lm.tokenizer_utils import BPEStreamingDetokenizer, SPMStreamingDetokenizer

    assert parameters(BPEStreamingDetokenizer._maybe_trim_space) == ["self", "current_text"]
    assert "trim_space" in parameters(SPMStreamingDetokenizer.__init__)


def test_plain_steps_run_one_sample_ahead_and_the_cache_says_how_far(tiny_model):
    """What `Solo.handover` takes back: after k tokens the KV cache holds the prompt and all k."""
    from mlx_lm.models.cache import make_prompt_cache

    from inference_svc.decode.sampling import greedy
    from inference_svc.loader import FLOAT32, load

    loaded = load(str(tiny_model), "", FLOAT32)
    prompt = loaded.tokenizer.encode("hello there")
    cache = make_prompt_cache(loaded.model)
    steps = mlx_lm_compat.plain_steps(prompt, loaded.model, max_tokens=10, sampler=greedy, cache=cache,
                                      prefill_step=512)
    for k in range(1, 4):
        next(steps)
        assert mlx_lm_compat.cached_length(cache) == len(prompt) + k - 1 + mlx_lm_compat.SAMPLES_AHEAD
    steps.close()


@pytest.mark.parametrize("continues", [False, True])
def test_keep_leading_space_keeps_the_first_tokens_space(tiny_model, continues):
    from inference_svc import prompts

    tokenizer = prompts.load(str(tiny_model))
    detokenizer = tokenizer.detokenizer
    if continues:
        mlx_lm_compat.keep_leading_space(detokenizer)
    for token in tokenizer.encode(" Paris", add_special_tokens=False):
        detokenizer.add_token(token)
    detokenizer.finalize()
    assert detokenizer.text == (" Paris" if continues else "Paris")
