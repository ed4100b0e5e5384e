"""A trainer rebuild folded by PostgreSQL (`TrainerReadModel.fold_log`) writes exactly the rows the
live projection writes (each row's state is the job the log holds), over a log with every kind of
training-job event; a log it cannot read the same way is replayed in Python instead."""

from __future__ import annotations

import test_trainer_read_model_batches as batches
from eventsourcing.domain import Snapshot, event
from test_trainer_read_model_batches import follow_live, rows

from bench import training_seeding
from mlxhub.read_model import rebuild
from mlxhub.stored_events import decode_events, read_page
from trainer_svc import read_model
from trainer_svc.domain import TrainingJob

trainer_log = batches.trainer_log  # the fixture: the trainer's application and read model, on the test's schema

FILES = [{"path": "adapters.safetensors", "size_bytes": 2**40, "sha256": "ab" * 32}]


def no_python_replay(view, monkeypatch) -> None:
    def refuse(*_):
        raise AssertionError("the rebuild replayed events in Python instead of folding them in the database")

    monkeypatch.setattr(view, "apply_batch", refuse)


def job(i: int, **changes) -> TrainingJob:
    """The seeder's job `i` with some of its fields changed."""
    fields = {"principal": "bench", "idempotency_key": f"odd-{i}", "model": f"org/base-{i}@2", "base_version": "2",
              "base_path": "/b", "dataset": "d", "dataset_sha256": "0" * 64, "dataset_path": "/d.jsonl",
              "validation_path": "", "output_model": f"out-{i}", "config": {"iters": 10}, "total_steps": 10,
              "retried_from": ""}  # fmt: skip
    return TrainingJob(**{**fields, **changes})


def odd_jobs(app) -> None:
    """Jobs beyond the seeder's five lives, saved over several saves so their events interleave in
    the log: retried, cancelled while queued, handed back while a cancel was asked, given up after
    lost workers, checkpoints without or with tied validation losses, resumed twice, odd values."""
    config = {"learning_rate": 1e-05, "note": "ünïcode ✓\n\"quoted\"", "nested": {"l": [1, 2.5, None, True, {}]}}
    first, queued, handed, lost, tied = job(0, config=config), job(1), job(2, principal="ü"), job(3), job(4)
    app.save(first, queued, handed, lost, tied)
    first.start_attempt("w", first.queue_seq, max_attempts=3)
    first.record_checkpoint(1, 5, "/c/5", "0" * 64, None, 3.0)  # no validation loss: never the best
    first.fail(1, "diverged", 7)
    queued.cancel()
    handed.start_attempt("w", 1, max_attempts=3)
    handed.record_checkpoint(1, 10, "/c/10", "0" * 64, 0.5, 1.0)
    handed.cancel()  # asked while running: the hand-back becomes the cancel
    handed.hand_back(1, 12, "shutting down")
    tied.start_attempt("w", 1, max_attempts=3)
    for step, loss in ((1, 0.5), (2, 0.25), (3, 0.25), (4, 0.75)):  # the first of two equal losses stays best
        tied.record_checkpoint(1, step, f"/c/{step}", "0" * 64, loss, loss * 2)
    app.save(first, queued, handed, tied)
    retried = job(5, **{**first.retry_fields(), "retried_from": str(first.id)})
    retried.start_attempt("w", 1, max_attempts=3)  # left running
    for attempt in (1, 2):  # lost twice, then given up when it is claimed again
        lost.start_attempt(f"w{attempt}", lost.queue_seq, max_attempts=3)
        lost.requeue_lost(attempt, max_attempts=3, reason="missed heartbeats")
    lost.start_attempt("w3", lost.queue_seq, max_attempts=2)
    tied.hand_back(1, 4, "shutting down")
    tied.start_attempt("w2", tied.queue_seq, max_attempts=3)  # resumes from step 4 and keeps its first start
    app.save(retried, lost, tied)
    first.resume()
    first.start_attempt("w", first.queue_seq, max_attempts=3)
    first.stop_cancelled(2, 6)
    first.resume()
    tied.save_adapter(2, "/a", FILES, 9, 0.125, {"loss": 0.125, "accuracy": 1.0}, "run", "FINISHED")
    tied.succeed(2, 9, 0.125, "3", "/a", FILES, "run", "FINISHED")
    app.save(first, tied)


def test_a_rebuild_in_the_database_equals_the_live_read_model(trainer_log, monkeypatch):
    app, view, env = trainer_log
    training_seeding.seed(app, 10 * 13 + 7)
    odd_jobs(app)
    total = app.recorder.max_notification_id()
    kinds = {type(e) for e in decode_events(app.mapper, read_page(app.recorder, 0, total))}
    assert kinds == set(read_model.FOLDED_EVENTS)  # every kind of event the fold knows is in this log
    live = follow_live(app, view, env)
    assert {r["state"] for r in live} == {"SUCCEEDED", "CANCELLED", "QUEUED", "FAILED", "RUNNING"}

    no_python_replay(view, monkeypatch)
    assert rebuild(app, view) == total
    folded = rows(view)
    assert folded == live
    assert view.max_tracking_id(app.name) == total
    for row in view.list_jobs("", "", None, 1000):  # each row holds the job as its events make it
        job = app.repository.get(row["id"])
        assert Snapshot.take(view.job_of(row)).state == Snapshot.take(job).state
    tied = next(r["job"]["state"] for r in folded if r["job"]["state"]["idempotency_key"] == "odd-4")
    assert (tied["best_checkpoint"]["step"], tied["resume_from"]["step"], tied["handoffs"]) == (2, 4, 1)


def test_a_log_the_fold_cannot_read_is_replayed_in_python(trainer_log):
    """A float jsonb would give back as an integer (1e+300) or a NaN (which PostgreSQL's JSON
    refuses) sends the rebuild through `apply_batch`, with the rows of its own replay."""
    app, view, _ = trainer_log
    training_seeding.seed(app, 30)
    applied: list[int] = []
    apply_batch = view.apply_batch
    for i, value in enumerate((1e300, float("nan"))):
        unreadable = job(i, config={"learning_rate": value})
        unreadable.start_attempt("w", 1, max_attempts=3)
        unreadable.record_checkpoint(1, 1, "/c", "0" * 64, value, value)
        app.save(unreadable)
        applied.clear()
        view.apply_batch = lambda events, curs: (applied.append(len(events)), apply_batch(events, curs))
        total = app.recorder.max_notification_id()
        assert rebuild(app, view) == total and sum(applied) == total
        replayed = rows(view)
        del view.apply_batch
        assert rebuild(app, view, in_database=False) == total
        assert repr(rows(view)) == repr(replayed)  # repr: NaN is not equal to itself
        assert type(replayed[-1]["job"]["state"]["config"]["learning_rate"]) is float


def test_the_fold_knows_every_event_of_a_job():
    """A new event or attribute in trainer_svc/domain.py turns the fold off until FOLD_FUNCTION
    applies it too (the rebuild would otherwise write rows the live projection does not)."""
    assert read_model.FOLDABLE

    class Pausable(TrainingJob):
        @event("TrainingJobPaused")
        def pause(self) -> None:
            self.state = "PAUSED"

    assert not read_model.foldable(Pausable)
