"""Rotary position embedding from a precomputed cos/sin table, for decoding on the CPU.

MLX's `mx.fast.rope` has no CPU kernel: there it runs as a graph of ~15 small ops
(~0.2 ms a call, two calls a layer: ~12 ms of a ~70 ms SmolLM2 decode step). Looking the
angles up in a table built once per model leaves four ops (~0.07 ms a call), with the same
results to ~1e-6. `use_table_rope` swaps every plain `nn.RoPE` of a model for one; other
rotary variants (Llama 3, YaRN, ...) and partial rotary dimensions keep MLX's own.
"""

from __future__ import annotations

import mlx.core as mx
from mlx import nn

from inference_svc.cpu.swap import swap_modules


class TableRoPE(nn.Module):
    """`nn.RoPE` (full head dimension) with angles read from a table of `positions` rows."""

    def __init__(self, rope: nn.RoPE, positions: int) -> None:
        super().__init__()
        self.dims, self.traditional, self.positions = rope.dims, rope.traditional, positions
        self._rope = rope  # for what the table does not cover
        inverse = rope.base ** (-mx.arange(0, rope.dims, 2, dtype=mx.float32) / rope.dims)
        angles = (mx.arange(positions, dtype=mx.float32) * rope.scale)[:, None] * inverse[None]
        cos, sin = mx.cos(angles), mx.sin(angles)
        if rope.traditional:  # rotates interleaved pairs (x0, x1), (x2, x3), ...
            self._cos = mx.repeat(cos, 2, axis=-1)
            self._sin = mx.stack([-sin, sin], axis=-1).reshape(positions, rope.dims)
        else:  # rotates the two halves
            self._cos = mx.concatenate([cos, cos], axis=-1)
            self._sin = mx.concatenate([-sin, sin], axis=-1)
        mx.eval(self._cos, self._sin)  # underscored: not parameters, so not saved, cast or counted

    def __call__(self, x: mx.array, offset: int | mx.array = 0) -> mx.array:
        length, dims = x.shape[-2], x.shape[-1]
        if dims != self.dims or x.dtype != mx.float32:
            return self._rope(x, offset=offset)
        if isinstance(offset, int):
            if offset + length > self.positions:
                return self._rope(x, offset=offset)
            cos, sin = self._cos[offset:offset + length], self._sin[offset:offset + length]
        else:  # one offset per sequence of a batch (left-padded rows start negative; they are masked)
            rows = mx.clip(offset.reshape(-1, 1) + mx.arange(length), 0, self.positions - 1)
            cos, sin = self._cos[rows][:, None], self._sin[rows][:, None]
        if self.traditional:
            swapped = x.reshape(*x.shape[:-1], dims // 2, 2)[..., ::-1].reshape(x.shape)
        else:
            swapped = mx.concatenate([x[..., dims // 2:], x[..., :dims // 2]], axis=-1)
        return x * cos + swapped * sin


def use_table_rope(model: nn.Module, positions: int) -> int:
    """Swap `model`'s plain `nn.RoPE` modules for table ones (one table per distinct RoPE); how many."""
    tables: dict[tuple, TableRoPE] = {}

    def table(name: str, module: nn.Module) -> TableRoPE | None:
        if type(module) is not nn.RoPE:
            return None
        key = (module.dims, module.traditional, module.base, module.scale)
        if key not in tables:
            tables[key] = TableRoPE(module, positions)
        return tables[key]

    return swap_modules(model, table)
