"""A job's end under faults, on the tiny model: an attempt whose last save fails is finished by
the next attempt without touching the registered adapter; an attempt superseded after training
registers nothing; a dataset changed after registration is refused; a NaN validation loss is
left out, never recorded; a failed heartbeat does not stop the attempt from noticing a cancel."""

from __future__ import annotations

import hashlib
import math
import os
from datetime import UTC
from pathlib import Path
from uuid import UUID

import grpc
import nats
import pytest
from google.protobuf import json_format
from trainer_util import create, register, wait

from mlxhub.audit import acting_as
from mlxhub.v1 import registry_pb2
from mlxhub.v1 import trainer_pb2 as S
from trainer_svc import artifacts, engine
from trainer_svc.worker import Worker


@pytest.fixture
def hub(trainer_stub, registry_stub, tiny_model, training_chats):
    register(registry_stub, tiny_model, training_chats)
    return trainer_stub, registry_stub


def on_disk(directory: str) -> dict[str, tuple[str, int]]:
    """Each file of an adapter directory: its sha256 and its inode (a rewritten file gets a new one)."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_ino) for p in Path(directory).iterdir()}


def versions_created(registry_stub, job_id: str) -> list:
    """The registry's ModelVersionCreated events for versions that `job_id` trained."""
    responses = registry_stub.ReadEvents(registry_pb2.ReadEventsRequest(aggregate="model/tiny"), timeout=30)
    return [r.event for r in responses if r.event.type == "ModelVersionCreated"
            and json_format.MessageToDict(r.event.data).get("lineage", {}).get("training_job") == job_id]


def test_a_finish_that_fails_once_is_completed_by_the_retry_without_rewriting_the_adapter(hub, trainer,
                                                                                          monkeypatch):
    trainer_stub, registry_stub = hub
    succeed, at_failure = trainer.app.succeed, {}

    def refuse_once(id, attempt, **fields):
        if not at_failure:  # the version is registered; recording success fails
            at_failure.update(path=fields["artifact_path"], files=on_disk(fields["artifact_path"]))
            raise RuntimeError("the database refused the save")
        return succeed(id, attempt, **fields)

    monkeypatch.setattr(trainer.app, "succeed", refuse_once)
    job = wait(trainer_stub, create(trainer_stub).id)
    assert job.state == S.TRAINING_JOB_STATE_SUCCEEDED, job.failure_reason
    assert at_failure and job.attempt == 2  # the second attempt finished it
    version = registry_stub.GetModelVersion(registry_pb2.GetModelVersionRequest(name="tiny", version=2)).version
    assert version.artifact_path == job.artifact_path == at_failure["path"]
    assert on_disk(version.artifact_path) == at_failure["files"]  # the same files, never rewritten
    assert {f.path: f.sha256 for f in version.files} == {n: h for n, (h, _) in on_disk(version.artifact_path).items()}
    assert [(f.path, f.sha256) for f in job.artifact_files] == [(f.path, f.sha256) for f in version.files]
    assert len(versions_created(registry_stub, job.id)) == 1
    latest = registry_stub.GetModel(registry_pb2.GetModelRequest(name="tiny")).model.latest_version
    assert latest == 2


def test_an_attempt_superseded_after_training_registers_nothing(hub, trainer, settings, monkeypatch):
    trainer_stub, registry_stub = hub
    write, superseded = artifacts.write_adapter, []

    def supersede_first(dest, weights, config):
        if not superseded:  # training is over; now the reaper takes the job away, as for missed heartbeats
            with acting_as("test"):
                superseded.append(trainer.app.requeue_lost(UUID(dest.name[:36]), 1, 3, "test: heartbeats missed"))
        return write(dest, weights, config)

    monkeypatch.setattr(artifacts, "write_adapter", supersede_first)
    job = wait(trainer_stub, create(trainer_stub).id)
    assert job.state == S.TRAINING_JOB_STATE_SUCCEEDED, job.failure_reason
    assert superseded and superseded[0].state == "QUEUED" and job.attempt == 2
    second_attempt_began = trainer.app.get_job(job.id).attempt_start_time
    [created] = versions_created(registry_stub, job.id)
    assert created.time.ToDatetime(tzinfo=UTC) >= second_attempt_began  # registered by the attempt holding the job
    assert [str(p) for p in (settings.models_dir / "tiny" / "adapters").iterdir()] == [job.artifact_path]


@pytest.mark.parametrize("trainer_workers", [0])  # a worker starts once the file has changed
@pytest.mark.parametrize("change", ["edited", "swapped_for_a_symlink"])
def test_a_dataset_changed_after_registration_is_refused_naming_both_hashes(hub, trainer, settings, trainer_options,
                                                                           training_chats, tmp_path, change):
    trainer_stub, registry_stub = hub
    job = create(trainer_stub)  # queued while the file is as registered
    registered = hashlib.sha256(training_chats.read_bytes()).hexdigest()
    if change == "edited":
        with training_chats.open("a") as handle:
            handle.write('{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}\n')
        now = hashlib.sha256(training_chats.read_bytes()).hexdigest()
        words = [str(training_chats), f"sha256 is now {now}", f"registered {registered}"]
    else:  # the same bytes, but outside every data root
        outside = tmp_path / "elsewhere.jsonl"
        outside.write_bytes(training_chats.read_bytes())
        training_chats.unlink()
        os.symlink(outside, training_chats)
        words = [str(training_chats), str(outside), "outside the data roots"]
    with pytest.raises(grpc.RpcError) as caught:  # a new job is refused at once
        create(trainer_stub, key="after-the-change")
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert all(word in caught.value.details() for word in words), caught.value.details()
    worker = Worker(settings, trainer.app, trainer_options, name="late").start()
    try:
        failed = wait(trainer_stub, job.id)  # the queued one: its worker checks before training
    finally:
        worker.stop()
    assert failed.state == S.TRAINING_JOB_STATE_FAILED, failed
    assert all(word in failed.failure_reason for word in words), failed.failure_reason
    assert failed.step == 0
    assert registry_stub.GetModel(registry_pb2.GetModelRequest(name="tiny")).model.latest_version == 1


def test_a_nan_validation_loss_is_left_out_not_recorded(hub, trainer, monkeypatch):
    trainer_stub, registry_stub = hub
    monkeypatch.setattr(engine, "evaluate", lambda **_: math.nan)  # e.g. no target tokens in the validation set
    job = wait(trainer_stub, create(trainer_stub, validation_split=0.25, steps_per_eval=3, save_every=3).id)
    assert job.state == S.TRAINING_JOB_STATE_SUCCEEDED, job.failure_reason
    version = registry_stub.GetModelVersion(registry_pb2.GetModelVersionRequest(name="tiny", version=2)).version
    assert set(version.metrics) == {"train_loss", "trained_tokens"}
    assert all(math.isfinite(v) for v in version.metrics.values())
    recorded = trainer.app.get_job(job.id)
    assert [c["validation_loss"] for c in recorded.checkpoints] == [None]  # absent, not NaN
    assert recorded.best_checkpoint is None and math.isfinite(recorded.last_loss)
    updates = list(trainer_stub.WatchTrainingJob(S.WatchTrainingJobRequest(id=job.id), timeout=60))
    assert not any(u.progress.has_validation_loss for u in updates if u.HasField("progress"))


def test_a_failed_heartbeat_does_not_end_the_watch_for_a_cancel(hub, trainer):
    trainer_stub, _ = hub
    worker = trainer.workers[0]
    job = create(trainer_stub, iters=100000)
    wait(trainer_stub, job.id, until=lambda j: j.step >= 1)
    connection, failed = worker.connection, []
    publish = connection.publish

    async def refuse_heartbeats(subject, payload=b"", **kwargs):
        if subject.endswith(".heartbeat") and not failed:
            failed.append(subject)
            raise nats.errors.OutboundBufferLimitError
        return await publish(subject, payload, **kwargs)

    connection.publish = refuse_heartbeats
    try:
        wait(trainer_stub, job.id, until=lambda j: bool(failed), timeout=30)
        trainer_stub.CancelTrainingJob(S.CancelTrainingJobRequest(id=job.id))
        stopped = wait(trainer_stub, job.id, timeout=60)
    finally:
        connection.publish = publish
    assert stopped.state == S.TRAINING_JOB_STATE_CANCELLED, stopped
    assert stopped.step < 100000
