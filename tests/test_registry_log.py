"""The event log as a source of truth: NATS publishing that survives outages,
read models rebuilt from the log, and state that survives restarts."""

from __future__ import annotations

import asyncio
import json
import time

import grpc
import nats
import psycopg
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from mlxhub.config import load_settings
from mlxhub.embedded import start_nats
from mlxhub.eventstore import postgres_env
from mlxhub.read_model import rebuild
from mlxhub.v1 import registry_pb2 as pb
from mlxhub.v1 import registry_pb2_grpc
from registry_svc.application import RegistryApplication
from registry_svc.read_model import TABLES, RegistryProjection, RegistryReadModel
from registry_svc.server import RegistryServer


def stub_for(server: RegistryServer) -> registry_pb2_grpc.RegistryServiceStub:
    return registry_pb2_grpc.RegistryServiceStub(grpc.insecure_channel(server.address))


def stream_messages(nats_url: str, expected: int, timeout: float = 15.0) -> list[tuple[str, dict, str]]:
    """Every message in the events stream: (subject, payload, Nats-Msg-Id)."""

    async def fetch():
        connection = await nats.connect(nats_url)
        js = connection.jetstream()
        deadline = time.monotonic() + timeout

        async def count() -> int:
            try:
                return (await js.stream_info("MLXHUB_EVENTS")).state.messages
            except nats.js.errors.NotFoundError:  # the publisher has not (re)created the stream yet
                return 0

        while await count() < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        subscription = await js.pull_subscribe("mlxhub.events.>", durable=None)
        total = (await js.stream_info("MLXHUB_EVENTS")).state.messages
        messages = await subscription.fetch(total, timeout=5) if total else []
        await connection.close()
        return [(m.subject, json.loads(m.data), m.headers["Nats-Msg-Id"]) for m in messages]

    return asyncio.run(fetch())


def test_events_reach_nats_once_each_even_across_an_outage(hub_env, tmp_path):
    nats_server = start_nats(tmp_path / "js")
    settings = load_settings({**hub_env, "MLXHUB_NATS_URL": nats_server.url})
    server = RegistryServer(settings).start()
    try:
        stub = stub_for(server)
        stub.CreateModel(pb.CreateModelRequest(name="one"))
        stub.CreateModel(pb.CreateModelRequest(name="two"))
        assert len(stream_messages(nats_server.url, 2)) == 2
        nats_server.stop()
        for name in ("three", "four", "five"):
            stub.CreateModel(pb.CreateModelRequest(name=name))  # writes never wait for NATS
        time.sleep(0.5)
        assert server.publisher.lag() == 3
        nats_server = start_nats(tmp_path / "js", port=nats_server.port)
        messages = stream_messages(nats_server.url, 5)
        assert [m[1]["aggregate"] for m in messages] == [f"model/{n}" for n in ("one", "two", "three", "four", "five")]
        assert {m[0] for m in messages} == {"mlxhub.events.model.ModelRegistered"}
        positions = [m[1]["position"] for m in messages]
        assert [m[2] for m in messages] == [f"registry:{p}" for p in positions]
        assert len(set(positions)) == 5
        deadline = time.monotonic() + 5
        while server.publisher.lag() and time.monotonic() < deadline:  # the position is saved just after publishing
            time.sleep(0.05)
        assert server.publisher.lag() == 0
    finally:
        server.stop(grace=1)
        nats_server.stop()


def test_stopping_the_registry_flushes_the_publisher(hub_env, tmp_path):
    nats_server = start_nats(tmp_path / "js")
    server = RegistryServer(load_settings({**hub_env, "MLXHUB_NATS_URL": nats_server.url})).start()
    try:
        stub = stub_for(server)
        for name in ("a", "b", "c"):
            stub.CreateModel(pb.CreateModelRequest(name=name))
    finally:
        server.stop(grace=1)
    try:
        assert [m[1]["aggregate"] for m in stream_messages(nats_server.url, 3, timeout=1)] == ["model/a", "model/b", "model/c"]
    finally:
        nats_server.stop()


def read_model_rows(settings) -> dict[str, list[tuple]]:
    with psycopg.connect(settings.database_url) as conn:
        return {
            table: conn.execute(f'SELECT * FROM "{settings.database_schema}".{table} ORDER BY 1, 2').fetchall()
            for table in TABLES
        }


def test_read_model_rebuilt_from_the_log_matches_and_state_survives_restart(settings, model_dir, chat_dataset):
    server = RegistryServer(settings).start()
    stub = stub_for(server)
    stub.RegisterDataset(pb.RegisterDatasetRequest(name="chat", path=str(chat_dataset)))
    for name in ("a", "b", "c"):
        stub.CreateModel(pb.CreateModelRequest(name=name, tags={"n": name}))
        stub.CreateModelVersion(pb.CreateModelVersionRequest(name=name, artifact_path=str(model_dir)))
    stub.UpdateModel(pb.UpdateModelRequest(name="b", model=pb.Model(description="changed"), update_mask={"paths": ["description"]}))
    stub.SetAlias(pb.SetAliasRequest(name="a", alias="prod", version=1))
    server.stop(grace=1)

    before = read_model_rows(settings)
    assert len(before["registry_models"]) == 3 and len(before["registry_alias_moves"]) == 1
    env = postgres_env(settings)
    view = InfrastructureFactory.construct(Environment(RegistryProjection.name, env)).tracking_recorder(RegistryReadModel)
    app = RegistryApplication(env)
    view.drop(app.name)
    assert all(rows == [] for rows in read_model_rows(settings).values())
    assert rebuild(app, view, batch_size=3) == 9
    assert read_model_rows(settings) == before
    app.close()
    view.datastore.close()

    server = RegistryServer(settings).start()  # resumes after the rebuilt position: nothing applied twice
    try:
        stub = stub_for(server)
        stub.CreateModel(pb.CreateModelRequest(name="d"))
        assert [m.name for m in stub.ListModels(pb.ListModelsRequest()).models] == ["a", "b", "c", "d"]
        assert stub.GetModel(pb.GetModelRequest(name="b")).model.description == "changed"
        assert stub.ResolveModelReference(pb.ResolveModelReferenceRequest(reference="a@prod")).version.version == 1
        assert len([r for r in stub.ReadEvents(pb.ReadEventsRequest())]) == 10
    finally:
        server.stop(grace=1)


def test_two_replicas_share_one_log_follower_and_fail_over(hub_env):
    from mlxhub.embedded import free_port

    first = RegistryServer(load_settings(hub_env)).start()
    second = RegistryServer(load_settings({**hub_env, "MLXHUB_REGISTRY_ADDR": f"127.0.0.1:{free_port()}"})).start()
    try:
        assert first.leadership.leading.is_set() and not second.leadership.leading.is_set()
        stub_for(first).CreateModel(pb.CreateModelRequest(name="one"))
        stub_for(second).CreateModel(pb.CreateModelRequest(name="two"))  # read-your-write on the follower too
        assert [m.name for m in stub_for(second).ListModels(pb.ListModelsRequest()).models] == ["one", "two"]
        first.stop(grace=1)
        deadline = time.monotonic() + 15
        while not second.leadership.leading.is_set():
            assert time.monotonic() < deadline, "the second replica never took over"
            time.sleep(0.1)
        stub_for(second).CreateModel(pb.CreateModelRequest(name="three"))
        assert [m.name for m in stub_for(second).ListModels(pb.ListModelsRequest()).models] == ["one", "three", "two"]
    finally:
        first.stop(grace=1)
        second.stop(grace=1)
