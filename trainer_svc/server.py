"""Wire the trainer together: event store, read-model projection, NATS publisher of
the trainer's events, in-process workers, the reaper, and the gRPC server with
health, reflection and auth.

Every replica serves calls and runs workers; the projection, the publisher and the
reaper run on the leading replica only (mlxhub.leadership), the first two supervised
(mlxhub.followers)."""

from __future__ import annotations

import logging
import os
from typing import Any
from uuid import UUID

import grpc
from grpc_health.v1 import health

from mlxhub import events
from mlxhub.config import Settings
from mlxhub.eventstore import ensure_schema, postgres_env
from mlxhub.leadership import FollowedLog, LogFollowers
from mlxhub.read_model import open_read_model
from mlxhub.readiness import Readiness
from mlxhub.serving import listen_and_serve, new_server, stop_serving
from mlxhub.telemetry import watch_lag
from mlxhub.v1 import trainer_pb2, trainer_pb2_grpc
from trainer_svc import queue
from trainer_svc.application import TrainerApplication
from trainer_svc.config import WorkerOptions
from trainer_svc.read_model import TrainerProjection, TrainerReadModel
from trainer_svc.reaper import Reaper
from trainer_svc.registry_client import RegistryClient
from trainer_svc.servicer import TrainerServicer
from trainer_svc.throughput import Recorder, ThroughputFeed
from trainer_svc.worker import Worker

log = logging.getLogger(__name__)

SERVICE_NAME = trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"].full_name
READ_MODEL_WAIT_SECONDS = 10.0


def describe(domain_event: Any, position: int) -> tuple[str, bytes]:
    """A trainer event as the hub's `mlxhub.v1.Event`, on mlxhub.events.training_job.<Type>."""
    aggregate = f"training_job/{domain_event.originator_id}"
    return events.publication(events.envelope(domain_event, position, "TrainingJob", aggregate))


class TrainerServer(FollowedLog):
    def __init__(self, settings: Settings, workers: int | None = None, options: WorkerOptions | None = None) -> None:
        self.settings = settings
        self.env = postgres_env(settings)
        self.options = options or WorkerOptions.from_settings(settings)
        self.worker_count = settings.trainer.workers if workers is None else workers
        self._app: TrainerApplication | None = None
        self.view: TrainerReadModel | None = None
        self.followers: LogFollowers | None = None
        self.reaper: Reaper | None = None
        self.workers: list[Worker] = []
        self.registry = RegistryClient(settings)
        self.server: grpc.Server | None = None
        self.servicer: TrainerServicer | None = None
        self.throughput: ThroughputFeed | None = None
        self.health = health.HealthServicer()
        self.readiness = Readiness(settings, self.health, "trainer", SERVICE_NAME)

    def enqueue(self, job: UUID, queue_seq: int) -> None:
        try:
            queue.enqueue(self.settings, job, queue_seq)
        except Exception as exc:  # noqa: BLE001  (the reaper re-publishes queued jobs)
            log.warning("job %s saved but not yet queued (%s); the reaper will queue it", job, exc)

    def start(self) -> TrainerServer:
        ensure_schema(self.settings)
        app = self._app = TrainerApplication(self.env, self.registry, self.enqueue, self.settings.data_roots)
        view = self.view = open_read_model(TrainerReadModel, TrainerProjection.name, self.env)
        view.history = lambda job, version: app.repository.get(job, version=version)
        app.after_save = lambda written: self.followers.after_write(written, READ_MODEL_WAIT_SECONDS,
                                                                    self.readiness.stuck)
        self.followers = LogFollowers(
            self.settings, "trainer", app, self.env, TrainerProjection(view=view), view, lambda: describe,
            self.readiness.poke, also=self._start_reaper,
        ).start()
        if self.settings.nats_url:
            self.workers = [Worker(self.settings, app, self.options, name=f"{os.uname().nodename}:{os.getpid()}:{i}")
                            .start() for i in range(self.worker_count)]
        watch_lag("trainer", app, view, self)
        self.server = new_server("trainer", self.settings, max_workers=32)
        recorder = Recorder()
        self.servicer = TrainerServicer(app, view, self.settings, recorder)
        self.throughput = ThroughputFeed(self.servicer.feed, recorder, lambda job: view.has_job(job),
                                         lambda: view.count_jobs("RUNNING", "")).start()  # on the watchers' connection
        trainer_pb2_grpc.add_TrainerServiceServicer_to_server(self.servicer, self.server)
        listen = listen_and_serve(self.server, self.health, "trainer", SERVICE_NAME, self.settings)
        self.readiness.start()
        log.info("trainer listening on %s with %d in-process worker(s)", listen, len(self.workers))
        return self

    def _start_reaper(self):
        """The reaper, beside the projection and the publisher on the leading replica; how to stop it."""
        assert self._app is not None and self.view is not None
        reaper = self.reaper = Reaper(self.settings, self._app, self.view, self.options).start()
        return reaper.stop

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
        if self.followers is not None:
            self.followers.stop()  # stops the followers and the reaper if this replica led
        self.registry.close()
        if self._app is not None:
            self._app.close()
        if self.view is not None:
            self.view.datastore.close()
