"""A worker process killed mid-job: the job is taken over from its last checkpoint by
another worker, or failed once it has used up its attempts; never left RUNNING."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from trainer_util import create, register, wait

from mlxhub.v1 import trainer_pb2 as S
from trainer_svc.worker import Worker, WorkerOptions

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def trainer_workers() -> int:
    return 0  # only the worker processes started below


@pytest.fixture
def trainer_options() -> WorkerOptions:
    return WorkerOptions(ack_wait=3.0, heartbeat=0.5, heartbeat_timeout=4.0, max_attempts=3)


def start_worker_process(hub_env: dict[str, str], home: Path) -> subprocess.Popen:
    env = {**os.environ, **hub_env, "MLXHUB_TRAINER_ACK_WAIT": "3", "MLXHUB_TRAINER_HEARTBEAT": "0.5",
           "PYTHONUNBUFFERED": "1"}
    log = open(home / "worker.log", "wb")  # noqa: SIM115  (the process owns it)
    return subprocess.Popen([sys.executable, "-m", "trainer_svc", "worker"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def run_until_checkpoint_then_kill(trainer_stub, hub_env, hub_home, **config) -> S.TrainingJob:
    process = start_worker_process(hub_env, hub_home)
    try:
        job = create(trainer_stub, **config)
        running = wait(trainer_stub, job.id, until=lambda j: len(j.checkpoints) >= 1 or j.state > 2, timeout=180)
        assert running.state == S.TRAINING_JOB_STATE_RUNNING, (running, (hub_home / "worker.log").read_text()[-3000:])
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        return running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_killed_worker_job_is_taken_over_from_its_checkpoint(trainer, trainer_stub, registry_stub, tiny_model,
                                                             training_chats, hub_env, hub_home, settings,
                                                             trainer_options):
    register(registry_stub, tiny_model, training_chats)
    killed = run_until_checkpoint_then_kill(trainer_stub, hub_env, hub_home, iters=600, save_every=20)
    assert killed.attempt == 1
    survivor = Worker(settings, trainer.app, trainer_options, name="survivor").start()
    try:
        done = wait(trainer_stub, killed.id, timeout=180)
    finally:
        survivor.stop()
    assert done.state == S.TRAINING_JOB_STATE_SUCCEEDED, done.failure_reason
    assert done.attempt == 2 and done.worker == "survivor" and done.step == 600
    resumed_from = trainer.app.get_job(killed.id).resume_from
    assert resumed_from is not None and resumed_from["step"] >= 20  # not from step 0


def test_killed_worker_job_fails_when_out_of_attempts(trainer, trainer_stub, registry_stub, tiny_model,
                                                      training_chats, hub_env, hub_home):
    register(registry_stub, tiny_model, training_chats)
    trainer.reaper.options = WorkerOptions(ack_wait=3.0, heartbeat=0.5, heartbeat_timeout=4.0, max_attempts=1)
    killed = run_until_checkpoint_then_kill(trainer_stub, hub_env, hub_home, iters=100000, save_every=20)
    failed = wait(trainer_stub, killed.id, timeout=60)  # no worker left anywhere: the reaper notices
    assert failed.state == S.TRAINING_JOB_STATE_FAILED
    assert "sent no heartbeat" in failed.failure_reason and "gave up after 1 attempts" in failed.failure_reason
    assert failed.checkpoints  # kept, so the job can still be resumed
