"""Replace modules of a loaded model in place: the one way every faster module (and the fused
LoRA layers of an adapter) gets into a model, so a new swap is a function from a module to its
replacement and nothing else."""

from __future__ import annotations

from collections.abc import Callable

from mlx import nn
from mlx.utils import tree_unflatten


def swap_modules(model: nn.Module, replacement: Callable[[str, nn.Module], nn.Module | None]) -> int:
    """Put `replacement(name, module)` in place of every module of `model` for which it is not None;
    how many were replaced. The replacements are all chosen before any is put in place."""
    swapped = []
    for name, module in model.named_modules():
        new = replacement(name, module)
        if new is not None:
            swapped.append((name, new))
    if swapped:
        model.update_modules(tree_unflatten(swapped))
    return len(swapped)
