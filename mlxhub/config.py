"""The hub's settings: one typed object read from the environment, so every process agrees.

`Settings` is a pydantic-settings model. Every variable is named once, as a field's
`validation_alias`, with its default and a description; the README's configuration table is
rendered from these fields (`tools/settings_table.py`, checked by tests/test_settings.py).
The services' own knobs sit in sections: `settings.trainer`, `settings.inference`,
`settings.telemetry`. An unset or empty variable means the default. A value the hub cannot use
raises `ConfigError`, naming the variable and what it accepts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_PORTS = {"registry": 50051, "trainer": 50052, "inference": 50053, "gateway": 8080}
# Prometheus /metrics per process, open to the scraper without an API key ("worker" is a standalone
# trainer worker, `python -m trainer_svc worker`; the gateway's HTTP port also has a keyed /metrics).
DEFAULT_METRICS_PORTS = {"registry": 9101, "trainer": 9102, "inference": 9103, "worker": 9104, "gateway": 9105}
DEFAULT_NATS_PORT = 4222
LOOPBACK = "127.0.0.1"
GRPC_SERVICES = ("registry", "trainer", "inference")  # served by mlxhub/serving.py
# The principal of MLXHUB_SERVICE_KEY: the hub's own services calling each other. Only it may
# act on behalf of a user (see mlxhub/auth.py), so no MLXHUB_API_KEYS entry may take the name.
SERVICE_PRINCIPAL = "mlxhub-service"
# The environment variables the settings read are these families (others are ignored).
PREFIXES = ("MLXHUB_", "MLFLOW_TRACKING_URI", "OTEL_EXPORTER_OTLP_")


class ConfigError(ValueError):
    """A setting has a value the hub cannot use; the message says how to fix it."""


def address_variable(service: str) -> str:
    return f"MLXHUB_{service.upper()}_ADDR"


def metrics_address_variable(service: str) -> str:
    return f"MLXHUB_{service.upper()}_METRICS_ADDR"


def max_streams_variable(service: str) -> str:
    return f"MLXHUB_{service.upper()}_MAX_STREAMS"


def parse_api_keys(raw: str) -> dict[str, str]:
    """`MLXHUB_API_KEYS`: comma-separated `principal=key` pairs or bare keys, as key -> principal."""
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


def _row(variable: str, default: str, meaning: str) -> dict[str, str]:
    """A README row for a field that several variables feed (see tools/settings_table.py)."""
    return {"variable": variable, "default": default, "meaning": meaning}


class Section(BaseModel):
    """One service's knobs; read from the same flat variables as the rest of the settings."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)


class TrainerSettings(Section):
    workers: int = Field(1, ge=0, validation_alias="MLXHUB_TRAINER_WORKERS",
                         description="workers the trainer runs in its own process (0: none; start more with "
                                     "`python -m trainer_svc worker`)")
    ack_wait: float = Field(60.0, gt=0, validation_alias="MLXHUB_TRAINER_ACK_WAIT",
                            description="seconds a silent worker keeps its job's work item before NATS redelivers it")
    heartbeat: float = Field(5.0, gt=0, validation_alias="MLXHUB_TRAINER_HEARTBEAT",
                             description="seconds between a training worker's heartbeats")
    heartbeat_timeout: float = Field(30.0, gt=0, validation_alias="MLXHUB_TRAINER_HEARTBEAT_TIMEOUT",
                                     description="seconds without a heartbeat before a running attempt is given up and "
                                                 "the job retried")
    max_attempts: int = Field(3, ge=1, validation_alias="MLXHUB_TRAINER_MAX_ATTEMPTS",
                              description="attempts a job gets (a lost worker's job resumes from its last "
                                          "checkpoint) before it fails")


class InferenceSettings(Section):
    memory_gb: float = Field(8.0, gt=0, validation_alias="MLXHUB_INFERENCE_MEMORY_GB",
                             description="weight memory the inference cache may hold")
    keep_alive_s: float = Field(300.0, ge=0, validation_alias="MLXHUB_INFERENCE_KEEP_ALIVE_S",
                                description="unload a version idle this long")
    max_batch: int = Field(8, ge=1, validation_alias="MLXHUB_INFERENCE_MAX_BATCH",
                           description="requests decoding at once")
    max_queue: int = Field(32, ge=0, validation_alias="MLXHUB_INFERENCE_MAX_QUEUE",
                           description="requests waiting beyond those decoding; more get 429")
    prompt_cache_gb: float = Field(1.0, ge=0, validation_alias="MLXHUB_INFERENCE_PROMPT_CACHE_GB",
                                   description="KV state kept per version for prompt-prefix reuse (0: off)")
    weights: Literal["auto", "float32", "fp32", "quantized"] = Field(
        "auto", validation_alias="MLXHUB_INFERENCE_WEIGHTS",
        description="`float32` on CPUs, as stored (quantized) on Metal; or force one")
    preload_aliases: str = Field(
        "default,production", validation_alias="MLXHUB_INFERENCE_PRELOAD_ALIASES",
        description="aliases whose versions load at start and again when the alias moves (comma list; `*`: every "
                    "alias; `none`: no preloading), within the memory budget")

    @field_validator("weights", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return (value.strip().lower() or "auto") if isinstance(value, str) else value

    @property
    def preloaded_aliases(self) -> tuple[str, ...]:
        """`preload_aliases` as alias names (("*",): every alias; (): none)."""
        if self.preload_aliases.strip().lower() == "none":
            return ()
        return tuple(a.strip() for a in self.preload_aliases.split(",") if a.strip())


class TelemetrySettings(Section):
    log_level: str = Field("INFO", validation_alias="MLXHUB_LOG_LEVEL",
                           description="level of the services' JSON logs: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    otlp_endpoint: str = Field("", validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT",
                               description="send traces over OTLP (gRPC), e.g. `http://127.0.0.1:4317`")
    otlp_traces_endpoint: str = Field("", validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                                      description="the same, for traces only (wins over the one above)")

    @field_validator("log_level", mode="before")
    @classmethod
    def _known_level(cls, value: Any) -> Any:
        level = str(value).strip().upper()
        if level not in logging.getLevelNamesMapping():
            raise ConfigError(f"MLXHUB_LOG_LEVEL={value!r} is not a log level; use DEBUG, INFO, WARNING, ERROR "
                              "or CRITICAL")
        return level

    @property
    def tracing_enabled(self) -> bool:
        """Spans go out over OTLP only when an endpoint is configured."""
        return bool(self.otlp_endpoint or self.otlp_traces_endpoint)


# The mapping `load_settings(env)` was given, for the source below; None: the process environment.
_given_environment: ContextVar[Mapping[str, str] | None] = ContextVar("given_environment", default=None)


class EnvironmentSource(PydanticBaseSettingsSource):
    """The hub's variables, flat, from the process environment or the mapping given to
    `load_settings`; `Settings` routes them to its fields and sections (which name variables in
    full rather than by nesting)."""

    def get_field_value(self, field, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ hands over the whole mapping

    def __call__(self) -> dict[str, Any]:
        given = _given_environment.get()
        return hub_variables(os.environ if given is None else given)


def hub_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables the settings read, without the empty ones (empty means the default)."""
    return {name: value for name, value in environ.items() if value != "" and name.startswith(PREFIXES)}


class Settings(BaseSettings):
    """Everything a hub process is configured with. `load_settings()` builds it."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)

    home: Path = Field(Path(".mlxhub"), validation_alias="MLXHUB_HOME", json_schema_extra={"shown": "`./.mlxhub`"},
                       description="state of the local stack: `postgres/`, `nats/`, `logs/<service>.log`, `datasets/`")
    database_url: str | None = Field(None, validation_alias="MLXHUB_DATABASE_URL",
                                     json_schema_extra={"shown": "embedded PostgreSQL under `$MLXHUB_HOME/postgres`"},
                                     description="PostgreSQL for events and read models")
    database_schema: str = Field("mlxhub", validation_alias="MLXHUB_DATABASE_SCHEMA",
                                 description="schema that holds the hub's tables")
    nats_url: str | None = Field(None, validation_alias="MLXHUB_NATS_URL",
                                 json_schema_extra={"shown": "`nats-server -js` started by `mlx-hub up`"},
                                 description="NATS with JetStream")
    nats_port: int = Field(DEFAULT_NATS_PORT, ge=1, le=65535, validation_alias="MLXHUB_NATS_PORT",
                           description="port of the NATS server `mlx-hub up` starts")
    # key -> principal; with auth on it includes service_key, as SERVICE_PRINCIPAL.
    api_keys: dict[str, str] = Field({}, validation_alias="MLXHUB_API_KEYS", json_schema_extra={"shown": "unset (open)"},
                                     description="`principal=key,...`; see Auth")
    api_key: str = Field("", validation_alias="MLXHUB_API_KEY", json_schema_extra={"shown": "unset"},
                         description="key the `mlx-hub` CLI sends")
    # The credential this process presents when it calls another hub service on its own account.
    service_key: str = Field("", validation_alias="MLXHUB_SERVICE_KEY",
                             json_schema_extra={"shown": "made by `mlx-hub up` in `$MLXHUB_HOME/service.key`"},
                             description="the services' own key for calling each other when `MLXHUB_API_KEYS` is set; "
                                         "see Auth")
    # $MLXHUB_HOME/datasets, then the MLXHUB_DATA_ROOTS.
    data_roots: tuple[Path, ...] = Field((), validation_alias="MLXHUB_DATA_ROOTS", json_schema_extra={"shown": "unset"},
                                         description="more directories (`:`-separated) datasets may come from, "
                                                     "besides `$MLXHUB_HOME/datasets`")
    bind_host: str = Field(LOOPBACK, validation_alias="MLXHUB_BIND_HOST",
                           description="address the services listen on; anything else requires `MLXHUB_API_KEYS`")
    # service -> host:port, and "<service>_metrics" -> host:port of its Prometheus endpoint.
    addresses: dict[str, str] = Field({}, json_schema_extra={"rows": [
        *(_row(f"`{address_variable(service)}`", f"`{LOOPBACK}:{port}`",
               f"{service} {'HTTP' if service == 'gateway' else 'gRPC'} address")
          for service, port in DEFAULT_PORTS.items()),
        _row(" / ".join([f"`{metrics_address_variable('registry')}`",
                         *(f"`_{service.upper()}_`" for service in list(DEFAULT_METRICS_PORTS)[1:])]),
             " / ".join([f"`{LOOPBACK}:{DEFAULT_METRICS_PORTS['registry']}`",
                         *(f"`{port}`" for port in list(DEFAULT_METRICS_PORTS.values())[1:])]),
             "Prometheus `/metrics` of each service, of a standalone trainer worker and of the gateway, without a "
             "key (port 0: off)"),
    ]})
    max_request_bytes: int = Field(4 * 1024 * 1024, ge=1, validation_alias="MLXHUB_MAX_REQUEST_BYTES",
                                   description="largest request a service accepts")
    # service -> streaming calls it admits at once (MLXHUB_<SERVICE>_MAX_STREAMS); unset: the service's default.
    max_streams: dict[str, int] = Field({}, json_schema_extra={"rows": [_row(
        " / ".join([f"`{max_streams_variable(GRPC_SERVICES[0])}`", *(f"`_{s.upper()}_`" for s in GRPC_SERVICES[1:])]),
        "`16` / `16` / `MAX_BATCH + MAX_QUEUE`",
        "streaming calls (`ReadEvents`, `WatchTrainingJob`, `GenerateStream`, health watch, reflection) a service "
        "serves at once; more get RESOURCE_EXHAUSTED (429), so 16 threads always stay for other calls and health "
        "checks")]})
    # On SIGTERM: how long in-flight calls and token streams may run before they are cut.
    shutdown_grace_s: float = Field(30.0, ge=0, validation_alias="MLXHUB_SHUTDOWN_GRACE_S",
                                    description="on SIGTERM, how long in-flight calls and token streams may finish")
    mlflow_tracking_uri: str = Field("", validation_alias="MLFLOW_TRACKING_URI",
                                     json_schema_extra={"shown": "a local store in `$MLXHUB_HOME/mlflow`"},
                                     description="MLflow server (or store) that records every training attempt")
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    trainer: TrainerSettings = Field(default_factory=TrainerSettings)
    inference: InferenceSettings = Field(default_factory=InferenceSettings)
    blas: str = Field("auto", validation_alias="MLXHUB_BLAS",
                      description="oneMKL on Intel, else OpenBLAS; `mkl`, `openblas`, `off`, or the path of a library "
                                  "exporting `cblas_sgemm` (Linux)")
    import_demo: bool = Field(True, validation_alias="MLXHUB_IMPORT_DEMO", json_schema_extra={"shown": "`1`"},
                              description="`0`: `mlx-hub up` does not import the demo model on first start")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment; no .env file or secrets directory."""
        return init_settings, EnvironmentSource(settings_cls)

    @model_validator(mode="before")
    @classmethod
    def _route(cls, data: Any) -> Any:
        """The flat variables into the sections and the per-service tables."""
        if not isinstance(data, Mapping):
            return data
        flat, data = data, dict(data)
        for section in ("telemetry", "trainer", "inference"):
            data.setdefault(section, flat)
        if "addresses" not in data:
            data["addresses"] = {
                **{service: data.get(address_variable(service)) or f"{LOOPBACK}:{port}"
                   for service, port in DEFAULT_PORTS.items()},
                **{f"{service}_metrics": data.get(metrics_address_variable(service)) or f"{LOOPBACK}:{port}"
                   for service, port in DEFAULT_METRICS_PORTS.items()},
            }
        if "max_streams" not in data:
            data["max_streams"] = {}
            for service in GRPC_SERVICES:
                variable = max_streams_variable(service)
                if raw := data.get(variable):
                    if not raw.isdigit() or int(raw) < 1:
                        raise ConfigError(f"{variable}={raw!r} is not a whole number of streams; use 1 or more")
                    data["max_streams"][service] = int(raw)
        return data

    @field_validator("home", mode="after")
    @classmethod
    def _absolute(cls, home: Path) -> Path:
        return home.expanduser().resolve()

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_api_keys(cls, value: Any) -> Any:
        return parse_api_keys(value) if isinstance(value, str) else value

    @field_validator("api_key", "service_key", "blas", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    @field_validator("data_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(Path(p).expanduser().resolve() for p in value.split(os.pathsep) if p)
        return value

    @field_validator("data_roots", mode="after")
    @classmethod
    def _datasets_first(cls, roots: tuple[Path, ...], info: ValidationInfo) -> tuple[Path, ...]:
        return (info.data["home"] / "datasets", *roots) if "home" in info.data else roots

    @field_validator("service_key", mode="after")
    @classmethod
    def _service_principal(cls, key: str, info: ValidationInfo) -> str:
        """With API keys on, the service key joins them as SERVICE_PRINCIPAL; an open hub needs none."""
        keys = info.data.get("api_keys")
        if not key or not keys:
            return ""
        if key in keys:
            raise ConfigError("MLXHUB_SERVICE_KEY is also one of MLXHUB_API_KEYS; give the services a key of their own")
        keys[key] = SERVICE_PRINCIPAL
        return key

    @field_validator("blas", mode="after")
    @classmethod
    def _blas_default(cls, value: str) -> str:
        return value or "auto"

    @model_validator(mode="after")
    def _open_hub_on_loopback(self) -> Settings:
        if not self.api_keys and self.bind_host not in (LOOPBACK, "localhost", "::1"):
            raise ConfigError(f"MLXHUB_BIND_HOST={self.bind_host} would expose an open hub; set MLXHUB_API_KEYS to "
                              "bind beyond 127.0.0.1")
        return self

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


def _explain(error: Any) -> str:
    """One pydantic error as 'VARIABLE=value: what is allowed'."""
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigError):
        return str(cause)
    variable = next((part for part in reversed(error["loc"]) if isinstance(part, str) and part.isupper()), None)
    ctx = {key: f"{value:g}" if isinstance(value, float) else value for key, value in (error.get("ctx") or {}).items()}
    allowed = {
        "int_parsing": "is not a whole number", "int_from_float": "is not a whole number",
        "float_parsing": "is not a number", "bool_parsing": "is not one of 1, 0, true, false, yes, no, on, off",
        "greater_than": f"must be more than {ctx.get('gt')}", "greater_than_equal": f"must be {ctx.get('ge')} or more",
        "less_than_equal": f"must be {ctx.get('le')} or less", "literal_error": f"must be one of {ctx.get('expected')}",
    }.get(error["type"], error["msg"])
    return f"{variable}={error['input']!r} {allowed}" if variable else allowed


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """The settings from `env` when given (only from it), else from the process environment."""
    token = _given_environment.set(env)
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigError("; ".join(_explain(e) for e in error.errors())) from None
    finally:
        _given_environment.reset(token)
