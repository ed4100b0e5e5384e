"""Fixtures that start the real infrastructure: an embedded PostgreSQL and
`nats-server -js`, both from wheels. Each test gets its own database schema
and hub home, so tests never see each other's events."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from mlxhub.config import Settings, load_settings
from mlxhub.embedded import NatsServer, free_port, start_nats, start_postgres


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return start_postgres(tmp_path_factory.mktemp("pg") / "data")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory):
    server = start_nats(tmp_path_factory.mktemp("nats"))
    yield server
    server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url


@pytest.fixture
def db_schema(postgres_url: str) -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema


@pytest.fixture
def hub_home(tmp_path: Path) -> Path:
    home = tmp_path / "hub"
    (home / "datasets").mkdir(parents=True)
    return home


@pytest.fixture
def hub_env(hub_home: Path, postgres_url: str, db_schema: str, nats_url: str) -> dict[str, str]:
    """Environment for one isolated hub: its own home, schema, and free ports."""
    return {
        "MLXHUB_HOME": str(hub_home),
        "MLXHUB_DATABASE_URL": postgres_url,
        "MLXHUB_DATABASE_SCHEMA": db_schema,
        "MLXHUB_NATS_URL": nats_url,
        "MLXHUB_REGISTRY_ADDR": f"127.0.0.1:{free_port()}",
        "MLXHUB_TRAINER_ADDR": f"127.0.0.1:{free_port()}",
        "MLXHUB_INFERENCE_ADDR": f"127.0.0.1:{free_port()}",
        "MLXHUB_GATEWAY_ADDR": f"127.0.0.1:{free_port()}",
    }


@pytest.fixture
def settings(hub_env: dict[str, str]) -> Settings:
    return load_settings(hub_env)


@pytest.fixture
def registry(settings: Settings):
    """A real registry service (gRPC) on the test's own schema, Postgres and NATS."""
    from registry_svc.server import RegistryServer

    server = RegistryServer(settings).start()
    yield server
    server.stop(grace=1)


@pytest.fixture
def registry_stub(registry, settings: Settings):
    import grpc

    from mlxhub.v1 import registry_pb2_grpc

    channel = grpc.insecure_channel(settings.address("registry"))
    yield registry_pb2_grpc.RegistryServiceStub(channel)
    channel.close()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A small mlx-lm-shaped model directory (config + weights files) to register."""
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "config.json").write_text('{"model_type": "llama", "hidden_size": 8}')
    (directory / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (directory / "tokenizer.json").write_text("{}")
    return directory


@pytest.fixture
def chat_dataset(hub_home: Path) -> Path:
    path = hub_home / "datasets" / "chat.jsonl"
    path.write_text(
        '{"messages": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]}\n'
        '{"messages": [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris"}]}\n'
    )
    return path
