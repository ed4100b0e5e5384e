"""Many clients writing at once through the real registry: every answer reads its own write, the read
model's follower never fails, and the live read model equals one rebuilt from the log."""

from __future__ import annotations

import threading

import grpc
import psycopg
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from mlxhub.eventstore import postgres_env
from mlxhub.followers import failing_followers
from mlxhub.read_model import rebuild
from mlxhub.v1 import registry_pb2 as pb
from mlxhub.v1 import registry_pb2_grpc
from registry_svc.application import RegistryApplication
from registry_svc.read_model import TABLES, RegistryProjection, RegistryReadModel
from registry_svc.server import RegistryServer

CLIENTS = 8
MODELS_PER_CLIENT = 3


def rows(settings) -> dict[str, list[tuple]]:
    with psycopg.connect(settings.database_url) as conn:
        return {
            table: conn.execute(f'SELECT * FROM "{settings.database_schema}".{table} ORDER BY 1, 2').fetchall()
            for table in TABLES
        }


def test_concurrent_writers_read_their_own_writes_and_the_read_model_equals_a_rebuild(settings, model_dir):
    server = RegistryServer(settings).start()
    failures: list[str] = []
    try:
        channel = grpc.insecure_channel(server.address)
        stub = registry_pb2_grpc.RegistryServiceStub(channel)

        def client(number: int) -> None:
            try:
                for m in range(MODELS_PER_CLIENT):
                    name = f"c{number}-m{m}"
                    stub.CreateModel(pb.CreateModelRequest(name=name, tags={"client": str(number)}))
                    assert stub.GetModel(pb.GetModelRequest(name=name)).model.name == name
                    for _ in range(2):
                        stub.CreateModelVersion(pb.CreateModelVersionRequest(name=name, artifact_path=str(model_dir)))
                    listed = stub.ListModelVersions(pb.ListModelVersionsRequest(name=name)).versions
                    assert [v.version for v in listed] in ([1, 2], [2, 1]), listed
                    stub.SetAlias(pb.SetAliasRequest(name=name, alias="prod", version=2))
                    stub.UpdateModel(pb.UpdateModelRequest(
                        name=name, model=pb.Model(description=f"by {number}"), update_mask={"paths": ["description"]}
                    ))
                    got = stub.GetModel(pb.GetModelRequest(name=name)).model
                    assert (got.description, dict(got.aliases)) == (f"by {number}", {"prod": 2}), got
            except Exception as error:  # noqa: BLE001  (reported by the test below)
                failures.append(f"client {number}: {error!r}")

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert failures == []
        listed = stub.ListModels(pb.ListModelsRequest(page_size=1000)).models
        assert len(listed) == CLIENTS * MODELS_PER_CLIENT
        with psycopg.connect(settings.database_url, autocommit=True,
                             options=f"-c search_path={settings.database_schema}") as conn:
            assert failing_followers(conn) == []
    finally:
        server.stop(grace=1)

    live = rows(settings)
    env = postgres_env(settings)
    view = InfrastructureFactory.construct(Environment(RegistryProjection.name, env)).tracking_recorder(RegistryReadModel)
    app = RegistryApplication(env)
    try:
        rebuild(app, view)
        assert rows(settings) == live
    finally:
        app.close()
        view.datastore.close()
