"""One trace per curl request, across every hop: gateway -> trainer -> the JetStream work
item -> the worker's training span -> the registry call that registers the adapter; and
gateway -> inference with a GenAI-convention span. The trace id lands in the events, and
the trainer's RPC and domain metrics count the job."""

from __future__ import annotations

import asyncio
import json
import time
from uuid import UUID

import httpx
import nats
import pytest
from prometheus_client import generate_latest
from trainer_util import register, wait

from gateway.server import running
from mlxhub import blas
from trainer_svc.queue import PROGRESS_STREAM, heartbeat_subject, progress_subject


def trace_of(span) -> str:
    return format(span.context.trace_id, "032x")


def span_named(finished_spans, name: str, timeout: float = 10.0):
    """The finished span called `name`, waiting for it: a server span ends only after its response
    has gone out, so the client can hold the answer a moment before the span is exported."""
    deadline = time.monotonic() + timeout
    while True:
        found = next((s for s in finished_spans() if s.name == name), None)
        if found is not None or time.monotonic() > deadline:
            assert found is not None, f"no span {name!r}; finished: {sorted({s.name for s in finished_spans()})}"
            return found
        time.sleep(0.05)


@pytest.fixture
def http(trainer, inference, registry_stub, settings, tiny_model, training_chats):
    register(registry_stub, tiny_model, training_chats)
    with running(settings) as url, httpx.Client(base_url=url, timeout=120) as client:
        yield client


def last_headers(nats_url: str, subject: str) -> dict[str, str]:
    async def fetch():
        connection = await nats.connect(nats_url)
        try:
            return (await connection.jetstream().get_last_msg(PROGRESS_STREAM, subject)).headers or {}
        finally:
            await connection.close()

    return asyncio.run(fetch())


def test_a_training_request_is_one_trace_through_nats_into_the_worker(http, trainer, trainer_stub, finished_spans,
                                                                      nats_url):
    body = {"model": "tiny", "dataset": "chats", "config": {"iters": 4, "batchSize": 2, "learningRate": 0.001}}
    created = http.post("/v1/training/jobs", json=body)
    assert created.status_code == 200, created.text
    job_id = created.json()["job"]["id"]
    assert wait(trainer_stub, job_id).output_version == "tiny/versions/2"

    trace_id = trace_of(span_named(finished_spans, "POST /v1/training/jobs"))
    span_named(finished_spans, f"train {job_id}")  # the worker's span ends after its last ack
    spans = finished_spans()
    in_trace = {s.name for s in spans if trace_of(s) == trace_id}
    assert "/mlxhub.v1.TrainerService/CreateTrainingJob" in in_trace
    assert f"train {job_id}" in in_trace  # continued from the work item's headers
    assert "/mlxhub.v1.RegistryService/CreateModelVersion" in in_trace  # the worker registering the adapter
    for subject in (progress_subject(job_id), heartbeat_subject(job_id)):  # what watchers read joins it too
        assert last_headers(nats_url, subject)["traceparent"].split("-")[1] == trace_id, subject

    metrics = generate_latest().decode()  # the trainer's RED and domain metrics (this process's registry)
    assert 'mlxhub_rpc_requests_total{code="OK",method="CreateTrainingJob",service="trainer"}' in metrics
    assert blas.state().active and f'mlxhub_trainer_backend_info{{backend="cpu",blas="{blas.state().name}"' in metrics  # workers train on the fast BLAS
    for name in ("mlxhub_trainer_steps_total", "mlxhub_trainer_queue_wait_seconds_count",
                 'mlxhub_trainer_attempts_total{outcome="succeeded"}'):
        assert float(next(line for line in metrics.splitlines() if line.startswith(name)).split()[-1]) > 0, name

    events = trainer.app.repository.event_store.get(UUID(job_id))
    assert {type(e).__name__: e.meta["trace_id"] for e in events} == {
        "TrainingJobQueued": trace_id, "TrainingJobStarted": trace_id, "TrainingJobAdapterSaved": trace_id,
        "TrainingJobSucceeded": trace_id}
    model_events = [json.loads(line)["result"]["event"]
                    for line in http.get("/v1/events", params={"aggregate": "model/tiny"}).text.splitlines()]
    created = [e for e in model_events if e["type"] == "ModelVersionCreated"]
    assert len(created) == 2 and created[-1]["metadata"]["traceId"] == trace_id  # the worker's registration


def test_a_generation_is_one_trace_with_a_genai_span(http, finished_spans):
    answer = http.post("/v1/generate", json={"model": "tiny", "prompt": "hello", "sampling": {"maxTokens": 5}})
    assert answer.status_code == 200, answer.text
    genai = span_named(finished_spans, "text_completion tiny")
    gateway_span = span_named(finished_spans, "POST /v1/generate")
    spans = finished_spans()
    assert trace_of(genai) == trace_of(gateway_span)
    attributes = dict(genai.attributes)
    assert attributes["gen_ai.operation.name"] == "text_completion"
    assert attributes["gen_ai.request.model"] == "tiny"
    assert attributes["gen_ai.response.model"] == "tiny/versions/1"
    assert attributes["gen_ai.request.max_tokens"] == 5
    assert attributes["gen_ai.usage.output_tokens"] == answer.json()["usage"]["completionTokens"]
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert list(attributes["gen_ai.response.finish_reasons"]) in (["length"], ["stop"])
    in_trace = {s.name for s in spans if trace_of(s) == trace_of(genai)}
    assert "/mlxhub.v1.RegistryService/ResolveModelReference" in in_trace
