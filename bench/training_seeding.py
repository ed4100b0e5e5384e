"""Training-job events seeded straight through the trainer application (many jobs per save), in
the mix a working trainer records: most jobs queued, started, checkpointed and finished, some
handed back, lost and re-queued, failed and resumed, or cancelled while running. Most events
change an existing job, so a read model's apply path (not only its inserts) is what a rebuild of
them measures."""

from __future__ import annotations

from bench.seeding import save_in_batches
from trainer_svc.domain import TrainingJob


def new_job(i: int, prefix: str) -> TrainingJob:
    return TrainingJob(
        principal="bench", idempotency_key=f"{prefix}-{i}", model=f"{prefix}-base-{i % 40}@1", base_version="1",
        base_path=f"/models/base/{i % 40}", dataset=f"data-{i % 7}", dataset_sha256="0" * 64,
        dataset_path=f"/data/{i % 7}.jsonl", validation_path="", output_model=f"{prefix}-out-{i}",
        config={"iters": 100, "learning_rate": 1e-5, "lora_parameters": {"rank": 8}}, total_steps=100, retried_from="",
    )  # fmt: skip


def _checkpoints(job: TrainingJob, attempt: int, steps: range) -> None:
    for step in steps:
        job.record_checkpoint(attempt, step, f"/ckpt/{job.id}/{step}", "0" * 64, 1.0 / step, 2.0 / step)


def run_history(job: TrainingJob, kind: int) -> None:
    """One of five lives of a job (9 to 13 events each)."""
    job.start_attempt("worker-a", job.queue_seq, max_attempts=3)
    _checkpoints(job, 1, range(10, 60, 10))
    if kind == 1:  # handed back by a worker shutting down, then lost, then finished
        job.hand_back(1, 55, "worker shutting down")
        job.start_attempt("worker-b", job.queue_seq, max_attempts=3)
        job.requeue_lost(2, max_attempts=3, reason="missed heartbeats")
        job.start_attempt("worker-c", job.queue_seq, max_attempts=3)
        attempt = 3
    elif kind == 2:  # failed, resumed from its checkpoint, cancelled while running
        job.fail(1, "out of memory", 50)
        job.resume()
        job.start_attempt("worker-b", job.queue_seq, max_attempts=3)
        job.cancel()
        job.stop_cancelled(2, 60)
        return
    else:
        attempt = 1
    files = [{"path": "adapters.safetensors", "size_bytes": 1024, "sha256": "0" * 64}]
    job.save_adapter(attempt, f"/adapters/{job.id}", files, 100, 0.5, {"loss": 0.5}, "", "")
    job.succeed(attempt, 100, 0.5, "1", f"/adapters/{job.id}", files, "", "")


def seed(app, count: int, prefix: str = "seed") -> int:
    """Record exactly `count` events; return how many were recorded."""

    def make(i: int, left: int) -> TrainingJob:
        job = new_job(i, prefix)
        if left > 13:
            run_history(job, i % 5)
        return job

    return save_in_batches(app, count, make)
