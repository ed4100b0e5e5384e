"""The trainer's domain and application without servers: an in-memory event store, a registry that
answers from a dict, and a list for the queue. State rules, idempotency, the refusals' messages,
and who-and-why taken from the audit context."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from mlx_lm.lora import CONFIG_DEFAULTS
from prometheus_client import REGISTRY

from mlxhub.audit import acting_as
from mlxhub.errors import FailedPrecondition, InvalidArgument, NotFound
from trainer_svc import config as job_config
from trainer_svc.application import TrainerApplication
from trainer_svc.config import TrainingConfig
from trainer_svc.domain import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED
from trainer_svc.registry_client import BaseVersion, RegisteredDataset

IN_MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


class FakeRegistry:
    """The registry client's look-ups, answered from what the test registered."""

    def __init__(self, model_dir: Path, dataset: Path) -> None:
        self.model_dir, self.data_file = model_dir, dataset
        self.calls: list[tuple[str, str, list]] = []

    def resolve(self, reference: str, metadata=None) -> BaseVersion:
        self.calls.append(("resolve", reference, metadata))
        if not reference.startswith("tiny"):
            raise NotFound(f"model: model {reference!r} not found", field="model")
        return BaseVersion("tiny", 1, "FULL", str(self.model_dir))

    def dataset(self, name: str, field: str = "dataset", metadata=None) -> RegisteredDataset:
        self.calls.append(("dataset", name, metadata))
        digest = hashlib.sha256(self.data_file.read_bytes()).hexdigest()
        return RegisteredDataset(name, str(self.data_file), digest, "CHAT")

    def model(self, name: str, field: str = "output_model", metadata=None) -> str:
        self.calls.append(("model", name, metadata))
        return name


@pytest.fixture
def chats(tmp_path: Path) -> Path:
    path = tmp_path / "data" / "chats.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"What is {i}+{i}?"},
                                                     {"role": "assistant", "content": str(2 * i)}]}) + "\n"
                            for i in range(8)))
    return path


@pytest.fixture
def queued() -> list:
    return []


@pytest.fixture
def app(tiny_model: Path, chats: Path, queued: list) -> TrainerApplication:
    registry = FakeRegistry(tiny_model, chats)
    return TrainerApplication(IN_MEMORY, registry, lambda job, seq: queued.append((job, seq)), (chats.parent,))


def create(app: TrainerApplication, principal: str = "alice", key: str = "", **config):
    config.setdefault("iters", 4)
    config.setdefault("batch_size", 2)
    with acting_as(principal, request_id="req-1", trace_id="trace-1"):
        return app.create_job(principal, key, "tiny", "chats", TrainingConfig(**config),
                              credentials=[("authorization", "Bearer k")])


def events_of(app: TrainerApplication, job) -> list:
    return list(app.repository.event_store.get(job.id))


def test_create_resolves_through_the_registry_records_who_and_queues(app, queued):
    job = create(app)
    assert job.state == QUEUED and job.created_by == "alice" and job.base_version == "tiny/versions/1"
    assert job.output_model == "tiny" and job.total_steps == 4
    assert job.config["num_layers"] == 2  # the default (16) capped at the tiny model's 2 layers
    assert queued == [(job.id, 1)]
    assert [call[2] for call in app.registry.calls] == [[("authorization", "Bearer k")]] * 2
    [created] = events_of(app, job)
    assert type(created).__name__ == "TrainingJobQueued"
    assert created.meta == {"principal": "alice", "request_id": "req-1", "trace_id": "trace-1"}


def test_the_same_key_returns_the_first_job_and_queues_once(app, queued):
    first = create(app, key="k1")
    again = create(app, key="k1")
    other = create(app, principal="bob", key="k1")
    assert again.id == first.id and other.id != first.id
    assert queued == [(first.id, 1), (other.id, 1)]


def test_intake_refuses_what_cannot_train(app, queued):
    with pytest.raises(InvalidArgument) as caught:
        create(app, num_layers=5)
    assert caught.value.field == "config.num_layers" and "has 2 layers" in caught.value.message
    with pytest.raises(InvalidArgument) as caught:
        create(app, epochs=2)  # iters given too (by `create`)
    assert caught.value.message == "give either config.iters or config.epochs, not both"
    with pytest.raises(InvalidArgument) as caught:
        create(app, batch_size=100)
    assert caught.value.field == "config.batch_size"
    assert queued == []


def test_cancel_a_queued_job_then_again_changes_nothing(app):
    job = create(app)
    with acting_as("carol", request_id="req-2"):
        cancelled = app.cancel_job(str(job.id))
        again = app.cancel_job(str(job.id))
    assert cancelled.state == again.state == CANCELLED and again.version == cancelled.version == 2
    last = events_of(app, job)[-1]
    assert type(last).__name__ == "TrainingJobCancelled" and last.meta["principal"] == "carol"
    assert last.meta["request_id"] == "req-2"


def test_a_running_job_is_asked_to_stop_and_its_worker_ends_it(app, queued):
    job = create(app)
    with acting_as("worker/w1", str(job.id)):
        running = app.start_attempt(job.id, "w1", 1, max_attempts=3)
    assert running.state == RUNNING and running.attempt == 1 and running.worker == "w1"
    with acting_as("alice"):
        asked = app.cancel_job(str(job.id))
    assert asked.state == RUNNING and asked.cancel_requested
    with acting_as("worker/w1", str(job.id)):
        ended = app.hand_back(job.id, 1, step=3, reason="shutting down")
    assert ended.state == CANCELLED and ended.step == 3  # handed back after a cancel request: cancelled
    started = events_of(app, job)[1]
    assert type(started).__name__ == "TrainingJobStarted"
    assert started.meta["principal"] == "worker/w1" and started.meta["request_id"] == str(job.id)


def test_refusals_name_the_state(app):
    job = create(app)
    with pytest.raises(FailedPrecondition) as caught:
        app.resume_job(str(job.id))
    assert caught.value.message == (f"training job {job.id} is queued; only cancelled or failed jobs can be "
                                    "resumed")
    with pytest.raises(FailedPrecondition) as caught:
        app.retry_job(str(job.id), "alice")
    assert caught.value.message == (f"training job {job.id} is queued; only cancelled or failed jobs can be "
                                    "retried")
    app.cancel_job(str(job.id))
    with pytest.raises(FailedPrecondition) as caught:
        app.resume_job(str(job.id))
    assert caught.value.message == (f"training job {job.id} has no checkpoint to resume from; retry it instead "
                                    "(POST /v1/training/jobs/{id}:retry)")
    finished = create(app)
    app.start_attempt(finished.id, "w1", 1, 3)
    app.succeed(finished.id, 1, step=4, loss=0.5, output_version="tiny/versions/2", artifact_path="/a",
                artifact_files=[], mlflow_run_id="", mlflow_status="off")
    assert app.get_job(finished.id).state == SUCCEEDED
    with pytest.raises(FailedPrecondition) as caught:
        app.cancel_job(str(finished.id))
    assert caught.value.message == (f"training job {finished.id} already succeeded; only queued or running jobs "
                                    "can be cancelled")


def test_resume_from_the_last_checkpoint_and_retry_as_a_new_job(app, queued):
    job = create(app)
    app.start_attempt(job.id, "w1", 1, 3)
    app.record_checkpoint(job.id, 1, {"step": 2, "path": "/ckpt/2", "sha256": "0" * 64, "validation_loss": 1.5,
                                      "loss": 2.0})
    app.fail(job.id, 1, "boom", 2)
    assert app.get_job(job.id).state == FAILED
    resumed = app.resume_job(str(job.id))
    assert resumed.state == QUEUED and resumed.resume_from["step"] == 2 and resumed.queue_seq == 2
    assert queued[-1] == (job.id, 2)
    app.cancel_job(str(job.id))
    with acting_as("bob"):
        retry = app.retry_job(str(job.id), "bob")
    assert retry.id != job.id and retry.retried_from == str(job.id) and retry.created_by == "bob"
    assert retry.config == job.config and queued[-1] == (retry.id, 1)


def test_a_superseded_attempt_changes_nothing(app):
    job = create(app)
    app.start_attempt(job.id, "w1", 1, 3)
    app.requeue_lost(job.id, 1, 3, "no heartbeat")
    version = app.get_job(job.id).version
    app.record_checkpoint(job.id, 1, {"step": 2, "path": "/p", "sha256": "", "validation_loss": None, "loss": 1.0})
    app.save_adapter(job.id, 1, {"path": "/a", "files": [], "step": 2, "loss": 1.0, "metrics": {},
                                 "mlflow_run_id": "", "mlflow_status": ""})
    app.fail(job.id, 1, "late", 2)
    assert app.get_job(job.id).version == version and app.get_job(job.id).state == QUEUED
    assert app.start_attempt(job.id, "w2", 1, 3).state == QUEUED  # a stale work item (queue_seq 1)


def test_a_job_whose_worker_is_lost_too_often_fails(app):
    job = create(app)
    with acting_as("trainer/reaper", trace_id=""):
        for attempt in (1, 2):
            app.start_attempt(job.id, f"w{attempt}", attempt, max_attempts=2)
            app.requeue_lost(job.id, attempt, 2, f"worker w{attempt} sent no heartbeat")
    current = app.get_job(job.id)
    assert current.state == FAILED and current.failure_reason.endswith("gave up after 2 attempts")
    assert events_of(app, job)[-1].meta == {"principal": "trainer/reaper", "request_id": "", "trace_id": ""}


def test_trainer_appends_are_counted():
    app = TrainerApplication(IN_MEMORY)
    before = REGISTRY.get_sample_value("mlxhub_eventstore_appends_total", {"application": "trainer"}) or 0.0
    from trainer_svc.domain import TrainingJob

    job = TrainingJob(principal="alice", idempotency_key="", model="m", base_version="m/versions/1",
                      base_path="/m", dataset="d", dataset_sha256="", dataset_path="/d", validation_path="",
                      output_model="m", config=TrainingConfig().as_dict(), total_steps=1, retried_from="")
    app.queue_new(job)
    app.cancel_job(str(job.id))
    after = REGISTRY.get_sample_value("mlxhub_eventstore_appends_total", {"application": "trainer"})
    assert after == before + 2


def test_config_defaults_are_mlx_lms_own():
    config = TrainingConfig()
    for name in ("fine_tune_type", "num_layers", "learning_rate", "iters", "batch_size", "max_seq_length",
                 "steps_per_eval", "val_batches", "steps_per_report", "save_every", "seed", "grad_checkpoint"):
        assert getattr(config, name) == CONFIG_DEFAULTS[name], name
    for name in ("rank", "scale", "dropout"):
        assert getattr(config, name) == CONFIG_DEFAULTS["lora_parameters"][name], name
    assert TrainingConfig.stored({"rank": 4, "removed_field": 1}).rank == 4  # older stored configs still load
    with pytest.raises(InvalidArgument) as caught:
        job_config.check(TrainingConfig(validation_split=0.2, validation_dataset="v"))
    assert caught.value.field == "config.validation_split"
