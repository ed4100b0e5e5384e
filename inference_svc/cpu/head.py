"""The output head (hidden states -> vocabulary logits) computed in the orientation the BLAS
runs fastest for a batch of decoding sequences.

The head is a decode step's widest matmul: SmolLM2's is 49152x576, 113 MB of fp32 read once
a step. mlx-lm computes it as `x @ W.T`. At one or two rows (sequences) oneMKL streams W at
memory speed (~6-8 ms); from 4 rows it takes a small-M path: 16 ms at 4 rows, 19-31 ms at
8. The same product as `(W @ x.T).T`, a tall-skinny matmul, takes 16 ms at 8 rows (and
twice as long as `x @ W.T` at 2). So from `WIDE_FROM` rows on the head takes that form;
OpenBLAS runs both forms alike. `use_streaming_head` swaps the heads of a CPU fp32 model
(an untied `lm_head`, or the tied embedding's `as_linear`); parameters and logits stay the same.
"""

from __future__ import annotations

import mlx.core as mx
from mlx import nn

from inference_svc.cpu.swap import swap_modules

WIDE_FROM = 8  # rows (sequences x positions) from which W @ x.T beats x @ W.T


def project(x: mx.array, weight: mx.array) -> mx.array:
    """`x @ weight.T`, for `x` of shape (..., d) and `weight` of shape (vocab, d)."""
    rows = x.size // x.shape[-1]
    if rows < WIDE_FROM:
        return x @ weight.T
    return (weight @ x.reshape(rows, x.shape[-1]).T).T.reshape(*x.shape[:-1], weight.shape[0])


class StreamingEmbedding(nn.Embedding):
    """A token embedding whose `as_linear` (the tied output head) uses `project`."""

    def __init__(self, embedding: nn.Embedding) -> None:
        nn.Module.__init__(self)  # not nn.Embedding's: it would draw a fresh random table
        self.weight = embedding.weight

    def as_linear(self, x: mx.array) -> mx.array:
        return project(x, self.weight)


class StreamingHead(nn.Linear):
    """An untied output head (`lm_head`) that uses `project`."""

    def __init__(self, linear: nn.Linear) -> None:
        nn.Module.__init__(self)
        self.weight = linear.weight
        if "bias" in linear:
            self.bias = linear.bias

    def __call__(self, x: mx.array) -> mx.array:
        out = project(x, self.weight)
        return out + self.bias if "bias" in self else out


def use_streaming_head(model: nn.Module) -> int:
    """Swap `model`'s output heads (`lm_head` and token embeddings) for streaming ones; how many."""

    def streaming(name: str, module: nn.Module) -> nn.Module | None:
        if type(module) is nn.Embedding:
            return StreamingEmbedding(module)
        if type(module) is nn.Linear and name.rsplit(".", 1)[-1] == "lm_head":
            return StreamingHead(module)
        return None

    return swap_modules(model, streaming)
