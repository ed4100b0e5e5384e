"""What a job trains with (`TrainingConfig`) and how a trainer worker behaves (`WorkerOptions`).

The config's defaults are mlx-lm's own (`mlx_lm.lora.CONFIG_DEFAULTS` and its `lora_parameters`),
beside the hub's few knobs of its own (schedule, warmup, epochs, validation). Bounds per field are
declared in trainer.proto and checked at the gRPC edge; the rules that tie fields together are
checked here, so a bad value fails at creation with the field named rather than in a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlx_lm.lora import CONFIG_DEFAULTS
from pydantic import BaseModel, ConfigDict

from mlxhub import bounds
from mlxhub.config import Settings
from mlxhub.errors import InvalidArgument
from mlxhub.v1 import trainer_pb2

_LORA: dict[str, Any] = CONFIG_DEFAULTS["lora_parameters"]

# The step cap: the largest `iters`, which also bounds the steps `epochs` amounts to.
MAX_STEPS = int(bounds.of(trainer_pb2.TrainingConfig, "iters").maximum)


class TrainingConfig(BaseModel):
    """A job's training configuration. Fields left out take the default; which fields were given
    is known (`model_fields_set`), e.g. so that the default `num_layers` is capped at a small
    model's layer count while an explicit one too large for it is refused."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    fine_tune_type: str = CONFIG_DEFAULTS["fine_tune_type"]
    rank: int = _LORA["rank"]
    scale: float = _LORA["scale"]
    dropout: float = _LORA["dropout"]
    num_layers: int = CONFIG_DEFAULTS["num_layers"]
    learning_rate: float = CONFIG_DEFAULTS["learning_rate"]
    lr_schedule: str = "constant"  # the hub's: mlx-lm has no schedule unless given one
    warmup_steps: int = 0  # the hub's
    iters: int = CONFIG_DEFAULTS["iters"]
    epochs: int = 0  # the hub's: when given, the steps it amounts to replace `iters`
    batch_size: int = CONFIG_DEFAULTS["batch_size"]
    max_seq_length: int = CONFIG_DEFAULTS["max_seq_length"]
    mask_prompt: bool = CONFIG_DEFAULTS["mask_prompt"]
    grad_accumulation_steps: int = CONFIG_DEFAULTS["grad_accumulation_steps"]
    validation_split: float = 0.0  # the hub's: the fraction of the data held out
    validation_dataset: str = ""  # the hub's: or a registered dataset to validate on
    steps_per_eval: int = CONFIG_DEFAULTS["steps_per_eval"]
    val_batches: int = CONFIG_DEFAULTS["val_batches"]
    steps_per_report: int = CONFIG_DEFAULTS["steps_per_report"]
    save_every: int = CONFIG_DEFAULTS["save_every"]
    seed: int = CONFIG_DEFAULTS["seed"]
    grad_checkpoint: bool = CONFIG_DEFAULTS["grad_checkpoint"]

    def given(self, name: str) -> bool:
        """Whether the caller set `name` (to something other than the zero value)."""
        return name in self.model_fields_set and bool(getattr(self, name))

    def as_dict(self) -> dict[str, Any]:
        """The config as the job's events store it."""
        return self.model_dump()

    @classmethod
    def stored(cls, values: dict[str, Any]) -> TrainingConfig:
        """The config of a stored job (older jobs may lack fields added since: they take the defaults)."""
        return cls.model_validate(values)


def check(config: TrainingConfig) -> TrainingConfig:
    """The rules that tie fields together; the config itself when it passes."""
    if config.given("iters") and config.given("epochs"):
        raise InvalidArgument("give either config.iters or config.epochs, not both", field="config.iters")
    if config.given("validation_split") and config.given("validation_dataset"):
        raise InvalidArgument("give either config.validation_split or config.validation_dataset, not both",
                              field="config.validation_split")
    return config


def check_total_steps(c: TrainingConfig, steps: int, train_records: int) -> int:
    """`steps` when within the step cap; an epochs-based config over it is refused at creation."""
    if steps > MAX_STEPS:
        raise InvalidArgument(
            f"config.epochs={c.epochs} amounts to {steps} steps ({train_records} training examples in batches of "
            f"{c.batch_size}, {c.epochs} times); the limit is {MAX_STEPS} steps: use fewer epochs, a larger "
            "config.batch_size, or config.iters", field="config.epochs")
    return steps


def lora_parameters(c: TrainingConfig) -> dict[str, Any]:
    return {"rank": c.rank, "scale": c.scale, "dropout": c.dropout}


def adapter_config(c: TrainingConfig, base_path: str) -> dict[str, Any]:
    """What `mlx_lm.load(..., adapter_path=...)` and `mlx_lm.lora` write and read."""
    return {
        "model": base_path,
        "fine_tune_type": c.fine_tune_type,
        "num_layers": c.num_layers,
        "lora_parameters": lora_parameters(c),
        "batch_size": c.batch_size,
        "iters": c.iters,
        "learning_rate": c.learning_rate,
        "max_seq_length": c.max_seq_length,
        "mask_prompt": c.mask_prompt,
        "grad_accumulation_steps": c.grad_accumulation_steps,
        "seed": c.seed,
    }


@dataclass(frozen=True)
class WorkerOptions:
    """How a trainer worker paces its work item, and when the reaper gives a silent worker up."""

    ack_wait: float = 60.0
    heartbeat: float = 5.0
    heartbeat_timeout: float = 30.0
    max_attempts: int = 3

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerOptions:
        """The options `settings.trainer` (the MLXHUB_TRAINER_* variables) asks for."""
        given = settings.trainer
        return cls(ack_wait=given.ack_wait, heartbeat=given.heartbeat, heartbeat_timeout=given.heartbeat_timeout,
                   max_attempts=given.max_attempts)
