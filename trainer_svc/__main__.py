"""`python -m trainer_svc` runs the trainer service (with MLXHUB_TRAINER_WORKERS in-process
workers, default 1); `python -m trainer_svc worker` runs one standalone worker, e.g.
on another machine that reaches the same PostgreSQL, NATS, registry and artifact store;
`python -m trainer_svc rebuild-read-model` replays the trainer's log into fresh read-model
tables (run it with the trainer stopped)."""

from __future__ import annotations

import logging
import signal
import sys

from mlxhub.config import load_settings
from mlxhub.eventstore import ensure_schema, postgres_env
from mlxhub.telemetry import serve_until_signalled, setup_logging, setup_tracing, start_metrics


def run_worker() -> None:
    from trainer_svc.application import TrainerApplication
    from trainer_svc.worker import Worker

    settings = load_settings()
    ensure_schema(settings)
    worker = Worker(settings, TrainerApplication(postgres_env(settings)))
    metrics = start_metrics(settings, "worker")  # MLXHUB_WORKER_METRICS_ADDR; port 0: off
    logging.getLogger("trainer_svc").info("worker metrics on %s", metrics or "(off)")
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: worker.request_stop())
    worker.run_forever()


def rebuild_read_model() -> None:
    from mlxhub.read_model import open_read_model, rebuild
    from trainer_svc.application import TrainerApplication
    from trainer_svc.read_model import TrainerProjection, TrainerReadModel

    env = postgres_env(load_settings())
    view = open_read_model(TrainerReadModel, TrainerProjection.name, env)
    print(f"replayed {rebuild(TrainerApplication(env), view)} events into the trainer read model")


def main() -> None:
    setup_logging("trainer")
    if sys.argv[1:] == ["rebuild-read-model"]:
        rebuild_read_model()
        return
    setup_tracing("trainer")
    if sys.argv[1:] == ["worker"]:
        run_worker()
        return
    from trainer_svc.server import TrainerServer

    settings = load_settings()
    server = TrainerServer(settings).start()
    serve_until_signalled("trainer", settings, server)


if __name__ == "__main__":
    main()

