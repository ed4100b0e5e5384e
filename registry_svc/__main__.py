"""`python -m registry_svc`: run the registry until SIGINT / SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading

from mlxhub.config import load_settings
from registry_svc.server import RegistryServer


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = RegistryServer(load_settings()).start()
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    stopping.wait()
    logging.getLogger("registry_svc").info("stopping")
    server.stop()


if __name__ == "__main__":
    main()
