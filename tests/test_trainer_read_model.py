"""The trainer's read model keeps each job's state, so a page of ListTrainingJobs is one query: the
jobs it lists are the jobs GetTrainingJob answers, and a rebuild from the log gives the same list."""

from __future__ import annotations

import pytest
from trainer_util import create, register

from mlxhub.eventstore import connect
from mlxhub.read_model import rebuild
from mlxhub.v1 import trainer_pb2 as S


@pytest.fixture
def trainer_workers() -> int:
    return 0  # nothing here may train: the jobs stay as the API leaves them


def listed(trainer_stub) -> list[S.TrainingJob]:
    return list(trainer_stub.ListTrainingJobs(S.ListTrainingJobsRequest()).jobs)


def test_listed_jobs_are_the_jobs_and_survive_a_rebuild(trainer, trainer_stub, registry_stub, tiny_model,
                                                        training_chats):
    register(registry_stub, tiny_model, training_chats)
    first, second = create(trainer_stub), create(trainer_stub, key="two", iters=3)
    trainer_stub.CancelTrainingJob(S.CancelTrainingJobRequest(id=first.id))
    jobs = listed(trainer_stub)
    assert [j.id for j in jobs] == [second.id, first.id]
    assert jobs == [trainer_stub.GetTrainingJob(S.GetTrainingJobRequest(id=j.id)).job for j in jobs]
    assert jobs[1].state == S.TRAINING_JOB_STATE_CANCELLED and jobs[0].idempotency_key == "two"
    rows = trainer.view.list_jobs("", "", None, 10)
    assert all(trainer.view.job_of(row) is not None for row in rows)  # no aggregate load per listed job
    assert rebuild(trainer.app, trainer.view) == 3  # two queued, one cancelled
    assert listed(trainer_stub) == jobs


def test_a_row_from_before_the_state_was_kept_is_listed_and_filled_at_the_next_event(trainer, trainer_stub,
                                                                                     registry_stub, tiny_model,
                                                                                     training_chats, settings):
    register(registry_stub, tiny_model, training_chats)
    job = create(trainer_stub)
    with connect(settings, autocommit=True) as conn:  # as an older trainer left it
        conn.execute("UPDATE trainer_jobs SET job = NULL WHERE id = %s", (job.id,))
    assert listed(trainer_stub) == [job]  # listed from the log meanwhile
    cancelled = trainer_stub.CancelTrainingJob(S.CancelTrainingJobRequest(id=job.id)).job
    [row] = trainer.view.list_jobs("CANCELLED", "", None, 10)
    assert trainer.view.job_of(row) is not None and listed(trainer_stub) == [cancelled]
