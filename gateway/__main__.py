"""`python -m gateway`: serve the JSON/HTTP gateway with the settings from the environment."""

from gateway.server import serve
from mlxhub.telemetry import setup_logging, setup_tracing

if __name__ == "__main__":
    setup_logging("gateway")
    setup_tracing("gateway", record_unexported=False)  # spans only when they go somewhere
    serve()
