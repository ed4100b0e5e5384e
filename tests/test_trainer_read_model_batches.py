"""The trainer's read model applied a batch at a time (`TrainerReadModel.apply_batch`: one SELECT,
one INSERT, one UPDATE per batch) writes exactly the rows it writes an event at a time and the
rows the library's projection runner writes, over every kind of training-job event."""

from __future__ import annotations

import math

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.projection import BaseProjectionRunner
from eventsourcing.utils import Environment

from bench import training_seeding
from bench.training_seeding import new_job, run_history
from mlxhub.eventstore import postgres_env
from mlxhub.read_model import rebuild
from mlxhub.stored_events import decode_events, read_page
from trainer_svc.application import TrainerApplication
from trainer_svc.read_model import TrainerProjection, TrainerReadModel


@pytest.fixture
def trainer_log(settings):
    env = postgres_env(settings)
    app = TrainerApplication(env)
    view = InfrastructureFactory.construct(Environment(TrainerProjection.name, env)).tracking_recorder(TrainerReadModel)
    yield app, view, env
    app.close()
    view.datastore.close()


def rows(view: TrainerReadModel) -> list[dict]:
    found = view.query("SELECT * FROM trainer_jobs ORDER BY position")
    for row in found:
        row["job"] = view.codec.decode(bytes(row["job"]))
    return found


def follow_live(app, view: TrainerReadModel, env: dict[str, str]) -> list[dict]:
    """The rows the library's projection runner writes, following the whole log."""
    runner = BaseProjectionRunner(projection=TrainerProjection(view=view), application_class=TrainerApplication,
                                  tracking_recorder=view, topics=(), env=env).__enter__()  # fmt: skip
    try:
        view.wait(app.name, app.recorder.max_notification_id(), timeout=60)
    finally:
        runner.__exit__(None, None, None)
    return rows(view)


def test_batches_equal_events_one_at_a_time_and_the_live_projection(trainer_log):
    app, view, env = trainer_log
    total = training_seeding.seed(app, 10 * 13 + 7)
    names = [type(e).__name__ for e in decode_events(app.mapper, read_page(app.recorder, 0, total))]
    kinds = set(names)
    assert kinds >= {"TrainingJobQueued", "TrainingJobStarted", "CheckpointSaved", "TrainingJobHandedBack",
                     "TrainingJobRequeued", "TrainingJobFailed", "TrainingJobResumed", "TrainingJobCancelRequested",
                     "TrainingJobCancelled", "TrainingJobAdapterSaved", "TrainingJobSucceeded"}  # fmt: skip

    live = follow_live(app, view, env)
    assert len(live) == names.count("TrainingJobQueued") and {r["state"] for r in live} == {"SUCCEEDED", "CANCELLED", "QUEUED"}

    for batch_size in (1, 7, 5000):  # replayed in Python, a batch per transaction
        assert rebuild(app, view, batch_size=batch_size, in_database=False) == total
        assert rows(view) == live, batch_size
    assert view.max_tracking_id(app.name) == total
    for row in live:  # each row's state is the job as the log has it
        job = app.repository.get(row["id"])
        assert (row["state"], row["job"]["version"]) == (job.state, job.version)
        assert view.job_of(view.query("SELECT * FROM trainer_jobs WHERE id = %s", (row["id"],))[0]).step == job.step


def test_a_job_state_reads_back_the_same_whichever_encoder_wrote_it(trainer_log):
    """Plain states are written by orjson, others (NaN, integers beyond 64 bits) by the codec: the
    codec reads both back to what it wrote itself."""
    _, view, _ = trainer_log
    for kind in range(5):
        job = new_job(kind, "t")
        run_history(job, kind)
        snapshot = Snapshot.take(job)
        by_codec = view.codec.encode({"version": snapshot.originator_version, "state": snapshot.state})
        assert view.codec.decode(view.encode(job)) == view.codec.decode(by_codec)
    job.last_loss, job.step = float("nan"), 2**70
    state = view.codec.decode(view.encode(job))["state"]
    assert math.isnan(state["last_loss"]) and state["step"] == 2**70
