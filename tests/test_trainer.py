"""Trainer service against the real registry, PostgreSQL and NATS, on a tiny random llama."""

from __future__ import annotations

import json

import grpc
import mlx.core as mx
import pytest
from trainer_util import create, register, wait

from mlxhub.v1 import registry_pb2, trainer_pb2

SUCCEEDED = trainer_pb2.TRAINING_JOB_STATE_SUCCEEDED


@pytest.fixture
def hub(trainer_stub, registry_stub, tiny_model, training_chats):
    register(registry_stub, tiny_model, training_chats)
    return trainer_stub, registry_stub


def test_job_trains_writes_adapter_and_registers_version_with_lineage(hub, settings):
    trainer_stub, registry_stub = hub
    job = create(trainer_stub, iters=8, save_every=4, validation_split=0.25, steps_per_eval=4, key="first")
    assert job.state == trainer_pb2.TRAINING_JOB_STATE_QUEUED
    assert job.config.rank == 8 and job.config.scale == 20.0 and job.config.max_seq_length == 2048  # mlx_lm defaults
    assert job.base_version == "tiny/versions/1" and job.total_steps == 8
    done = wait(trainer_stub, job.id)
    assert done.state == SUCCEEDED, done.failure_reason
    assert done.output_version == "tiny/versions/2" and done.step == 8 and done.attempt == 1
    assert [c.step for c in done.checkpoints] == [4]
    assert done.best_checkpoint.step == 4 and done.best_validation_loss > 0
    files = {f.path: f.sha256 for f in done.artifact_files}
    assert set(files) == {"adapter_config.json", "adapters.safetensors"}
    adapter_dir = settings.models_dir / "tiny" / "adapters" / f"{job.id}-attempt-1"  # one directory per attempt
    assert done.artifact_path == str(adapter_dir)
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert config["lora_parameters"] == {"rank": 8, "scale": 20.0, "dropout": 0.0}
    assert not [p for p in adapter_dir.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left

    version = registry_stub.GetModelVersion(registry_pb2.GetModelVersionRequest(name="tiny", version=2)).version
    assert version.kind == registry_pb2.MODEL_VERSION_KIND_ADAPTER and version.base_version == "tiny/versions/1"
    assert {f.path: f.sha256 for f in version.files} == files
    lineage = registry_stub.GetLineage(registry_pb2.GetLineageRequest(name="tiny", version=2)).lineage
    assert lineage.training_job == job.id and lineage.source == "trained"
    assert lineage.parent_version == "tiny/versions/1" and lineage.dataset == "chats"
    assert len(lineage.dataset_sha256) == 64 and lineage.seed == 0
    assert lineage.parameters["iters"] == 8 and lineage.parameters["learning_rate"] == 1e-3
    assert set(lineage.library_versions) >= {"mlx", "mlx-lm"} and lineage.code_commit
    assert lineage.mlflow_run_id == done.mlflow_run_id != ""
    assert (settings.home / "mlflow").is_dir()

    # the adapter loads with mlx-lm as written
    from mlx_lm import load

    model, _ = load(version_base(registry_stub), adapter_path=done.artifact_path)
    assert model is not None
    weights = mx.load(str(adapter_dir / "adapters.safetensors"))
    assert any(k.endswith("lora_b") and mx.abs(v).sum().item() > 0 for k, v in weights.items())  # it trained


def version_base(registry_stub) -> str:
    return registry_stub.GetModelVersion(registry_pb2.GetModelVersionRequest(name="tiny", version=1)).version.artifact_path


def test_idempotency_key_returns_the_first_job(hub):
    trainer_stub, _ = hub
    first = create(trainer_stub, key="same")
    second = create(trainer_stub, key="same", iters=99)
    assert second.id == first.id and second.config.iters == 6
    assert create(trainer_stub, key="other").id != first.id


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"learning_rate": -1.0}, "config.learning_rate", "must be in (0, 1]"),
        ({"dropout": 1.5}, "config.dropout", "[0, 1)"),
        ({"batch_size": 64}, "config.batch_size", "16 examples"),
        ({"num_layers": 5}, "config.num_layers", "has 2 layers"),
        ({"iters": 5, "epochs": 2}, "config.iters", "either"),
        ({"max_seq_length": 20}, "config.max_seq_length", "16 of 16 training examples are longer"),
        ({"model": "nope"}, "model", "not found"),
        ({"dataset": "nope"}, "dataset", "not found"),
    ],
)
def test_bad_requests_name_the_field(hub, overrides, field, words):
    from google.rpc import error_details_pb2

    from mlxhub.errors import status_of

    trainer_stub, _ = hub
    with pytest.raises(grpc.RpcError) as caught:
        create(trainer_stub, **overrides)
    code = grpc.StatusCode.NOT_FOUND if "not found" in words else grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.code() == code
    assert words in caught.value.details()
    status = status_of(caught.value)
    violations = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [v.field for v in bad.field_violations]
    assert violations == [field]
