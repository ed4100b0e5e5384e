"""The inference service's own recent figures: per loaded version (requests and tokens
served, last use, when keep-alive unloads it, a minute-by-minute history) and the metrics
summary (requests, errors, latency percentiles, throughput, queue depth per 10 s bucket)."""

from __future__ import annotations

import itertools
import time

import grpc
import pytest
from inference_util import chat, field_violations, register

from inference_svc.stats import Recorder, percentile
from mlxhub.v1 import inference_pb2 as pb

N = 3
MAX_TOKENS = 5


def generate(stub, model: str = "tiny") -> pb.Usage:
    *_, final = stub.GenerateStream(chat(model, "hi", max_tokens=MAX_TOKENS))
    return final.usage


def test_loaded_version_counts_requests_tokens_and_minutes(inference_stub, registry_stub, tiny_model):
    register(registry_stub, "tiny", tiny_model)
    before = time.time()
    tokens = sum(generate(inference_stub).completion_tokens for _ in range(N))
    assert tokens > 0

    (model,) = inference_stub.ListLoadedModels(pb.ListLoadedModelsRequest()).models
    assert model.model_version == "tiny/versions/1"
    assert model.request_count == N and model.generated_tokens == tokens
    assert len(model.recent) == 15
    starts = [m.start_time.ToSeconds() for m in model.recent]
    assert starts == sorted(starts) and all(b - a == 60 for a, b in itertools.pairwise(starts))
    assert sum(m.request_count for m in model.recent) == N and sum(m.generated_tokens for m in model.recent) == tokens
    busy = [m for m in model.recent if m.request_count]
    assert all(m.time_to_first_token_p50_ms > 0 and m.tokens_per_second > 0 for m in busy)
    # idle: keep-alive (60 s in the fixture) counts from the last use
    assert before - 1 <= model.last_used_time.ToSeconds() <= time.time() + 1
    assert model.HasField("unload_time")
    left = model.unload_time.ToMilliseconds() / 1000 - time.time()
    assert 50 < left <= 61


def test_unload_time_is_absent_while_streaming(inference_stub, registry_stub, tiny_model):
    register(registry_stub, "tiny", tiny_model)
    stream = inference_stub.GenerateStream(chat("tiny", "hi", max_tokens=400))
    next(stream)
    (model,) = inference_stub.ListLoadedModels(pb.ListLoadedModelsRequest()).models
    assert model.active_streams == 1 and not model.HasField("unload_time")
    assert list(stream)[-1].usage.completion_tokens == 400
    (model,) = inference_stub.ListLoadedModels(pb.ListLoadedModelsRequest()).models
    assert model.active_streams == 0 and model.HasField("unload_time")


def test_metrics_summary_counts_requests_tokens_and_errors(inference_stub, registry_stub, tiny_model):
    register(registry_stub, "tiny", tiny_model)
    tokens = sum(generate(inference_stub).completion_tokens for _ in range(N))
    with pytest.raises(grpc.RpcError) as caught:
        inference_stub.Generate(pb.GenerateRequest(model="nobody@prod", prompt="hi"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    summary = inference_stub.GetMetricsSummary(pb.GetMetricsSummaryRequest())
    assert summary.bucket_seconds == 10 and len(summary.buckets) == 90
    starts = [b.start_time.ToSeconds() for b in summary.buckets]
    assert all(b - a == 10 for a, b in itertools.pairwise(starts))
    assert starts[-1] <= time.time() < starts[-1] + 10
    buckets = summary.buckets
    assert sum(b.request_count for b in buckets) == N
    assert sum(b.error_count for b in buckets) == 1
    assert sum(b.generated_tokens for b in buckets) == tokens
    busy = [b for b in buckets if b.request_count]
    assert busy and all(0 < b.time_to_first_token_p50_ms <= b.time_to_first_token_p95_ms for b in busy)
    assert any(0 < b.inter_token_latency_p50_ms <= b.inter_token_latency_p95_ms for b in busy)
    assert any(b.tokens_per_second > 0 for b in busy)
    assert any(b.queue_depth_avg >= 0 and b.queue_depth_max >= 0 for b in buckets)

    hour = inference_stub.GetMetricsSummary(pb.GetMetricsSummaryRequest(window_minutes=60))
    assert len(hour.buckets) == 360 and sum(b.request_count for b in hour.buckets) == N


@pytest.mark.parametrize("minutes", [-1, 61])
def test_metrics_window_is_bounded(inference_stub, minutes):
    with pytest.raises(grpc.RpcError) as caught:
        inference_stub.GetMetricsSummary(pb.GetMetricsSummaryRequest(window_minutes=minutes))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == ["window_minutes"]


def test_server_info_reports_memory_used_and_free(inference_stub, registry_stub, tiny_model):
    info = inference_stub.GetServerInfo(pb.GetServerInfoRequest())
    assert info.memory_used_gb == 0 and info.memory_free_gb == info.memory_budget_gb > 0
    assert info.keep_alive_seconds == 60
    register(registry_stub, "tiny", tiny_model)
    generate(inference_stub)
    info = inference_stub.GetServerInfo(pb.GetServerInfoRequest())
    (model,) = inference_stub.ListLoadedModels(pb.ListLoadedModelsRequest()).models
    assert info.memory_used_gb == pytest.approx(model.memory_gb)
    assert info.memory_free_gb == pytest.approx(info.memory_budget_gb - model.memory_gb)


def test_recorder_buckets_roll_over_and_percentiles_follow_the_samples():
    now = [1000.0]
    recorder = Recorder(clock=lambda: now[0])
    for ms in (10, 20, 30, 40, 1000):
        recorder.first_token("v", ms / 1000)
        recorder.finished("v", 50.0)
    recorder.queue(3)
    recorder.queue(1)
    first = recorder.summary(1)[-1]
    assert first.requests == 5 and first.tokens == 5 and first.queue_max == 3 and first.queue_sum == 4
    assert percentile(first.ttft, 0.5) == pytest.approx(30, rel=0.1)
    assert percentile(first.ttft, 0.95) == pytest.approx(1000, rel=0.1)
    now[0] += 3600  # a whole window later the slot is reused, not added to
    recorder.finished("v", 10.0)
    window = recorder.summary(60)
    assert len(window) == 360 and sum(b.requests for b in window) == 1
    requests, tokens, minutes = recorder.recent("v")
    assert (requests, tokens) == (6, 5) and sum(m.requests for m in minutes) == 1
