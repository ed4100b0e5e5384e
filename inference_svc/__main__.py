"""`python -m inference_svc`: serve until SIGINT / SIGTERM. The package import has
already put MLX on the fast BLAS (inference_svc/__init__.py)."""

from __future__ import annotations

from inference_svc.server import InferenceServer
from mlxhub.config import load_settings
from mlxhub.telemetry import serve_until_signalled, setup_logging, setup_tracing


def main() -> None:
    setup_logging("inference")
    settings = load_settings()
    setup_tracing("inference")
    server = InferenceServer(settings).start()
    serve_until_signalled("inference", settings, server)


if __name__ == "__main__":
    main()
