"""`python -m registry_svc rebuild-read-model` and `python -m trainer_svc rebuild-read-model` as an
operator runs them (a process of its own, settings from the environment, the service stopped): the
read model is rebuilt from the log and lists what it listed before."""

from __future__ import annotations

import os
import subprocess
import sys

from bench import training_seeding
from mlxhub.eventstore import connect, postgres_env
from mlxhub.v1 import registry_pb2 as pb
from registry_svc.server import RegistryServer
from trainer_svc.application import TrainerApplication


def run(module: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", module, "rebuild-read-model"], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_both_rebuild_commands_replay_their_logs(hub_env, settings, registry_stub, registry):
    for name in ("alpha", "beta"):
        registry_stub.CreateModel(pb.CreateModelRequest(name=name, description=f"model {name}"))
    registry_stub.UpdateModel(pb.UpdateModelRequest(name="beta", model=pb.Model(description="changed"),
                                                    update_mask={"paths": ["description"]}))
    before = registry_stub.ListModels(pb.ListModelsRequest())
    registry.stop(grace=1)

    assert "replayed 3 events into the registry read model" in run("registry_svc", hub_env)
    trainer = TrainerApplication(postgres_env(settings))
    try:
        assert training_seeding.seed(trainer, 4 * 13) == 52
    finally:
        trainer.close()
    assert "replayed 52 events into the trainer read model" in run("trainer_svc", hub_env)  # folded by PostgreSQL
    with connect(settings) as conn:
        rows, jobs, succeeded = conn.execute(
            "SELECT (SELECT count(*) FROM trainer_jobs), (SELECT count(DISTINCT originator_id) FROM trainer_events),"
            " (SELECT count(*) FROM trainer_jobs WHERE state = 'SUCCEEDED' AND job IS NOT NULL)"
        ).fetchone()
    assert rows == jobs > 1 and succeeded > 0

    server = RegistryServer(settings).start()  # its projection resumes from the rebuilt position
    try:
        after = registry_stub.ListModels(pb.ListModelsRequest())
        assert [(m.name, m.description) for m in after.models] == [(m.name, m.description) for m in before.models]
        assert [m.name for m in after.models] == ["alpha", "beta"]
        assert after.models[1].description == "changed"
    finally:
        server.stop(grace=1)
