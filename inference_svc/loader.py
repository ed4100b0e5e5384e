"""Load a model version (base, or base + LoRA adapter) in the weight format that decodes
fastest on the running backend.

Measured on a 2-core x86 Linux box (SmolLM2-135M, DESIGN §7): MLX's quantized CPU
kernels are scalar (4-bit: ~7 tok/s, ~3 s to the first token, whatever the BLAS),
while fp32 goes through `cblas_sgemm` (with OpenBLAS: ~0.25 s TTFT, 16-20 tok/s;
even on the reference BLAS fp32 decodes a little faster than 4-bit). On Metal the
quantized kernels are the fast ones and need a quarter of the memory. So: on the
CPU dequantize to float32, on the GPU keep the weights as stored.
`MLXHUB_INFERENCE_WEIGHTS=quantized|float32` overrides the choice.

An fp32 model on the CPU also gets modules that decode faster there, with the same
parameters (`inference_svc.cpu`): the rotary embedding reads its angles from a table, the
MLP gate avoids MLX's scalar exp and the output head takes the BLAS's faster orientation
for batches.

An adapter version loads only its LoRA matrices (`inference_svc.lora`): the engine attaches
them to its loaded base, whose weights every adapter of that base shares, and they move into
the base's pack of adapter matrices, their one copy from then on.

A load takes seconds (reading, dequantizing): the engine runs it off its decode thread
(`inference_svc.decode.loads`), so streams already running go on meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx.core as mx
from mlx import nn
from mlx.utils import tree_flatten
from mlx_lm.utils import dequantize_model, load_model

from inference_svc import lora, prompts
from inference_svc.cpu import use_cpu_modules

FLOAT32 = "float32"
QUANTIZED = "as stored (quantized if the checkpoint is)"


def backend() -> str:
    """"gpu" (Metal / CUDA) or "cpu": where MLX runs by default in this process."""
    return "gpu" if mx.default_device() == mx.gpu else "cpu"


def weight_format(choice: str = "auto") -> str:
    """The format weights are served in for MLXHUB_INFERENCE_WEIGHTS=`choice` (auto: by backend)."""
    if choice in ("float32", "fp32"):
        return FLOAT32
    if choice == "quantized":
        return QUANTIZED
    return FLOAT32 if backend() == "cpu" else QUANTIZED


@dataclass
class Loaded:
    model: nn.Module
    tokenizer: Any
    context: int
    nbytes: int
    vocab_size: int = 0  # rows of the logits; 0: unknown


def _context(config: dict[str, Any], tokenizer) -> int:
    for value in (config.get("max_position_embeddings"), getattr(tokenizer, "model_max_length", None)):
        if isinstance(value, int) and 0 < value < 10_000_000:
            return value
    return 4096


def load(path: str, adapter_path: str = "", fmt: str = FLOAT32, tokenizer: Any = None) -> Loaded | lora.Adapter:
    """Load the mlx-lm directory `path` in format `fmt`, or, given `adapter_path`, only that adapter's
    LoRA matrices (to attach to the loaded base `path`); `tokenizer`: the directory's tokenizer when
    the caller has it loaded already."""
    if adapter_path:
        return lora.read_adapter(adapter_path)
    model, config = load_model(Path(path))
    if fmt == FLOAT32:
        model = dequantize_model(model)
        model.set_dtype(mx.float32)
    model.eval()
    mx.eval(model.parameters())
    if tokenizer is None:
        tokenizer = prompts.load(path)
    context = _context(config, tokenizer)
    if fmt == FLOAT32 and backend() == "cpu":
        use_cpu_modules(model, context)
    nbytes = sum(v.nbytes for _, v in tree_flatten(model.parameters()))
    vocab_size = getattr(getattr(model, "args", None), "vocab_size", None) or config.get("vocab_size") or 0
    return Loaded(model, tokenizer, context, nbytes, int(vocab_size))

