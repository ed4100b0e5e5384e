"""Training configuration: proto zero values mean "the default", resolved here to the
same defaults `mlx_lm.lora` uses, and checked so a bad value fails at creation with
the field named rather than minutes later in a worker."""

from __future__ import annotations

import math
from typing import Any

from mlxhub.errors import InvalidArgument
from mlxhub.v1 import trainer_pb2

# mlx_lm.lora's CONFIG_DEFAULTS (and its lora_parameters), plus the hub's own knobs.
DEFAULTS: dict[str, Any] = {
    "fine_tune_type": "lora",
    "rank": 8,
    "scale": 20.0,
    "dropout": 0.0,
    "num_layers": 16,
    "learning_rate": 1e-5,
    "lr_schedule": "constant",
    "warmup_steps": 0,
    "iters": 1000,
    "epochs": 0,
    "batch_size": 4,
    "max_seq_length": 2048,
    "mask_prompt": False,
    "grad_accumulation_steps": 1,
    "validation_split": 0.0,
    "validation_dataset": "",
    "steps_per_eval": 200,
    "val_batches": 25,
    "steps_per_report": 10,
    "save_every": 100,
    "seed": 0,
    "grad_checkpoint": False,
}
MAX_STEPS = 10_000_000


def _enum(value: int, enum, prefix: str, default: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower() if value else default


def resolve(config: trainer_pb2.TrainingConfig) -> dict[str, Any]:
    """The proto config with defaults filled in, validated field by field."""
    c = dict(DEFAULTS)
    for name in DEFAULTS:
        if name in ("fine_tune_type", "lr_schedule"):
            continue
        value = getattr(config, name)
        if value:
            c[name] = value
    c["fine_tune_type"] = _enum(config.fine_tune_type, trainer_pb2.FineTuneType, "FINE_TUNE_TYPE_", "lora")
    c["lr_schedule"] = _enum(config.lr_schedule, trainer_pb2.LearningRateSchedule, "LEARNING_RATE_SCHEDULE_", "constant")
    if config.iters and config.epochs:
        raise InvalidArgument("give either config.iters or config.epochs, not both", field="config.iters")

    def positive(name: str, limit: float = math.inf) -> None:
        if not (0 < c[name] <= limit) or (isinstance(c[name], float) and not math.isfinite(c[name])):
            raise InvalidArgument(f"config.{name} must be > 0{f' and <= {limit}' if limit != math.inf else ''}, "
                                  f"got {c[name]}", field=f"config.{name}")

    for name in ("rank", "batch_size", "max_seq_length", "grad_accumulation_steps", "steps_per_eval",
                 "steps_per_report", "save_every"):
        positive(name, MAX_STEPS)
    positive("iters", MAX_STEPS)
    if c["epochs"] < 0:
        raise InvalidArgument(f"config.epochs must be >= 0, got {c['epochs']}", field="config.epochs")
    positive("learning_rate", 1.0)
    positive("scale")
    if not 0 <= c["dropout"] < 1:
        raise InvalidArgument(f"config.dropout must be in [0, 1), got {c['dropout']}", field="config.dropout")
    if c["num_layers"] < -1:
        raise InvalidArgument(f"config.num_layers must be > 0, or -1 for all layers, got {c['num_layers']}",
                              field="config.num_layers")
    if c["warmup_steps"] < 0:
        raise InvalidArgument(f"config.warmup_steps must be >= 0, got {c['warmup_steps']}", field="config.warmup_steps")
    if c["val_batches"] < -1 or c["val_batches"] == 0:
        raise InvalidArgument(f"config.val_batches must be > 0, or -1 for the whole validation set, got "
                              f"{c['val_batches']}", field="config.val_batches")
    if not 0 <= c["validation_split"] < 1:
        raise InvalidArgument(f"config.validation_split must be in [0, 1), got {c['validation_split']}",
                              field="config.validation_split")
    if c["validation_split"] and c["validation_dataset"]:
        raise InvalidArgument("give either config.validation_split or config.validation_dataset, not both",
                              field="config.validation_split")
    if c["seed"] < 0:
        raise InvalidArgument(f"config.seed must be >= 0, got {c['seed']}", field="config.seed")
    return c


def to_proto(c: dict[str, Any]) -> trainer_pb2.TrainingConfig:
    fields = {k: v for k, v in c.items() if k not in ("fine_tune_type", "lr_schedule")}
    return trainer_pb2.TrainingConfig(
        fine_tune_type=trainer_pb2.FineTuneType.Value(f"FINE_TUNE_TYPE_{c['fine_tune_type'].upper()}"),
        lr_schedule=trainer_pb2.LearningRateSchedule.Value(f"LEARNING_RATE_SCHEDULE_{c['lr_schedule'].upper()}"),
        **fields,
    )


def lora_parameters(c: dict[str, Any]) -> dict[str, Any]:
    return {"rank": c["rank"], "scale": c["scale"], "dropout": c["dropout"]}


def adapter_config(c: dict[str, Any], base_path: str) -> dict[str, Any]:
    """What `mlx_lm.load(..., adapter_path=...)` and `mlx_lm.lora` write and read."""
    return {
        "model": base_path,
        "fine_tune_type": c["fine_tune_type"],
        "num_layers": c["num_layers"],
        "lora_parameters": lora_parameters(c),
        "batch_size": c["batch_size"],
        "iters": c["iters"],
        "learning_rate": c["learning_rate"],
        "max_seq_length": c["max_seq_length"],
        "mask_prompt": c["mask_prompt"],
        "grad_accumulation_steps": c["grad_accumulation_steps"],
        "seed": c["seed"],
    }
