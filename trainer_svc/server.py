"""Wire the trainer together: event store, read-model projection, NATS publisher of
the trainer's events, in-process workers, the reaper, and the gRPC server with
health, reflection and auth.

Every replica serves calls and runs workers; the projection, the publisher and the
reaper run on the leading replica only (mlxhub.leadership), the first two supervised
(mlxhub.followers)."""

from __future__ import annotations

import logging
import math
import os
from datetime import datetime
from typing import Any
from uuid import UUID

import grpc
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment
from google.protobuf import json_format, struct_pb2, timestamp_pb2
from grpc_health.v1 import health

from mlxhub.bus import LogPublisher, tracking_recorder
from mlxhub.config import Settings
from mlxhub.eventstore import ensure_schema, postgres_env
from mlxhub.followers import FollowerWatch, SupervisedProjection
from mlxhub.leadership import Leadership
from mlxhub.readiness import Readiness
from mlxhub.serving import listen_and_serve, new_server, stop_serving
from mlxhub.telemetry import watch_lag
from mlxhub.v1 import common_pb2, registry_pb2, trainer_pb2, trainer_pb2_grpc
from trainer_svc.application import TrainerApplication
from trainer_svc.read_model import TrainerProjection, TrainerReadModel
from trainer_svc.reaper import Reaper
from trainer_svc.registry_client import RegistryClient
from trainer_svc.servicer import TrainerServicer
from trainer_svc.throughput import Recorder, ThroughputFeed
from trainer_svc.worker import Worker, WorkerOptions

log = logging.getLogger(__name__)

SERVICE_NAME = trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"].full_name
READ_MODEL_WAIT_SECONDS = 10.0
ENVELOPE = {"originator_id", "originator_version", "timestamp", "meta", "originator_topic"}


def json_safe(value: Any) -> Any:
    """Event data as JSON can carry it: a NaN or infinite loss (which an older worker could record)
    becomes the string protobuf's JSON uses, so that it cannot stop the NATS publisher."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (UUID, datetime)):
        return str(value)
    return value


def describe(domain_event: Any, position: int) -> tuple[str, bytes]:
    """A trainer event as the hub's `mlxhub.v1.Event`, on mlxhub.events.training_job.<Type>."""
    data = struct_pb2.Struct()
    data.update(json_safe({k: v for k, v in vars(domain_event).items() if k not in ENVELOPE}))
    time = timestamp_pb2.Timestamp()
    time.FromDatetime(domain_event.timestamp)
    meta = getattr(domain_event, "meta", {}) or {}
    event = registry_pb2.Event(
        position=position, time=time, aggregate_type="TrainingJob",
        aggregate=f"training_job/{domain_event.originator_id}", aggregate_id=str(domain_event.originator_id),
        aggregate_version=domain_event.originator_version, type=type(domain_event).__name__, data=data,
        metadata=common_pb2.EventMetadata(principal=meta.get("principal", ""), request_id=meta.get("request_id", ""),
                                          trace_id=meta.get("trace_id", "")),
    )
    return f"mlxhub.events.training_job.{event.type}", json_format.MessageToJson(event, indent=None).encode()


class TrainerServer:
    def __init__(self, settings: Settings, workers: int | None = None, options: WorkerOptions | None = None) -> None:
        self.settings = settings
        self.env = postgres_env(settings)
        self.options = options or WorkerOptions.from_env()
        self.worker_count = settings.trainer.workers if workers is None else workers
        self._app: TrainerApplication | None = None
        self.view: TrainerReadModel | None = None
        self.projection: SupervisedProjection | None = None
        self.publisher: LogPublisher | None = None
        self.reaper: Reaper | None = None
        self.leadership: Leadership | None = None
        self.workers: list[Worker] = []
        self.registry = RegistryClient(settings)
        self.server: grpc.Server | None = None
        self.servicer: TrainerServicer | None = None
        self.throughput: ThroughputFeed | None = None
        self.health = health.HealthServicer()
        self.readiness = Readiness(settings, self.health, "trainer", SERVICE_NAME)

    def start(self) -> TrainerServer:
        ensure_schema(self.settings)
        app = self._app = TrainerApplication(self.env)
        view = self.view = InfrastructureFactory.construct(
            Environment(TrainerProjection.name, self.env)
        ).tracking_recorder(TrainerReadModel)
        app.after_save = lambda notification_id: view.wait_after_write(
            app.name, notification_id, READ_MODEL_WAIT_SECONDS, self.readiness.stuck
        )
        self.leadership = Leadership(
            self.settings.database_url, f"{self.settings.database_schema}.trainer-log-followers", self._follow_log
        ).start()
        if self.settings.nats_url:
            self.workers = [Worker(self.settings, app, self.options, name=f"{os.uname().nodename}:{os.getpid()}:{i}")
                            .start() for i in range(self.worker_count)]
        watch_lag("trainer", app, view, self)
        self.server = new_server("trainer", self.settings, max_workers=32)
        self.throughput = ThroughputFeed(self.settings, Recorder(), lambda job: view.has_job(job),
                                         lambda: view.count_jobs("RUNNING", "")).start()
        self.servicer = TrainerServicer(app, view, self.registry, self.settings, self.throughput.recorder)
        trainer_pb2_grpc.add_TrainerServiceServicer_to_server(self.servicer, self.server)
        listen = listen_and_serve(self.server, self.health, "trainer", SERVICE_NAME, self.settings)
        self.readiness.start()
        log.info("trainer listening on %s with %d in-process worker(s)", listen, len(self.workers))
        return self

    def _follow_log(self):
        """Start the projection, the NATS publisher and the reaper (on the leading replica)."""
        assert self._app is not None and self.view is not None
        projection = SupervisedProjection(
            FollowerWatch(self.settings, "trainer", TrainerProjection.name, self.readiness.poke),
            TrainerProjection(view=self.view), TrainerApplication, self.view, self.env,
        ).start()
        publisher = reaper = None
        if self.settings.nats_url:
            publisher = LogPublisher(
                self._app, tracking_recorder("trainer_nats", self.env), self.settings.nats_url, describe,
                FollowerWatch(self.settings, "trainer", "trainer_nats", self.readiness.poke),
            )
            publisher.start()
            reaper = Reaper(self.settings, self._app, self.view, self.options).start()
        self.projection, self.publisher, self.reaper = projection, publisher, reaper

        def stop() -> None:
            if reaper is not None:
                reaper.stop()
            if publisher is not None:
                publisher.stop()
                publisher.tracking.datastore.close()
            projection.stop()  # its runner closes its own application

        return stop

    def lag(self) -> int:
        """NATS publishing lag as seen from this replica (0 where another replica publishes)."""
        leading = self.leadership is not None and self.leadership.leading.is_set()
        return self.publisher.lag() if self.publisher is not None and leading else 0

    @property
    def app(self) -> TrainerApplication:
        assert self._app is not None
        return self._app

    def stop(self, grace: float = 5.0) -> None:
        stop_serving(self.server, self.health, grace)
        if self.servicer is not None:
            self.servicer.close()  # the watchers' shared NATS connection
        self.readiness.stop()
        if self.throughput is not None:
            self.throughput.stop()
        for worker in self.workers:
            worker.stop()
        if self.leadership is not None:
            self.leadership.stop()  # stops the followers and the reaper if this replica led
        self.registry.close()
        if self._app is not None:
            self._app.close()
        if self.view is not None:
            self.view.datastore.close()
