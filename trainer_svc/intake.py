"""Turn a requested training job into one the workers can run, or refuse it now:
resolve the base model and datasets through the registry (with the caller's
authorization), resolve the config, and check the data against the tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlxhub.errors import InvalidArgument
from mlxhub.names import version_name
from trainer_svc import config as job_config
from trainer_svc import data
from trainer_svc.config import TrainingConfig
from trainer_svc.registry_client import RegistryClient


def model_layers(model_dir: str) -> int | None:
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    text = config.get("text_config", config)
    return text.get("num_hidden_layers") or text.get("n_layer") or text.get("num_layers")


def load_tokenizer(model_dir: str):
    from mlx_lm.tokenizer_utils import load

    return load(Path(model_dir))


def prepare(registry: RegistryClient, metadata, data_roots: tuple[Path, ...], model_ref: str, dataset_name: str,
            config: TrainingConfig, output_model: str = "") -> dict[str, Any]:
    """The job's fields (for `TrainingJob`, minus who and the key). The dataset is read as the worker will
    read it: only if it is still the file registered, under one of `data_roots`. `metadata` is the caller's
    authorization, forwarded so that the registry decides with the caller's rights."""
    if not model_ref:
        raise InvalidArgument("model is empty; give NAME, NAME@ALIAS or NAME/versions/N", field="model")
    if not dataset_name:
        raise InvalidArgument("dataset is empty; give the name of a registered dataset", field="dataset")
    job_config.check(config)
    version = registry.resolve(model_ref, metadata)
    if version.kind != "FULL":
        raise InvalidArgument(f"model {model_ref!r} resolves to an adapter version; train from a full model "
                              f"version (its base is {version.base_version})", field="model")
    dataset = registry.dataset(dataset_name, "dataset", metadata)
    validation_path = ""
    if config.validation_dataset:
        validation_path = registry.dataset(config.validation_dataset, "config.validation_dataset", metadata).path
    if output_model:
        registry.model(output_model, "output_model", metadata)
    layers = model_layers(version.artifact_path)
    if layers and not config.given("num_layers"):  # the default (16) on a smaller model: all layers
        config = config.model_copy(update={"num_layers": min(config.num_layers, layers)})
    if layers and config.num_layers > layers:
        raise InvalidArgument(f"config.num_layers={config.num_layers} but the model has {layers} layers; use at "
                              f"most {layers}, or -1 for all", field="config.num_layers")
    try:
        tokenizer = load_tokenizer(version.artifact_path)
    except Exception as exc:  # noqa: BLE001  (transformers raises many kinds)
        raise InvalidArgument(f"the tokenizer of {model_ref!r} cannot be loaded: {exc}", field="model") from None
    splits = data.check(dataset.format, dataset.path, validation_path, tokenizer, config, (dataset.sha256, data_roots))
    return {
        "model": model_ref,
        "base_version": version_name(version.model, version.version),
        "base_path": version.artifact_path,
        "dataset": dataset.name,
        "dataset_sha256": dataset.sha256,
        "dataset_path": dataset.path,
        "validation_path": validation_path,
        "output_model": output_model or version.model,
        "config": config.as_dict(),
        "total_steps": job_config.check_total_steps(config, data.total_steps(config, splits.train_records),
                                                    splits.train_records),
        "retried_from": "",
    }
