"""Training configuration: proto zero values mean "the default", resolved here to the
same defaults `mlx_lm.lora` uses, and checked so a bad value fails at creation with
the field named rather than minutes later in a worker."""

from __future__ import annotations

from typing import Any

from mlxhub import bounds
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
# The step cap: the largest `iters`, which also bounds the steps `epochs` amounts to.
MAX_STEPS = int(bounds.of(trainer_pb2.TrainingConfig, "iters").maximum)


def _enum(value: int, enum, prefix: str, default: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower() if value else default


def resolve(config: trainer_pb2.TrainingConfig) -> dict[str, Any]:
    """The proto config with defaults filled in, validated field by field: the ranges are those
    trainer.proto declares (`(mlxhub.v1.bounds)`), then the rules that tie fields together."""
    bounds.check(config, "config.")
    if config.iters and config.epochs:
        raise InvalidArgument("give either config.iters or config.epochs, not both", field="config.iters")
    if config.validation_split and config.validation_dataset:
        raise InvalidArgument("give either config.validation_split or config.validation_dataset, not both",
                              field="config.validation_split")
    c = dict(DEFAULTS)
    for name in DEFAULTS:
        if name in ("fine_tune_type", "lr_schedule"):
            continue
        value = getattr(config, name)
        if value:
            c[name] = value
    c["fine_tune_type"] = _enum(config.fine_tune_type, trainer_pb2.FineTuneType, "FINE_TUNE_TYPE_", "lora")
    c["lr_schedule"] = _enum(config.lr_schedule, trainer_pb2.LearningRateSchedule, "LEARNING_RATE_SCHEDULE_", "constant")
    return c


def check_total_steps(c: dict[str, Any], steps: int, train_records: int) -> int:
    """`steps` when within the step cap; an epochs-based config over it is refused at creation."""
    if steps > MAX_STEPS:
        raise InvalidArgument(
            f"config.epochs={c['epochs']} amounts to {steps} steps ({train_records} training examples in batches of "
            f"{c['batch_size']}, {c['epochs']} times); the limit is {MAX_STEPS} steps: use fewer epochs, a larger "
            "config.batch_size, or config.iters", field="config.epochs")
    return steps


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
