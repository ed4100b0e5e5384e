"""The hub's settings (mlxhub/config.py): defaults, each section, bad values named, the
API key rules, an explicit mapping instead of the environment, and the README's table."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from mlxhub.config import LOOPBACK, SERVICE_PRINCIPAL, ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent


def settings_table():
    spec = importlib.util.spec_from_file_location("settings_table", ROOT / "tools" / "settings_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_table_is_the_one_the_settings_render():
    table = settings_table()
    readme = (ROOT / "README.md").read_text()
    assert table.table() in readme, "README.md's configuration table is stale: run python tools/settings_table.py"
    assert table.replace_table(readme) == readme


def test_every_setting_has_a_row_naming_its_variable():
    rendered = settings_table().table()
    for model in (Settings, *(type(section) for section in (load_settings({}).trainer, load_settings({}).inference,
                                                             load_settings({}).telemetry))):
        for name, field in model.model_fields.items():
            if isinstance(field.validation_alias, str):
                assert f"`{field.validation_alias}`" in rendered, name
    for variable in ("MLXHUB_GATEWAY_ADDR", "MLXHUB_REGISTRY_METRICS_ADDR", "MLXHUB_REGISTRY_MAX_STREAMS"):
        assert variable in rendered


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.home == tmp_path / ".mlxhub"
    assert settings.data_roots == (tmp_path / ".mlxhub" / "datasets",)
    assert settings.datasets_dir == tmp_path / ".mlxhub" / "datasets" and settings.models_dir == tmp_path / ".mlxhub" / "models"
    assert settings.database_url is None and settings.nats_url is None and settings.database_schema == "mlxhub"
    assert settings.nats_port == 4222
    assert not settings.auth_enabled and settings.api_key == "" and settings.service_key == ""
    assert settings.bind_host == LOOPBACK
    assert settings.address("registry") == "127.0.0.1:50051" and settings.port("gateway") == 8080
    assert settings.metrics_address("worker") == "127.0.0.1:9104"
    assert settings.listen_address("trainer") == "127.0.0.1:50052"
    assert settings.max_streams == {} and settings.max_request_bytes == 4 * 1024 * 1024
    assert settings.shutdown_grace_s == 30.0
    assert settings.mlflow_tracking_uri == "" and settings.blas == "auto" and settings.import_demo is True
    assert (settings.telemetry.log_level, settings.telemetry.tracing_enabled) == ("INFO", False)
    trainer = settings.trainer
    assert (trainer.workers, trainer.ack_wait, trainer.heartbeat, trainer.heartbeat_timeout, trainer.max_attempts) == (
        1, 60.0, 5.0, 30.0, 3)
    inference = settings.inference
    assert (inference.memory_gb, inference.keep_alive_s, inference.max_batch, inference.max_queue,
            inference.prompt_cache_gb, inference.weights) == (8.0, 300.0, 8, 32, 1.0, "auto")


def test_each_section_reads_its_variables(tmp_path):
    settings = load_settings({
        "MLXHUB_HOME": str(tmp_path / "home"), "MLXHUB_DATA_ROOTS": f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}",
        "MLXHUB_NATS_PORT": "4333", "MLXHUB_TRAINER_ADDR": "trainer:1", "MLXHUB_WORKER_METRICS_ADDR": "127.0.0.1:0",
        "MLXHUB_INFERENCE_MAX_STREAMS": "7", "MLFLOW_TRACKING_URI": "http://mlflow:5000", "MLXHUB_BLAS": " off ",
        "MLXHUB_IMPORT_DEMO": "0", "MLXHUB_API_KEY": " cli-key ", "MLXHUB_LOG_LEVEL": "debug",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317",
        "MLXHUB_TRAINER_WORKERS": "0", "MLXHUB_TRAINER_ACK_WAIT": "3", "MLXHUB_TRAINER_HEARTBEAT": "0.5",
        "MLXHUB_TRAINER_HEARTBEAT_TIMEOUT": "4", "MLXHUB_TRAINER_MAX_ATTEMPTS": "1",
        "MLXHUB_INFERENCE_MEMORY_GB": "0.25", "MLXHUB_INFERENCE_KEEP_ALIVE_S": "0", "MLXHUB_INFERENCE_MAX_BATCH": "2",
        "MLXHUB_INFERENCE_MAX_QUEUE": "0", "MLXHUB_INFERENCE_PROMPT_CACHE_GB": "0", "MLXHUB_INFERENCE_WEIGHTS": "Quantized",
    })
    assert settings.home == tmp_path / "home"
    assert settings.data_roots == (tmp_path / "home" / "datasets", tmp_path / "a", tmp_path / "b")
    assert settings.nats_port == 4333 and settings.address("trainer") == "trainer:1"
    assert settings.metrics_address("worker") == "127.0.0.1:0" and settings.max_streams == {"inference": 7}
    assert settings.mlflow_tracking_uri == "http://mlflow:5000" and settings.blas == "off"
    assert settings.import_demo is False and settings.api_key == "cli-key"
    assert settings.telemetry.log_level == "DEBUG" and settings.telemetry.tracing_enabled
    trainer = settings.trainer
    assert (trainer.workers, trainer.ack_wait, trainer.heartbeat, trainer.heartbeat_timeout, trainer.max_attempts) == (
        0, 3.0, 0.5, 4.0, 1)
    inference = settings.inference
    assert (inference.memory_gb, inference.keep_alive_s, inference.max_batch, inference.max_queue,
            inference.prompt_cache_gb, inference.weights) == (0.25, 0.0, 2, 0, 0.0, "quantized")


def test_an_empty_variable_means_the_default():
    settings = load_settings({"MLXHUB_HOME": "", "MLXHUB_TRAINER_WORKERS": "", "MLXHUB_INFERENCE_WEIGHTS": "",
                              "MLXHUB_BIND_HOST": "", "MLXHUB_DATABASE_URL": ""})
    assert settings.trainer.workers == 1 and settings.inference.weights == "auto"
    assert settings.bind_host == LOOPBACK and settings.database_url is None


@pytest.mark.parametrize(("variable", "value", "allowed"), [
    ("MLXHUB_INFERENCE_MAX_BATCH", "abc", "is not a whole number"),
    ("MLXHUB_INFERENCE_MAX_BATCH", "0", "must be 1 or more"),
    ("MLXHUB_INFERENCE_MEMORY_GB", "lots", "is not a number"),
    ("MLXHUB_INFERENCE_MEMORY_GB", "-1", "must be more than 0"),
    ("MLXHUB_INFERENCE_WEIGHTS", "int4", "must be one of 'auto', 'float32', 'fp32' or 'quantized'"),
    ("MLXHUB_TRAINER_WORKERS", "-1", "must be 0 or more"),
    ("MLXHUB_TRAINER_ACK_WAIT", "soon", "is not a number"),
    ("MLXHUB_TRAINER_MAX_ATTEMPTS", "0", "must be 1 or more"),
    ("MLXHUB_NATS_PORT", "70000", "must be 65535 or less"),
    ("MLXHUB_MAX_REQUEST_BYTES", "4MB", "is not a whole number"),
    ("MLXHUB_SHUTDOWN_GRACE_S", "-5", "must be 0 or more"),
    ("MLXHUB_IMPORT_DEMO", "maybe", "is not one of 1, 0, true, false"),
    ("MLXHUB_LOG_LEVEL", "loud", "is not a log level"),
    ("MLXHUB_REGISTRY_MAX_STREAMS", "many", "is not a whole number of streams; use 1 or more"),
])
def test_a_bad_value_is_a_config_error_naming_the_variable(variable, value, allowed):
    with pytest.raises(ConfigError) as raised:
        load_settings({variable: value})
    assert str(raised.value).startswith(f"{variable}={value!r}") and allowed in str(raised.value)


def test_every_bad_value_is_named_at_once():
    with pytest.raises(ConfigError, match="MLXHUB_TRAINER_ACK_WAIT='x' .*; MLXHUB_INFERENCE_MAX_QUEUE='-1'"):
        load_settings({"MLXHUB_TRAINER_ACK_WAIT": "x", "MLXHUB_INFERENCE_MAX_QUEUE": "-1"})


def test_api_key_rules():
    settings = load_settings({"MLXHUB_API_KEYS": " alice=k1 , k9 ,, bob=k2", "MLXHUB_SERVICE_KEY": " ks "})
    assert settings.api_keys == {"k1": "alice", "k9": "key-2", "k2": "bob", "ks": SERVICE_PRINCIPAL}
    assert settings.service_key == "ks" and settings.auth_enabled
    with pytest.raises(ConfigError, match="entry 'alice=' is empty on one side"):
        load_settings({"MLXHUB_API_KEYS": "alice="})
    with pytest.raises(ConfigError, match="reserved for the hub's services"):
        load_settings({"MLXHUB_API_KEYS": f"{SERVICE_PRINCIPAL}=k1"})
    with pytest.raises(ConfigError, match="MLXHUB_SERVICE_KEY is also one of MLXHUB_API_KEYS"):
        load_settings({"MLXHUB_API_KEYS": "alice=k1", "MLXHUB_SERVICE_KEY": "k1"})
    open_hub = load_settings({"MLXHUB_SERVICE_KEY": "ks"})  # no user keys: open, and no service credential
    assert not open_hub.auth_enabled and open_hub.service_key == "" and open_hub.api_keys == {}
    with pytest.raises(ConfigError, match="MLXHUB_BIND_HOST=0.0.0.0 would expose an open hub"):
        load_settings({"MLXHUB_BIND_HOST": "0.0.0.0"})
    assert load_settings({"MLXHUB_BIND_HOST": "0.0.0.0", "MLXHUB_API_KEYS": "k"}).listen_address("registry") == "0.0.0.0:50051"


def test_an_explicit_mapping_is_read_instead_of_the_environment(monkeypatch):
    monkeypatch.setenv("MLXHUB_TRAINER_WORKERS", "5")
    monkeypatch.setenv("MLXHUB_INFERENCE_MAX_BATCH", "abc")  # would fail if the environment were read
    monkeypatch.setenv("MLXHUB_GATEWAY_ADDR", "from-env:1")
    settings = load_settings({"MLXHUB_GATEWAY_ADDR": "given:2"})
    assert settings.trainer.workers == 1 and settings.inference.max_batch == 8
    assert settings.address("gateway") == "given:2"


def test_without_a_mapping_the_process_environment_is_read(monkeypatch):
    monkeypatch.setenv("MLXHUB_TRAINER_WORKERS", "5")
    monkeypatch.setenv("MLXHUB_GATEWAY_ADDR", "from-env:1")
    monkeypatch.setenv("MLXHUB_INFERENCE_MAX_STREAMS", "3")
    monkeypatch.setenv("MLXHUB_DATABASE_URL", "")
    settings = load_settings()
    assert settings.trainer.workers == 5 and settings.address("gateway") == "from-env:1"
    assert settings.max_streams == {"inference": 3} and settings.database_url is None
    assert settings == load_settings(dict(os.environ))
    monkeypatch.setenv("MLXHUB_INFERENCE_MAX_BATCH", "abc")
    with pytest.raises(ConfigError, match="MLXHUB_INFERENCE_MAX_BATCH='abc'"):
        load_settings()


def test_settings_are_frozen_and_copied_with_changes():
    settings = load_settings({})
    with pytest.raises(Exception, match="frozen"):
        settings.bind_host = "0.0.0.0"
    assert settings.model_copy(update={"max_streams": {"trainer": 2}}).max_streams == {"trainer": 2}
    assert settings.max_streams == {}


def test_the_inference_options_are_the_inference_section():
    from inference_svc import loader
    from inference_svc.server import InferenceOptions

    options = InferenceOptions.from_settings(load_settings({
        "MLXHUB_INFERENCE_MEMORY_GB": "2", "MLXHUB_INFERENCE_KEEP_ALIVE_S": "5", "MLXHUB_INFERENCE_MAX_BATCH": "3",
        "MLXHUB_INFERENCE_MAX_QUEUE": "4", "MLXHUB_INFERENCE_PROMPT_CACHE_GB": "0.5", "MLXHUB_INFERENCE_WEIGHTS": "fp32",
        "MLXHUB_INFERENCE_PRELOAD_ALIASES": " prod, canary ,"}))
    assert options == InferenceOptions(memory_gb=2.0, keep_alive_s=5.0, max_running=3, max_queued=4,
                                       prompt_cache_gb=0.5, weights=loader.FLOAT32, preload_aliases=("prod", "canary"))
    assert InferenceOptions.from_settings(load_settings({})).preload_aliases == ("default", "production")
    assert InferenceOptions.from_settings(load_settings({"MLXHUB_INFERENCE_PRELOAD_ALIASES": "none"})).preload_aliases == ()
    assert InferenceOptions.from_settings(load_settings({})).weights == loader.weight_format("auto")


def test_the_worker_options_are_the_trainer_section():
    from trainer_svc.config import WorkerOptions

    options = WorkerOptions.from_settings(load_settings({
        "MLXHUB_TRAINER_ACK_WAIT": "3", "MLXHUB_TRAINER_HEARTBEAT": "0.5", "MLXHUB_TRAINER_HEARTBEAT_TIMEOUT": "4",
        "MLXHUB_TRAINER_MAX_ATTEMPTS": "2"}))
    assert options == WorkerOptions(ack_wait=3.0, heartbeat=0.5, heartbeat_timeout=4.0, max_attempts=2)
    assert WorkerOptions.from_settings(load_settings({})) == WorkerOptions()
