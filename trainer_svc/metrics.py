"""Prometheus metrics of the trainer (served by `mlxhub.telemetry.start_metrics`): what a
worker is doing now, how long jobs wait, and how they end."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

BACKEND = Info("mlxhub_trainer_backend", "Compute backend and BLAS the workers train on")
QUEUE_WAIT = Histogram("mlxhub_trainer_queue_wait_seconds", "Job queued (or re-queued) to claimed by a worker",
                       buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800))
STEPS = Counter("mlxhub_trainer_steps_total", "Training steps run by this process's workers")
TRAINED_TOKENS = Counter("mlxhub_trainer_trained_tokens_total", "Tokens trained on by this process's workers")
TOKENS_PER_SECOND = Gauge("mlxhub_trainer_tokens_per_second", "Training throughput of the last step", ["worker"])
LOSS = Gauge("mlxhub_trainer_loss", "Training loss of the last step", ["worker"])
PEAK_MEMORY = Gauge("mlxhub_trainer_peak_memory_bytes", "Peak memory of the running job", ["worker"])
RUNNING = Gauge("mlxhub_trainer_running_jobs", "Jobs this process's workers are training now")
ATTEMPTS = Counter("mlxhub_trainer_attempts_total", "Attempts that ended, by outcome (succeeded, failed, cancelled, "
                   "handed_back, superseded, interrupted: ended without recording how, retried)", ["outcome"])
