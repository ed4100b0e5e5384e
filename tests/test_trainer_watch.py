"""WatchTrainingJob streams share the trainer's one NATS connection for watchers: counted by
the NATS server itself (its /connz monitoring endpoint), on a NATS of this test's own."""

from __future__ import annotations

import asyncio
import subprocess
import time

import httpx
import nats
import pytest
from google.protobuf import json_format
from trainer_util import create, register

from mlxhub.embedded import free_port, nats_server_binary, wait_for_port
from mlxhub.v1 import trainer_pb2 as S
from trainer_svc.queue import progress_subject

WATCHERS = 8


@pytest.fixture
def monitored_nats(tmp_path):
    """`nats-server -js` with its HTTP monitoring on: (client port, monitoring port)."""
    port, monitor = free_port(), free_port()
    process = subprocess.Popen([nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor),
                                "-sd", str(tmp_path / "nats")], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", port)
        wait_for_port("127.0.0.1", monitor)
        yield port, monitor
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def nats_url(monitored_nats) -> str:
    return f"nats://127.0.0.1:{monitored_nats[0]}"


@pytest.fixture
def trainer_workers() -> int:
    return 0  # the job stays queued, so every watch stays open


def client_connections(monitor: int) -> int:
    return httpx.get(f"http://127.0.0.1:{monitor}/connz", timeout=5).json()["num_connections"]


def publish_progress(url: str, job_id: str, step: int) -> None:
    async def publish() -> None:
        connection = await nats.connect(url)
        try:
            message = S.TrainingProgress(step=step, loss=1.5)
            await connection.jetstream().publish(progress_subject(job_id), json_format.MessageToJson(message).encode())
        finally:
            await connection.close()

    asyncio.run(publish())


def test_watchers_share_one_nats_connection(trainer, trainer_stub, registry_stub, tiny_model, training_chats,
                                            monitored_nats, nats_url):
    register(registry_stub, tiny_model, training_chats)
    job = create(trainer_stub)
    before = client_connections(monitored_nats[1])
    streams = [trainer_stub.WatchTrainingJob(S.WatchTrainingJobRequest(id=job.id), timeout=60)
               for _ in range(WATCHERS)]
    try:
        assert all(next(stream).job.id == job.id for stream in streams)
        publish_progress(nats_url, job.id, step=1)
        for stream in streams:  # every watcher is subscribed: each gets the progress
            assert next(stream).progress.step == 1
        during = client_connections(monitored_nats[1])
        assert during - before <= 1, f"{WATCHERS} watchers opened {during - before} NATS connections"
        assert trainer.servicer.feed.connects == 1
    finally:
        for stream in streams:
            stream.cancel()
    trainer_stub.CancelTrainingJob(S.CancelTrainingJobRequest(id=job.id))


def test_the_throughput_recorder_listens_on_the_watchers_connection(trainer):
    assert trainer.throughput.feed is trainer.servicer.feed  # one NATS connection per trainer process
    deadline = time.monotonic() + 10
    while trainer.servicer.feed.connects == 0 and time.monotonic() < deadline:  # it connects at start, no watch needed
        time.sleep(0.1)
    assert trainer.servicer.feed.connects == 1
