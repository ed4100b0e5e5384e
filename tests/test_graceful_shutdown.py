"""SIGTERM, as Kubernetes sends it: a token stream in flight finishes with every token, and a
training job in flight checkpoints, goes back on the queue and finishes elsewhere with the
same weights as a run that was never interrupted. Each service runs as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import mlx.core as mx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from inference_util import chat
from inference_util import register as register_model
from trainer_util import create, register, wait

from mlxhub import blas
from mlxhub.embedded import free_port
from mlxhub.v1 import inference_pb2 as ipb
from mlxhub.v1 import inference_pb2_grpc
from mlxhub.v1 import trainer_pb2 as S

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def trainer_workers() -> int:
    return 0  # the trainer fixture serves gRPC only; workers are the processes started below


def start(module: list[str], hub_env: dict[str, str], log: Path, **extra: str) -> subprocess.Popen:
    """`python -m <module>` on the test's hub; workers beat as often as the trainer fixture's reaper expects."""
    env = {**os.environ, **hub_env, "PYTHONUNBUFFERED": "1", "MLXHUB_SHUTDOWN_GRACE_S": "60",
           "MLXHUB_TRAINER_ACK_WAIT": "3", "MLXHUB_TRAINER_HEARTBEAT": "0.5", **extra}
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", *module], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def terminate(process: subprocess.Popen, log: Path, timeout: float = 90.0) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"still running {timeout:.0f}s after SIGTERM:\n{log.read_text()[-3000:]}")


def wait_serving(address: str, process: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            assert process.poll() is None, f"exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline, f"not serving after {timeout:.0f}s:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)


def test_sigterm_lets_a_token_stream_finish(registry_stub, hub_env, smollm2, tmp_path):
    register_model(registry_stub, "smollm2", smollm2)
    log = tmp_path / "inference.log"
    process = start(["inference_svc"], hub_env, log, MLXHUB_INFERENCE_METRICS_ADDR="127.0.0.1:0")
    try:
        wait_serving(hub_env["MLXHUB_INFERENCE_ADDR"], process, log)
        with grpc.insecure_channel(hub_env["MLXHUB_INFERENCE_ADDR"]) as channel:
            stream = inference_pb2_grpc.InferenceServiceStub(channel).GenerateStream(
                chat("smollm2", "Tell me a long story about a dragon.", max_tokens=48, temperature=0.0), timeout=300)
            first = next(stream)
            assert first.text and first.token_ids
            process.send_signal(signal.SIGTERM)  # mid-stream
            rest = list(stream)
        *tokens, final = [first, *rest]
        assert final.finish_reason == ipb.FINISH_REASON_LENGTH  # not cancelled: it ran to its max tokens
        assert final.usage.completion_tokens == 48 == sum(len(m.token_ids) for m in tokens)
        assert process.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_hands_a_training_job_back_and_nothing_is_lost(trainer_stub, registry_stub, tiny_model,
                                                               training_chats, hub_env, hub_home):
    register(registry_stub, tiny_model, training_chats)
    first_log, second_log = hub_home / "worker-1.log", hub_home / "worker-2.log"
    first = start(["trainer_svc", "worker"], hub_env, first_log)
    try:
        straight = wait(trainer_stub, create(trainer_stub, iters=300, key="straight").id, timeout=180)
        assert straight.state == S.TRAINING_JOB_STATE_SUCCEEDED, straight.failure_reason

        job = create(trainer_stub, model="tiny/versions/1", iters=300, key="interrupted")
        updates = trainer_stub.WatchTrainingJob(S.WatchTrainingJobRequest(id=job.id), timeout=120)
        next(u for u in updates if u.HasField("progress") and u.progress.step >= 5)  # some steps in
        updates.cancel()
        assert terminate(first, first_log) == 0, first_log.read_text()[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    handed = trainer_stub.GetTrainingJob(S.GetTrainingJobRequest(id=job.id)).job
    assert handed.state == S.TRAINING_JOB_STATE_QUEUED, (handed, first_log.read_text()[-3000:])
    assert handed.handoffs == 1  # the API shows the hand-back (the job page's timeline lists it)
    assert 0 < handed.step < 300 and handed.checkpoints[-1].step == handed.step  # checkpointed where it stopped

    metrics_address = f"127.0.0.1:{free_port()}"
    second = start(["trainer_svc", "worker"], hub_env, second_log, MLXHUB_WORKER_METRICS_ADDR=metrics_address)
    try:
        done = wait(trainer_stub, job.id, timeout=180)
        scraped = httpx.get(f"http://{metrics_address}/metrics", timeout=10).text  # a standalone worker's own metrics
        assert 'mlxhub_trainer_attempts_total{outcome="succeeded"} 1.0' in scraped
        assert blas.state().active and f'mlxhub_trainer_backend_info{{backend="cpu",blas="{blas.state().name}"' in scraped
    finally:
        terminate(second, second_log)
    assert done.state == S.TRAINING_JOB_STATE_SUCCEEDED, (done.failure_reason, second_log.read_text()[-3000:])
    assert done.step == 300 and done.attempt == 2
    a = mx.load(f"{straight.artifact_path}/adapters.safetensors")
    b = mx.load(f"{done.artifact_path}/adapters.safetensors")
    assert set(a) == set(b)
    for name in a:  # the same weights as never stopping: no step lost or repeated
        assert mx.allclose(a[name], b[name], atol=1e-5).item(), name


def test_an_idle_trainer_stops_at_once_on_sigterm(hub_env, hub_home):
    """No job running: SIGTERM stops the trainer (gRPC, in-process worker, reaper, publisher) at once,
    every time, rather than after whatever sleep its background loops were in."""
    for attempt in range(4):
        log = hub_home / f"trainer-{attempt}.log"
        process = start(["trainer_svc"], hub_env, log, MLXHUB_TRAINER_METRICS_ADDR="127.0.0.1:0")
        try:
            wait_serving(hub_env["MLXHUB_TRAINER_ADDR"], process, log)
            time.sleep(1.5 + attempt)  # the background loops are somewhere in their waits
            began = time.monotonic()
            assert terminate(process, log, timeout=30) == 0, log.read_text()[-3000:]
            took = time.monotonic() - began
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert took < 4.0, f"stop {attempt + 1} took {took:.1f}s:\n{log.read_text()[-3000:]}"
