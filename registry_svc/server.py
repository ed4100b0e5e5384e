"""Wire the registry together: event store, read-model projection, NATS
publisher and the gRPC server with health, reflection and auth."""

from __future__ import annotations

import logging
from concurrent import futures

import grpc
from eventsourcing.projection import ProjectionRunner
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mlxhub.bus import LogPublisher, tracking_recorder
from mlxhub.config import Settings
from mlxhub.eventstore import ensure_schema, postgres_env
from mlxhub.telemetry import server_interceptors, watch_lag
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
        self.runner: ProjectionRunner | None = None
        self.publisher: LogPublisher | None = None
        self.server: grpc.Server | None = None
        self.health = health.HealthServicer()

    @property
    def address(self) -> str:
        return self.settings.address("registry")

    def start(self) -> RegistryServer:
        ensure_schema(self.settings)
        self.runner = ProjectionRunner(
            application_class=_application_class(self.settings),
            projection_class=RegistryProjection,
            view_class=RegistryReadModel,
            env=self.env,
        ).__enter__()
        app: RegistryApplication = self.runner.app
        app.after_save = lambda notification_id: self.runner.wait(notification_id, READ_MODEL_WAIT_SECONDS)
        if self.settings.nats_url:
            names = NameBook(app)

            def describe(domain_event, position):
                event = to_proto(domain_event, position, names)
                return subject_of(event), payload_of(event)

            self.publisher = LogPublisher(app, tracking_recorder("registry_nats", self.env), self.settings.nats_url, describe)
            self.publisher.start()
        watch_lag("registry", app, self.runner.view, self.publisher)
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="registry-rpc"),
            interceptors=server_interceptors("registry", self.settings.api_keys),
            options=[
                ("grpc.max_receive_message_length", self.settings.max_request_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        registry_pb2_grpc.add_RegistryServiceServicer_to_server(
            RegistryServicer(app, self.runner.view, self.settings.api_keys), self.server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection((SERVICE_NAME, reflection.SERVICE_NAME, health.SERVICE_NAME), self.server)
        listen = self.settings.listen_address("registry")
        if self.server.add_insecure_port(listen) == 0:
            raise OSError(f"cannot listen on {listen}; is another registry running? set MLXHUB_REGISTRY_ADDR")
        self.server.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("registry listening on %s", listen)
        return self

    @property
    def app(self) -> RegistryApplication:
        assert self.runner is not None
        return self.runner.app

    def wait(self) -> None:
        assert self.server is not None
        self.server.wait_for_termination()

    def stop(self, grace: float = 5.0) -> None:
        self.health.enter_graceful_shutdown()
        if self.server is not None:
            self.server.stop(grace).wait()
        if self.publisher is not None:
            self.publisher.stop()
            self.publisher.tracking.datastore.close()
        if self.runner is not None:
            self.runner.__exit__(None, None, None)  # closes the application's pool
            self.runner.view.datastore.close()


def _application_class(settings: Settings) -> type[RegistryApplication]:
    """ProjectionRunner constructs the application itself (with only `env`), so the
    data roots travel on a subclass."""
    roots = settings.data_roots
    return type("ConfiguredRegistryApplication", (RegistryApplication,), {
        "name": "registry",
        "__init__": lambda self, env=None: RegistryApplication.__init__(self, env, data_roots=roots),
    })
