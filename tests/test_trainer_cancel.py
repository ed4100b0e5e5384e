"""A cancel requested while a job runs is honoured even when its worker never sees it: a worker
lost to the reaper, or one handing the job back on shutdown, must not put a job the user
cancelled back on the queue (the next attempt would start afresh and clear the request)."""

from __future__ import annotations

from uuid import UUID

import pytest
from trainer_util import create, register

from mlxhub.audit import acting_as
from mlxhub.v1 import trainer_pb2 as S


@pytest.fixture
def trainer_workers() -> int:
    return 0  # the test plays the worker: it claims the job itself


@pytest.fixture
def running_job(trainer, trainer_stub, registry_stub, tiny_model, training_chats):
    """A job claimed by a (pretend) worker, with a cancel requested through the API."""
    register(registry_stub, tiny_model, training_chats)
    job_id = UUID(create(trainer_stub).id)
    with acting_as("test"):
        job = trainer.app.start_attempt(job_id, "gone-worker", trainer.app.get_job(job_id).queue_seq, 3)
    assert job.state == "RUNNING" and job.attempt == 1
    requested = trainer_stub.CancelTrainingJob(S.CancelTrainingJobRequest(id=str(job_id))).job
    assert requested.state == S.TRAINING_JOB_STATE_RUNNING and requested.cancel_requested
    return job_id


def test_a_lost_worker_whose_job_was_cancelled_leaves_it_cancelled_not_requeued(trainer, trainer_stub, running_job):
    with acting_as("test"):
        job = trainer.app.requeue_lost(running_job, 1, 3, "heartbeats missed")
    assert job.state == "CANCELLED"
    answer = trainer_stub.GetTrainingJob(S.GetTrainingJobRequest(id=str(running_job))).job
    assert answer.state == S.TRAINING_JOB_STATE_CANCELLED


def test_a_job_handed_back_after_a_cancel_request_is_cancelled(trainer, running_job):
    with acting_as("test"):
        job = trainer.app.hand_back(running_job, 1, 0, "worker shutting down")
    assert job.state == "CANCELLED"
