"""GetTrainingDefaults: the config a job with every field unset gets, and each field's bounds,
over gRPC and through the gateway (the new-job form shows both)."""

from __future__ import annotations

import httpx
from trainer_util import register

from gateway.server import running
from mlxhub.v1 import trainer_pb2


def test_defaults_are_what_an_unset_job_gets(trainer_stub, registry_stub, tiny_model, training_chats):
    defaults = trainer_stub.GetTrainingDefaults(trainer_pb2.GetTrainingDefaultsRequest())
    assert defaults.config.rank == 8 and defaults.config.iters == 1000 and defaults.config.learning_rate == 1e-5
    assert defaults.config.fine_tune_type == trainer_pb2.FINE_TUNE_TYPE_LORA
    assert defaults.config.lr_schedule == trainer_pb2.LEARNING_RATE_SCHEDULE_CONSTANT

    # A job that sets nothing but its length stores exactly these values for every other field.
    register(registry_stub, tiny_model, training_chats)
    job = trainer_stub.CreateTrainingJob(trainer_pb2.CreateTrainingJobRequest(
        model="tiny", dataset="chats", idempotency_key="defaults-1",
        config=trainer_pb2.TrainingConfig(iters=3))).job
    expected = trainer_pb2.TrainingConfig()
    expected.CopyFrom(defaults.config)
    expected.iters = 3
    expected.num_layers = 2  # the default (16) is capped at the model's layers: the tiny model has 2
    assert job.config == expected

    limits = defaults.limits
    assert limits["rank"].minimum == 1 and limits["rank"].maximum == 1024
    assert limits["learningRate"].exclusive_minimum and limits["learningRate"].maximum == 1
    assert limits["iters"].maximum == 10000000
    assert "fineTuneType" not in limits and "maskPrompt" not in limits


def test_defaults_over_http(trainer, settings):
    with running(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        response = http.get("/v1/training/defaults")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["config"]["rank"] == 8 and body["config"]["stepsPerReport"] == 10
    assert body["config"]["fineTuneType"] == "FINE_TUNE_TYPE_LORA"
    assert body["limits"]["dropout"]["maximum"] == 1 and body["limits"]["dropout"]["exclusiveMaximum"] is True
