"""Turn a CreateTrainingJob request into a job the workers can run, or refuse it now:
resolve the base model and datasets through the registry (with the caller's
authorization), resolve the config, and check the data against the tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlxhub.errors import InvalidArgument
from mlxhub.names import version_name
from mlxhub.v1 import registry_pb2, trainer_pb2
from trainer_svc import config as job_config
from trainer_svc import data
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


def prepare(request: trainer_pb2.CreateTrainingJobRequest, registry: RegistryClient, metadata,
            data_roots: tuple[Path, ...]) -> dict[str, Any]:
    """Keyword arguments for `TrainerApplication.create_job` (minus who and why). The dataset is read
    as the worker will read it: only if it is still the file registered, under one of `data_roots`."""
    if not request.model:
        raise InvalidArgument("model is empty; give NAME, NAME@ALIAS or NAME/versions/N", field="model")
    if not request.dataset:
        raise InvalidArgument("dataset is empty; give the name of a registered dataset", field="dataset")
    config = job_config.resolve(request.config)
    version = registry.resolve(request.model, metadata)
    if version.kind != registry_pb2.MODEL_VERSION_KIND_FULL:
        raise InvalidArgument(f"model {request.model!r} resolves to an adapter version; train from a full model "
                              f"version (its base is {version.base_version})", field="model")
    dataset = registry.dataset(request.dataset, "dataset", metadata)
    validation_path = ""
    if config["validation_dataset"]:
        validation_path = registry.dataset(config["validation_dataset"], "config.validation_dataset", metadata).path
    output_model = request.output_model or version.model
    if request.output_model:
        registry.model(request.output_model, "output_model", metadata)
    layers = model_layers(version.artifact_path)
    if layers and not request.config.num_layers:
        config["num_layers"] = min(config["num_layers"], layers)  # the default (16) on a smaller model: all layers
    if layers and config["num_layers"] > layers:
        raise InvalidArgument(f"config.num_layers={config['num_layers']} but the model has {layers} layers; use at "
                              f"most {layers}, or -1 for all", field="config.num_layers")
    try:
        tokenizer = load_tokenizer(version.artifact_path)
    except Exception as exc:  # noqa: BLE001  (transformers raises many kinds)
        raise InvalidArgument(f"the tokenizer of {request.model!r} cannot be loaded: {exc}", field="model") from None
    fmt = registry_pb2.DatasetFormat.Name(dataset.format).removeprefix("DATASET_FORMAT_")
    splits = data.check(fmt, dataset.path, validation_path, tokenizer, config, (dataset.sha256, data_roots))
    return {
        "model": request.model,
        "base_version": version_name(version.model, version.version),
        "base_path": version.artifact_path,
        "dataset": dataset.name,
        "dataset_sha256": dataset.sha256,
        "dataset_path": dataset.path,
        "validation_path": validation_path,
        "output_model": output_model,
        "config": config,
        "total_steps": job_config.check_total_steps(config, data.total_steps(config, splits.train_records),
                                                    splits.train_records),
        "retried_from": "",
    }
