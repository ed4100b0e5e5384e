"""`python -m inference_svc`: serve until SIGINT / SIGTERM. The package import has
already put MLX on the fast BLAS (inference_svc/__init__.py)."""

from __future__ import annotations

import logging
import signal
import threading

from inference_svc.server import InferenceServer
from mlxhub.config import load_settings
from mlxhub.telemetry import setup_logging, setup_tracing, start_metrics


def main() -> None:
    setup_logging("inference")
    settings = load_settings()
    setup_tracing("inference")
    server = InferenceServer(settings).start()
    metrics = start_metrics(settings, "inference")
    logging.getLogger("inference_svc").info("metrics on %s", metrics)
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    stopping.wait()
    logging.getLogger("inference_svc").info("stopping")
    server.stop(grace=settings.shutdown_grace_s)


if __name__ == "__main__":
    main()
