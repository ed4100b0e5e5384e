"""Wire the registry together: event store, read-model projection, NATS
publisher and the gRPC server with health, reflection and auth.

The projection and the publisher run on the leading replica only, each supervised
(mlxhub.followers); every replica reports readiness (mlxhub.readiness)."""

from __future__ import annotations

import logging

import grpc
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment
from grpc_health.v1 import health

from mlxhub.bus import LogPublisher, tracking_recorder
from mlxhub.config import Settings
from mlxhub.eventstore import ensure_schema, postgres_env
from mlxhub.followers import FollowerWatch, SupervisedProjection
from mlxhub.leadership import Leadership
from mlxhub.readiness import Readiness
from mlxhub.serving import listen_and_serve, new_server, stop_serving
from mlxhub.telemetry import watch_lag
from mlxhub.v1 import registry_pb2, registry_pb2_grpc
from registry_svc.application import RegistryApplication
from registry_svc.event_log import NameBook, payload_of, subject_of, to_proto
from registry_svc.read_model import RegistryProjection, RegistryReadModel
from registry_svc.servicer import RegistryServicer

log = logging.getLogger(__name__)

SERVICE_NAME = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name
READ_MODEL_WAIT_SECONDS = 10.0


class RegistryServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = postgres_env(settings)
        self.app: RegistryApplication | None = None
        self.view: RegistryReadModel | None = None
        self.projection: SupervisedProjection | None = None
        self.publisher: LogPublisher | None = None
        self.leadership: Leadership | None = None
        self.server: grpc.Server | None = None
        self.health = health.HealthServicer()
        self.readiness = Readiness(settings, self.health, "registry", SERVICE_NAME)

    @property
    def address(self) -> str:
        return self.settings.address("registry")

    def start(self) -> RegistryServer:
        ensure_schema(self.settings)
        app = self.app = RegistryApplication(self.env, data_roots=self.settings.data_roots)
        view = self.view = InfrastructureFactory.construct(
            Environment(RegistryProjection.name, self.env)
        ).tracking_recorder(RegistryReadModel)
        app.after_save = lambda notification_id: view.wait_after_write(
            app.name, notification_id, READ_MODEL_WAIT_SECONDS, self.readiness.stuck
        )
        self.leadership = Leadership(
            self.settings.database_url, f"{self.settings.database_schema}.registry-log-followers", self._follow_log
        ).start()
        watch_lag("registry", app, view, self)
        # 16 streams: each following ReadEvents holds one of the application's 20 pooled database
        # connections (mlxhub/eventstore.py) for its LISTEN, and commands need the rest
        self.server = new_server("registry", self.settings, max_workers=64, max_streams=16)
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(
            RegistryServicer(app, view, self.settings.api_keys), self.server
        )
        listen = listen_and_serve(self.server, self.health, "registry", SERVICE_NAME, self.settings)
        self.readiness.start()
        log.info("registry listening on %s", listen)
        return self

    def _follow_log(self):
        """Start the read-model projection and the NATS publisher (on the leading replica)."""
        assert self.app is not None and self.view is not None
        projection = SupervisedProjection(
            FollowerWatch(self.settings, "registry", RegistryProjection.name, self.readiness.poke),
            RegistryProjection(view=self.view), RegistryApplication, self.view, self.env,
        ).start()
        publisher = None
        if self.settings.nats_url:
            names = NameBook(self.app)

            def describe(domain_event, position):
                event = to_proto(domain_event, position, names)
                return subject_of(event), payload_of(event)

            publisher = LogPublisher(
                self.app, tracking_recorder("registry_nats", self.env), self.settings.nats_url, describe,
                FollowerWatch(self.settings, "registry", "registry_nats", self.readiness.poke),
            )
            publisher.start()
        self.projection, self.publisher = projection, publisher

        def stop() -> None:
            if publisher is not None:
                publisher.stop()
                publisher.tracking.datastore.close()
            projection.stop()  # its runner closes its own application

        return stop

    def lag(self) -> int:
        """NATS publishing lag as seen from this replica (0 where another replica publishes)."""
        return self.publisher.lag() if self.publisher is not None and self.leadership.leading.is_set() else 0

    def wait(self) -> None:
        assert self.server is not None
        self.server.wait_for_termination()

    def stop(self, grace: float = 5.0) -> None:
        stop_serving(self.server, self.health, grace)
        self.readiness.stop()
        if self.leadership is not None:
            self.leadership.stop()  # stops the followers (flushing the publisher) if this replica led
        if self.app is not None:
            self.app.close()
        if self.view is not None:
            self.view.datastore.close()
