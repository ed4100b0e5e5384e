"""Wire the registry together: event store, read-model projection, NATS
publisher and the gRPC server with health, reflection and auth.

The projection and the publisher run on the leading replica only, each supervised
(mlxhub.followers); every replica reports readiness (mlxhub.readiness)."""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health

from mlxhub.config import Settings
from mlxhub.events import publication
from mlxhub.eventstore import ensure_schema, postgres_env
from mlxhub.followers import WritersProjection
from mlxhub.leadership import FollowedLog, LogFollowers
from mlxhub.read_model import open_read_model
from mlxhub.readiness import Readiness
from mlxhub.serving import listen_and_serve, new_server, stop_serving
from mlxhub.telemetry import watch_lag
from mlxhub.v1 import common_pb2, registry_pb2, registry_pb2_grpc
from registry_svc.application import RegistryApplication
from registry_svc.event_log import NameBook, encode_event
from registry_svc.read_model import RegistryProjection, RegistryReadModel
from registry_svc.servicer import RegistryServicer

log = logging.getLogger(__name__)

SERVICE_NAME = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name
READ_MODEL_WAIT_SECONDS = 10.0


class RegistryServer(FollowedLog):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = postgres_env(settings)
        self.app: RegistryApplication | None = None
        self.names: NameBook | None = None  # aggregate names, for ReadEvents and the publisher alike
        self.view: RegistryReadModel | None = None
        self.followers: LogFollowers | None = None
        self.server: grpc.Server | None = None
        self.health = health.HealthServicer()
        self.readiness = Readiness(settings, self.health, "registry", SERVICE_NAME)

    @property
    def address(self) -> str:
        return self.settings.address("registry")

    def start(self) -> RegistryServer:
        ensure_schema(self.settings)
        app = self.app = RegistryApplication(self.env, data_roots=self.settings.data_roots)
        self.names = NameBook(app)
        view = self.view = open_read_model(RegistryReadModel, RegistryProjection.name, self.env)
        app.after_save = lambda written: self.followers.after_write(written, READ_MODEL_WAIT_SECONDS,
                                                                    self.readiness.stuck)
        # While this replica leads, a write's own events reach the read model in its append's commit
        app.apply_in_appends(WritersProjection(lambda: self.projection))
        self.followers = LogFollowers(
            self.settings, "registry", app, self.env, RegistryProjection(view=view), view, self.describer,
            self.readiness.poke,
        ).start()
        watch_lag("registry", app, view, self)
        # 16 streams: each following ReadEvents holds one of the application's 20 pooled database
        # connections (mlxhub/eventstore.py) for its LISTEN, and commands need the rest
        self.server = new_server("registry", self.settings, max_workers=64, max_streams=16)
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(
            RegistryServicer(app, view, self.settings.api_keys, self.names), self.server
        )
        listen = listen_and_serve(self.server, self.health, "registry", SERVICE_NAME, self.settings)
        self.readiness.start()
        log.info("registry listening on %s", listen)
        return self

    def describer(self):
        """How the publisher describes an event (made when this replica starts leading)."""
        assert self.names is not None
        names = self.names

        def describe(domain_event, position):
            # The byte writer's Event, parsed: what `to_proto` builds, without filling its Struct in Python
            return publication(common_pb2.Event.FromString(encode_event(domain_event, position, names)))

        return describe

    def stop(self, grace: float = 5.0) -> None:
        stop_serving(self.server, self.health, grace)
        self.readiness.stop()
        if self.followers is not None:
            self.followers.stop()  # stops the followers (flushing the publisher) if this replica led
        if self.app is not None:
            self.app.close()
        if self.view is not None:
            self.view.datastore.close()
