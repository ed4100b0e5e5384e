"""Modules that decode a float32 model faster on the CPU, with the same parameters and results:
the rotary embedding from a table (`rope`), the MLP gate without MLX's scalar exp
(`activation`) and the output head in the BLAS's faster orientation (`head`). Each is put in
place of mlx-lm's own module by `swap.swap_modules`; `use_cpu_modules` swaps all three."""

from __future__ import annotations

from mlx import nn

from inference_svc.cpu.activation import use_fast_gate
from inference_svc.cpu.head import use_streaming_head
from inference_svc.cpu.rope import use_table_rope


def use_cpu_modules(model: nn.Module, context: int) -> None:
    """Swap in the modules that decode an fp32 model faster on the CPU (same parameters)."""
    use_table_rope(model, context)
    use_fast_gate(model)
    use_streaming_head(model)
