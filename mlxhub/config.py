"""Settings read from the environment, in one place, so every process agrees."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORTS = {"registry": 50051, "trainer": 50052, "inference": 50053, "gateway": 8080}
# Prometheus /metrics per process, open to the scraper without an API key ("worker" is a standalone
# trainer worker, `python -m trainer_svc worker`; the gateway's HTTP port also has a keyed /metrics).
DEFAULT_METRICS_PORTS = {"registry": 9101, "trainer": 9102, "inference": 9103, "worker": 9104, "gateway": 9105}
LOOPBACK = "127.0.0.1"
GRPC_SERVICES = ("registry", "trainer", "inference")  # served by mlxhub/serving.py
# The principal of MLXHUB_SERVICE_KEY: the hub's own services calling each other. Only it may
# act on behalf of a user (see mlxhub/auth.py), so no MLXHUB_API_KEYS entry may take the name.
SERVICE_PRINCIPAL = "mlxhub-service"


class ConfigError(ValueError):
    """A setting has a value the hub cannot use; the message says how to fix it."""


def _api_keys(raw: str) -> dict[str, str]:
    """Parse `MLXHUB_API_KEYS`: comma-separated `principal=key` pairs or bare keys."""
    keys: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        principal, sep, key = item.partition("=")
        if not sep:
            key, principal = item, f"key-{len(keys) + 1}"
        if not key or not principal:
            raise ConfigError(f"MLXHUB_API_KEYS entry {item!r} is empty on one side; use principal=key or key")
        if principal == SERVICE_PRINCIPAL:
            raise ConfigError(f"MLXHUB_API_KEYS: the principal {SERVICE_PRINCIPAL!r} is reserved for the hub's "
                              "services; set their key as MLXHUB_SERVICE_KEY and pick another name")
        keys[key] = principal
    return keys


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    database_schema: str
    nats_url: str | None
    # key -> principal; with auth on it includes service_key, as SERVICE_PRINCIPAL.
    api_keys: dict[str, str] = field(default_factory=dict)
    # The credential this process presents when it calls another hub service on its own account.
    service_key: str = ""
    data_roots: tuple[Path, ...] = ()
    bind_host: str = LOOPBACK
    addresses: dict[str, str] = field(default_factory=dict)
    max_request_bytes: int = 4 * 1024 * 1024
    # On SIGTERM: how long in-flight calls and token streams may run before they are cut.
    shutdown_grace_s: float = 30.0
    # service -> streaming calls it admits at once (MLXHUB_<SERVICE>_MAX_STREAMS); unset: the service's default.
    max_streams: dict[str, int] = field(default_factory=dict)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)

    def address(self, service: str) -> str:
        """host:port where `service` listens (and where clients reach it)."""
        return self.addresses[service]

    def port(self, service: str) -> int:
        return int(self.address(service).rsplit(":", 1)[1])

    def metrics_address(self, service: str) -> str:
        """host:port of the service's Prometheus endpoint (port 0: metrics off)."""
        return self.addresses[f"{service}_metrics"]

    def listen_address(self, service: str) -> str:
        return f"{self.bind_host}:{self.port(service)}"

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    home = Path(env.get("MLXHUB_HOME") or ".mlxhub").expanduser().resolve()
    api_keys = _api_keys(env.get("MLXHUB_API_KEYS", ""))
    service_key = (env.get("MLXHUB_SERVICE_KEY") or "").strip()
    if service_key and api_keys:  # without user keys the hub is open and needs no service credential
        if service_key in api_keys:
            raise ConfigError("MLXHUB_SERVICE_KEY is also one of MLXHUB_API_KEYS; give the services a key of their own")
        api_keys[service_key] = SERVICE_PRINCIPAL
    bind_host = env.get("MLXHUB_BIND_HOST") or LOOPBACK
    if not api_keys and bind_host not in (LOOPBACK, "localhost", "::1"):
        raise ConfigError(
            f"MLXHUB_BIND_HOST={bind_host} would expose an open hub; set MLXHUB_API_KEYS to bind beyond 127.0.0.1"
        )
    addresses = {}
    for service, port in DEFAULT_PORTS.items():
        addresses[service] = env.get(f"MLXHUB_{service.upper()}_ADDR") or f"{LOOPBACK}:{port}"
    for service, port in DEFAULT_METRICS_PORTS.items():
        addresses[f"{service}_metrics"] = env.get(f"MLXHUB_{service.upper()}_METRICS_ADDR") or f"{LOOPBACK}:{port}"
    max_streams = {}
    for service in GRPC_SERVICES:
        variable = f"MLXHUB_{service.upper()}_MAX_STREAMS"
        if raw := env.get(variable):
            if not raw.isdigit() or int(raw) < 1:
                raise ConfigError(f"{variable}={raw!r} is not a whole number of streams; use 1 or more")
            max_streams[service] = int(raw)
    extra_roots = [Path(p).expanduser().resolve() for p in env.get("MLXHUB_DATA_ROOTS", "").split(os.pathsep) if p]
    return Settings(
        home=home,
        database_url=env.get("MLXHUB_DATABASE_URL") or None,
        database_schema=env.get("MLXHUB_DATABASE_SCHEMA") or "mlxhub",
        nats_url=env.get("MLXHUB_NATS_URL") or None,
        api_keys=api_keys,
        service_key=service_key if api_keys else "",
        data_roots=(home / "datasets", *extra_roots),
        bind_host=bind_host,
        addresses=addresses,
        max_request_bytes=int(env.get("MLXHUB_MAX_REQUEST_BYTES") or 4 * 1024 * 1024),
        shutdown_grace_s=float(env.get("MLXHUB_SHUTDOWN_GRACE_S") or 30.0),
        max_streams=max_streams,
    )
