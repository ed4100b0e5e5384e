"""`python -m gateway`: serve the JSON/HTTP gateway with the settings from the environment."""

import logging

from gateway.server import serve

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve()
