"""GetTrainingMetrics: the trainer's throughput in 10-second buckets, counted from the progress
the service sees its workers report, over gRPC and through the gateway."""

from __future__ import annotations

import itertools
import time

import grpc
import httpx
import pytest
from inference_util import field_violations
from trainer_util import create, register, wait

from gateway.server import running
from mlxhub.v1 import trainer_pb2


def test_buckets_count_a_finished_jobs_tokens_and_steps(trainer_stub, registry_stub, tiny_model, training_chats):
    before = trainer_stub.GetTrainingMetrics(trainer_pb2.GetTrainingMetricsRequest())
    assert before.bucket_seconds == 10 and len(before.buckets) == 90
    assert sum(b.trained_tokens for b in before.buckets) == 0

    register(registry_stub, tiny_model, training_chats)
    job = create(trainer_stub, iters=6)
    watched = list(trainer_stub.WatchTrainingJob(trainer_pb2.WatchTrainingJobRequest(id=job.id), timeout=120))
    done = wait(trainer_stub, job.id)
    assert done.state == trainer_pb2.TRAINING_JOB_STATE_SUCCEEDED
    last = [w.progress for w in watched if w.HasField("progress")][-1]
    assert last.step == 6 and last.trained_tokens > 0

    deadline = time.monotonic() + 10  # the service reads progress from NATS, a moment behind the job
    while True:
        buckets = trainer_stub.GetTrainingMetrics(trainer_pb2.GetTrainingMetricsRequest()).buckets
        tokens, steps = sum(b.trained_tokens for b in buckets), sum(b.steps for b in buckets)
        if (tokens, steps) == (last.trained_tokens, done.step) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (tokens, steps) == (last.trained_tokens, 6)
    busy = [b for b in buckets if b.trained_tokens]
    assert busy and all(b.tokens_per_second > 0 for b in busy)
    assert any(b.running_jobs == 1 for b in buckets)  # reported while it ran
    starts = [b.start_time.seconds for b in buckets]
    assert all(later - earlier == 10 for earlier, later in itertools.pairwise(starts))

    hour = trainer_stub.GetTrainingMetrics(trainer_pb2.GetTrainingMetricsRequest(window_minutes=60))
    assert len(hour.buckets) == 360 and sum(b.trained_tokens for b in hour.buckets) == last.trained_tokens


@pytest.mark.parametrize("minutes", [-1, 61])
def test_window_is_bounded(trainer_stub, minutes):
    with pytest.raises(grpc.RpcError) as caught:
        trainer_stub.GetTrainingMetrics(trainer_pb2.GetTrainingMetricsRequest(window_minutes=minutes))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == ["window_minutes"]


def test_metrics_over_http(trainer, settings):
    with running(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        response = http.get("/v1/training/metrics")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["bucketSeconds"] == 10 and len(body["buckets"]) == 90
        assert http.get("/v1/training/metrics", params={"windowMinutes": 5}).json()["buckets"].__len__() == 30
        bad = http.get("/v1/training/metrics", params={"windowMinutes": 61})
        assert bad.status_code == 400 and "window_minutes" in bad.text
