"""Services calling each other with API keys on: the service credential (MLXHUB_SERVICE_KEY)
and `x-on-behalf-of`, on the real registry and trainer servers (real PostgreSQL and NATS).
A trained version is recorded as its job's creator's, and no user key can pass as another
user through metadata. Credentials in the MLflow tracking URI never reach an answer or an event."""

from __future__ import annotations

import time

import grpc
import psycopg
import pytest
from trainer_util import TERMINAL

from mlxhub.config import SERVICE_PRINCIPAL, ConfigError, load_settings
from mlxhub.embedded import free_port
from mlxhub.v1 import registry_pb2, registry_pb2_grpc, trainer_pb2, trainer_pb2_grpc

ALICE, BOB, SERVICE = "alice-key", "bob-key", "the-service-key"


@pytest.fixture
def hub_env(hub_env):
    """conftest's hub, with API keys on and a service credential, as `mlx-hub up` and deploy/ set them."""
    return {**hub_env, "MLXHUB_API_KEYS": f"alice={ALICE},bob={BOB}", "MLXHUB_SERVICE_KEY": SERVICE}


def as_(key: str, **extra: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}"), *extra.items()]


def on_behalf_of(key: str, principal: str) -> list[tuple[str, str]]:
    return [*as_(key), ("x-on-behalf-of", principal)]


@pytest.fixture
def registry_api(registry, settings):
    with grpc.insecure_channel(settings.address("registry")) as channel:
        yield registry_pb2_grpc.RegistryServiceStub(channel)


@pytest.fixture
def trainer_api(trainer, settings):
    with grpc.insecure_channel(settings.address("trainer")) as channel:
        yield trainer_pb2_grpc.TrainerServiceStub(channel)


def test_a_trained_version_is_recorded_as_the_job_creators(registry_api, trainer_api, tiny_model, training_chats,
                                                            settings, monkeypatch, trainer):
    # An MLflow server behind a URL with credentials (unreachable here): the job still succeeds.
    uri = f"http://tracker:mlflow-pw@127.0.0.1:{free_port()}"  # MLFLOW_TRACKING_URI, as the workers' settings
    for worker in trainer.workers:
        monkeypatch.setattr(worker, "settings", worker.settings.model_copy(update={"mlflow_tracking_uri": uri}))
    registry_api.CreateModel(registry_pb2.CreateModelRequest(name="tiny"), metadata=as_(ALICE))
    registry_api.CreateModelVersion(registry_pb2.CreateModelVersionRequest(name="tiny", artifact_path=str(tiny_model)),
                                    metadata=as_(ALICE))
    registry_api.RegisterDataset(registry_pb2.RegisterDatasetRequest(name="chats", path=str(training_chats)),
                                 metadata=as_(ALICE))
    config = trainer_pb2.TrainingConfig(batch_size=2, iters=4, learning_rate=1e-3)
    job = trainer_api.CreateTrainingJob(trainer_pb2.CreateTrainingJobRequest(model="tiny", dataset="chats",
                                                                             config=config),
                                        metadata=as_(ALICE), timeout=60).job
    assert job.created_by == "alice"
    deadline = time.monotonic() + 180
    while (job := trainer_api.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(id=job.id),
                                             metadata=as_(ALICE)).job).state not in TERMINAL:
        assert time.monotonic() < deadline, f"job still {trainer_pb2.TrainingJobState.Name(job.state)}"
        time.sleep(0.2)
    assert job.state == trainer_pb2.TRAINING_JOB_STATE_SUCCEEDED, job.failure_reason
    version = registry_api.GetModelVersion(registry_pb2.GetModelVersionRequest(name="tiny", version=2),
                                           metadata=as_(BOB)).version
    assert version.created_by == "alice"  # not the service, not the worker
    created = [e.event for e in registry_api.ReadEvents(registry_pb2.ReadEventsRequest(
        event_types=["ModelVersionCreated"]), metadata=as_(BOB)) if e.event.data["version"] == 2]
    assert [e.metadata.principal for e in created] == ["alice"]

    # The MLflow URI's password is in no answer and in no stored event or row.
    assert job.mlflow_status.startswith("MLflow unreachable at http://tracker:***@127.0.0.1:")
    assert "mlflow-pw" not in str(job)
    with psycopg.connect(settings.database_url) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (settings.database_schema,))]
        assert tables
        for table in tables:
            found = conn.execute(f'SELECT count(*) FROM "{settings.database_schema}"."{table}" AS t '
                                 "WHERE t::text LIKE %s", ("%mlflow-pw%",)).fetchone()[0]
            assert found == 0, f"{table} stores the MLflow password"


def test_only_the_service_credential_may_act_on_behalf_of_someone(registry_api):
    def create(name: str, metadata) -> registry_pb2.Model:
        return registry_api.CreateModel(registry_pb2.CreateModelRequest(name=name), metadata=metadata).model

    with pytest.raises(grpc.RpcError) as refused:
        create("spoofed", on_behalf_of(BOB, "alice"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "x-on-behalf-of" in refused.value.details() and "MLXHUB_SERVICE_KEY" in refused.value.details()
    with pytest.raises(grpc.RpcError) as anonymous:
        create("spoofed", [("x-on-behalf-of", "alice")])
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as blank:
        create("spoofed", on_behalf_of(SERVICE, ""))
    assert blank.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    assert create("delegated", on_behalf_of(SERVICE, "alice")).created_by == "alice"
    assert create("own", as_(SERVICE)).created_by == SERVICE_PRINCIPAL
    assert create("bobs", as_(BOB)).created_by == "bob"
    listed = registry_api.ListModels(registry_pb2.ListModelsRequest(), metadata=as_(ALICE)).models
    assert sorted(m.name for m in listed) == ["bobs", "delegated", "own"]  # nothing spoofed was written


def test_the_service_credential_is_its_own_key():
    with pytest.raises(ConfigError, match="reserved"):
        load_settings({"MLXHUB_API_KEYS": f"{SERVICE_PRINCIPAL}=k1"})
    with pytest.raises(ConfigError, match="MLXHUB_SERVICE_KEY"):
        load_settings({"MLXHUB_API_KEYS": "alice=k1", "MLXHUB_SERVICE_KEY": "k1"})
    settings = load_settings({"MLXHUB_API_KEYS": "alice=k1", "MLXHUB_SERVICE_KEY": "k2"})
    assert settings.api_keys == {"k1": "alice", "k2": SERVICE_PRINCIPAL} and settings.service_key == "k2"
    open_hub = load_settings({"MLXHUB_SERVICE_KEY": "k2"})  # no user keys: the hub is open, no credential needed
    assert not open_hub.auth_enabled and open_hub.service_key == ""
