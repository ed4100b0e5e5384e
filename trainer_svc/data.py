"""Datasets as mlx-lm's tuner reads them (chat / completions / text JSONL), split and
checked against the model's tokenizer: the checks run when a job is created, so a
dataset the tokenizer cannot train on fails with INVALID_ARGUMENT, not in a worker.
A worker reads the training file once more, and trains only on those bytes if they
still hash to what the registry recorded and the path still resolves under a data
root, so lineage never names a hash other than the data trained on."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlxhub.errors import FailedPrecondition, InvalidArgument
from trainer_svc.config import TrainingConfig


@dataclass
class Splits:
    train: Any  # mlx-lm dataset objects (ChatDataset, CompletionsDataset, TextDataset)
    valid: Any | None
    train_records: int
    valid_records: int


def read_jsonl(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def read_registered(path: str, sha256: str, roots: tuple[Path, ...]) -> list[dict[str, Any]]:
    """The records of a registered dataset file, read once: FAILED_PRECONDITION if the path no longer
    resolves (symlinks followed) to a file under one of `roots`, or if its bytes no longer hash to
    the registered `sha256`."""
    allowed = ", ".join(str(r) for r in roots)
    try:
        real = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):
        raise FailedPrecondition(f"dataset file {path} is gone since it was registered; restore it, or register "
                                 "the data again and create a new job", field="dataset") from None
    if not any(real == root.resolve() or real.is_relative_to(root.resolve()) for root in roots):
        raise FailedPrecondition(f"dataset file {path} now resolves to {real}, outside the data roots ({allowed}); "
                                 "restore the registered file", field="dataset")
    content = real.read_bytes()
    actual = hashlib.sha256(content).hexdigest()
    if actual != sha256:
        raise FailedPrecondition(f"dataset file {path} changed since it was registered: its sha256 is now {actual}, "
                                 f"registered {sha256}; restore the file, or register the changed file as a new "
                                 "dataset and train on that", field="dataset")
    return [json.loads(line) for line in content.decode("utf-8").splitlines() if line.strip()]


def split(records: list[dict[str, Any]], fraction: float, seed: int) -> tuple[list, list]:
    """Hold out `fraction` of the records for validation, the same way for every attempt."""
    if not fraction:
        return records, []
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    held = max(1, round(len(records) * fraction))
    valid = {i for i in order[:held]}
    return [r for i, r in enumerate(records) if i not in valid], [r for i, r in enumerate(records) if i in valid]


def wrap(records: list[dict[str, Any]], tokenizer, config: TrainingConfig):
    from mlx_lm.tuner.datasets import create_dataset

    return create_dataset(records, tokenizer, config)


def load_splits(dataset_path: str, validation_path: str, tokenizer, config: TrainingConfig,
                registered: tuple[str, tuple[Path, ...]] | None = None) -> Splits:
    """The train and validation sets; given `registered` (the dataset's sha256 and the data roots),
    the training file is verified as it is read (`read_registered`)."""
    records = read_registered(dataset_path, *registered) if registered else read_jsonl(dataset_path)
    if validation_path:
        train, valid = records, read_jsonl(validation_path)
    else:
        train, valid = split(records, config.validation_split, config.seed)
    return Splits(wrap(train, tokenizer, config), wrap(valid, tokenizer, config) if valid else None,
                  len(train), len(valid))


def total_steps(config: TrainingConfig, train_records: int) -> int:
    if config.epochs:
        return config.epochs * max(1, train_records // config.batch_size)
    return config.iters


def check(dataset_format: str, dataset_path: str, validation_path: str, tokenizer, config: TrainingConfig,
          registered: tuple[str, tuple[Path, ...]] | None = None) -> Splits:
    """Raise INVALID_ARGUMENT naming the field if the job could not train on this data (FAILED_PRECONDITION
    if, given `registered`, the file is no longer what was registered)."""
    if dataset_format in ("CHAT", "COMPLETIONS") and not getattr(tokenizer, "chat_template", None):
        raise InvalidArgument(
            f"dataset is in {dataset_format.lower()} format but the model's tokenizer has no chat template; "
            "use a text dataset ({\"text\": ...}) or a model whose tokenizer_config.json has a chat_template",
            field="dataset",
        )
    if dataset_format == "TEXT" and config.mask_prompt:
        raise InvalidArgument("config.mask_prompt needs a chat or completions dataset; this one is text",
                              field="config.mask_prompt")
    try:
        splits = load_splits(dataset_path, validation_path, tokenizer, config, registered)
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidArgument(f"dataset cannot be read for training: {exc}", field="dataset") from None
    for name, data, field in (("training", splits.train, "dataset"), ("validation", splits.valid, "config")):
        if data is None:
            continue
        if len(data) < config.batch_size:
            raise InvalidArgument(
                f"the {name} set has {len(data)} examples, fewer than config.batch_size={config.batch_size}; "
                "lower the batch size or add examples",
                field="config.batch_size" if name == "training" else
                ("config.validation_split" if config.validation_split else "config.validation_dataset"),
            )
        lengths = []
        for i in range(len(data)):
            try:
                tokens, _offset = data.process(data[i])
            except Exception as exc:  # noqa: BLE001  (the tokenizer's own message is the useful part)
                raise InvalidArgument(f"{name} example {i + 1} cannot be tokenized: {exc}", field=field) from None
            lengths.append(len(tokens))
        too_long = [n for n in lengths if n > config.max_seq_length]
        if too_long:
            raise InvalidArgument(
                f"{len(too_long)} of {len(lengths)} {name} examples are longer than config.max_seq_length="
                f"{config.max_seq_length} tokens (the longest has {max(too_long)}); raise max_seq_length or "
                "split those examples",
                field="config.max_seq_length",
            )
    return splits
