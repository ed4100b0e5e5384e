"""The LoRA training loop: mlx-lm's tuner pieces (LoRA layers, datasets, batching, the
compiled step of `mlx_lm.tuner.trainer.train`) in a loop we own, so that every step
can be reported, checked for NaN, cancelled, and checkpointed with optimizer state
and step counter, and a resumed run continues exactly where it stopped."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import mlx.core as mx
import mlx.optimizers as optim
import numpy as np
from mlx import nn
from mlx.nn.utils import average_gradients
from mlx.utils import tree_flatten, tree_map, tree_unflatten
from mlx_lm.tuner.datasets import CacheDataset
from mlx_lm.tuner.trainer import default_loss, evaluate, grad_checkpoint, iterate_batches
from mlx_lm.tuner.utils import build_schedule, linear_to_lora_layers

from mlxhub.digest import sha256_file
from trainer_svc.config import TrainingConfig, lora_parameters
from trainer_svc.data import load_splits

log = logging.getLogger(__name__)

class TrainingFailed(Exception):
    """The run cannot go on (NaN loss, bad model); the message is the job's failure reason."""


class Hooks(Protocol):
    def on_step(self, progress: dict[str, Any]) -> None: ...
    def on_checkpoint(self, checkpoint: dict[str, Any]) -> None: ...
    def should_stop(self) -> bool: ...


@dataclass
class Result:
    step: int
    loss: float
    validation_loss: float | None
    stopped: bool
    weights: dict[str, mx.array]
    trained_tokens: int


def learning_rate(config: TrainingConfig, total_steps: int):
    lr = config.learning_rate
    if config.lr_schedule == "constant" and not config.warmup_steps:
        return lr
    decay = {"constant": ("linear_schedule", [lr, lr, 1]), "cosine_decay": ("cosine_decay", [lr, total_steps]),
             "linear": ("linear_schedule", [lr, 0.0, total_steps])}[config.lr_schedule]
    return build_schedule({"name": decay[0], "arguments": decay[1], "warmup": config.warmup_steps})


def save_checkpoint(directory: Path, step: int, model: nn.Module, optimizer, extra: dict[str, Any]) -> dict[str, Any]:
    """Adapter weights, optimizer state and counters, written to a temp dir then renamed."""
    final = directory / f"{step:07d}"
    tmp = directory / f".{step:07d}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        mx.save_safetensors(str(tmp / "adapters.safetensors"), dict(tree_flatten(model.trainable_parameters())))
        mx.save_safetensors(str(tmp / "optimizer.safetensors"), dict(tree_flatten(optimizer.state)))
        (tmp / "state.json").write_text(json.dumps({"step": step, **extra}))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"step": step, "path": str(final), "sha256": sha256_file(final / "adapters.safetensors")}


def restore_checkpoint(path: str, model: nn.Module, optimizer) -> dict[str, Any]:
    model.load_weights(str(Path(path) / "adapters.safetensors"), strict=False)
    state = mx.load(str(Path(path) / "optimizer.safetensors"))
    optimizer.state = tree_unflatten(list(state.items()))
    optimizer.init(model.trainable_parameters())
    return json.loads((Path(path) / "state.json").read_text())


def train(spec: dict[str, Any], work_dir: Path, hooks: Hooks) -> Result:
    """Train the job described by `spec` (base_path, dataset paths, config, total_steps, resume_from, and
    `registered`: the dataset's registered sha256 and the data roots, to verify it against)."""
    from mlx_lm import load

    config, total = spec["config"], spec["total_steps"]
    model, tokenizer = load(spec["base_path"])
    splits = load_splits(spec["dataset_path"], spec["validation_path"], tokenizer, config, spec.get("registered"))
    train_set = CacheDataset(splits.train)
    valid_set = CacheDataset(splits.valid) if splits.valid is not None else None

    np.random.seed(config.seed)
    mx.random.seed(config.seed)
    model.freeze()
    if config.num_layers > len(model.layers):
        raise TrainingFailed(f"config.num_layers={config.num_layers} but the model has {len(model.layers)} layers")
    linear_to_lora_layers(model, config.num_layers, lora_parameters(config),
                          use_dora=config.fine_tune_type == "dora")
    optimizer = optim.Adam(learning_rate=learning_rate(config, total))
    optimizer.init(model.trainable_parameters())
    start, trained_tokens = 0, 0
    resume = spec.get("resume_from")
    if resume:
        counters = restore_checkpoint(resume["path"], model, optimizer)
        start, trained_tokens = counters["step"], counters.get("trained_tokens", 0)
        # MLX's RNG state cannot be restored; reseed per step so a resumed run is at least deterministic
        # (it only matters with dropout > 0).
        mx.random.seed(config.seed + start)
    if config.grad_checkpoint:
        grad_checkpoint(model.layers[0])

    accumulate = config.grad_accumulation_steps
    loss_value_and_grad = nn.value_and_grad(model, default_loss)
    state = [model.state, optimizer.state, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(batch, prev_grad, do_update):  # mlx_lm.tuner.trainer.train's step, unchanged
        (lvalue, toks), grad = loss_value_and_grad(model, *batch)
        if prev_grad is not None:
            grad = tree_map(lambda x, y: x + y, grad, prev_grad)
        if do_update:
            grad = average_gradients(grad)
            if accumulate > 1:
                grad = tree_map(lambda x: x / accumulate, grad)
            optimizer.update(model, grad)
            grad = None
        return lvalue, toks, grad

    def validate() -> float | None:
        if valid_set is None:
            return None
        loss = evaluate(model=model, dataset=valid_set, batch_size=config.batch_size,
                        num_batches=config.val_batches, max_seq_length=config.max_seq_length)
        model.train()
        if not math.isfinite(loss):  # e.g. no target tokens in the validation batches: 0/0
            log.warning("validation loss is %s; reported as absent, never recorded as a number", loss)
            return None
        return loss

    checkpoints = work_dir / "checkpoints"
    batches = iterate_batches(dataset=train_set, batch_size=config.batch_size,
                              max_seq_length=config.max_seq_length, loop=True)
    for _ in range(start):  # the same data order as an uninterrupted run
        next(batches)
    model.train()
    grad_accum, loss, val_loss, it = None, math.nan, None, start
    if start == 0 and valid_set is not None:
        val_loss = validate()
        hooks.on_step({"step": 0, "validation_loss": val_loss})
    for it in range(start + 1, total + 1):
        batch = next(batches)
        tic = time.perf_counter()  # like mlx_lm's trainer: the step's compute, not batch assembly
        lvalue, toks, grad_accum = step(batch, grad_accum, it % accumulate == 0)
        mx.eval(state, lvalue, toks, grad_accum)
        if mx.get_cache_memory() > 0:  # mlx_lm's trainer does the same with its default clear_cache_threshold=0
            mx.clear_cache()
        seconds = time.perf_counter() - tic
        loss, tokens = lvalue.item(), int(toks.item())
        if not math.isfinite(loss):
            raise TrainingFailed(
                f"loss is {'NaN' if math.isnan(loss) else 'infinite'} at step {it}; training diverged (lower "
                "config.learning_rate, check the data, or check the base model's weights)"
            )
        trained_tokens += tokens
        progress = {"step": it, "loss": loss, "learning_rate": optimizer.learning_rate.item(),
                    "tokens_per_second": tokens / seconds if seconds else 0.0, "trained_tokens": trained_tokens,
                    "peak_memory_gb": mx.get_peak_memory() / 1e9}
        checkpoint_due = it % config.save_every == 0 and it < total
        stopping = it < total and it % accumulate == 0 and hooks.should_stop()
        if valid_set is not None and (it % config.steps_per_eval == 0 or it == total or checkpoint_due or stopping):
            val_loss = validate()
            progress["validation_loss"] = val_loss
        hooks.on_step(progress)
        if checkpoint_due or stopping:
            saved = save_checkpoint(checkpoints, it, model, optimizer, {"trained_tokens": trained_tokens, "loss": loss})
            hooks.on_checkpoint({**saved, "validation_loss": val_loss, "loss": loss})
        if stopping:
            break
    weights = dict(tree_flatten(model.trainable_parameters()))
    return Result(step=it, loss=loss, validation_loss=val_loss, stopped=it < total, weights=weights,
                  trained_tokens=trained_tokens)
