"""Helpers shared by the trainer tests: register a model and a dataset, wait for a job."""

from __future__ import annotations

import time
from pathlib import Path

from mlxhub.v1 import registry_pb2, trainer_pb2

TERMINAL = {trainer_pb2.TRAINING_JOB_STATE_SUCCEEDED, trainer_pb2.TRAINING_JOB_STATE_FAILED,
            trainer_pb2.TRAINING_JOB_STATE_CANCELLED}


def register(registry_stub, model_dir: Path, dataset: Path, model: str = "tiny", dataset_name: str = "chats") -> None:
    registry_stub.CreateModel(registry_pb2.CreateModelRequest(name=model))
    registry_stub.CreateModelVersion(registry_pb2.CreateModelVersionRequest(name=model, artifact_path=str(model_dir)))
    registry_stub.RegisterDataset(registry_pb2.RegisterDatasetRequest(name=dataset_name, path=str(dataset)))


def create(trainer_stub, model: str = "tiny", dataset: str = "chats", key: str = "", output_model: str = "",
           **config) -> trainer_pb2.TrainingJob:
    config.setdefault("batch_size", 2)
    config.setdefault("iters", 6)
    config.setdefault("learning_rate", 1e-3)
    request = trainer_pb2.CreateTrainingJobRequest(model=model, dataset=dataset, idempotency_key=key,
                                                   output_model=output_model,
                                                   config=trainer_pb2.TrainingConfig(**config))
    return trainer_stub.CreateTrainingJob(request, timeout=60).job


def wait(trainer_stub, job_id: str, until=lambda job: job.state in TERMINAL, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while True:
        job = trainer_stub.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(id=job_id)).job
        if until(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {trainer_pb2.TrainingJobState.Name(job.state)}"
        time.sleep(0.1)
