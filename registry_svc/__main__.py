"""`python -m registry_svc`: run the registry until SIGINT / SIGTERM."""

from __future__ import annotations

import sys

from mlxhub.config import load_settings
from mlxhub.memory import limit_arenas
from mlxhub.telemetry import serve_until_signalled, setup_logging, setup_tracing
from registry_svc.server import RegistryServer


def rebuild_read_model() -> None:
    """Replay the whole event log into fresh read-model tables (run with the registry stopped)."""
    from mlxhub.eventstore import postgres_env
    from mlxhub.read_model import open_read_model, rebuild
    from registry_svc.application import RegistryApplication
    from registry_svc.read_model import RegistryProjection, RegistryReadModel

    env = postgres_env(load_settings())
    view = open_read_model(RegistryReadModel, RegistryProjection.name, env)
    print(f"replayed {rebuild(RegistryApplication(env), view)} events into the registry read model")


def main() -> None:
    limit_arenas()  # first: glibc fixes its arena limit once a process has 9 arenas (mlxhub.memory)
    setup_logging("registry")
    if sys.argv[1:] == ["rebuild-read-model"]:
        rebuild_read_model()
        return
    settings = load_settings()
    setup_tracing("registry")
    server = RegistryServer(settings).start()
    serve_until_signalled("registry", settings, server)


if __name__ == "__main__":
    main()
