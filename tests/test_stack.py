"""`mlx-hub up` as a newcomer runs it: a real subprocess with its own home, the
curl tour from the README over HTTP, Ctrl-C, and a second start that still has
everything (PostgreSQL data and NATS store under the same home). With API keys:
a training job run through it, its secrets kept out of sight, its output in a log."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jsonschema
import openai
import psutil
import pytest
from inference_util import HERMES_TOOL_TEMPLATE, with_chat_template
from rich.console import Console

from mlxhub.config import SERVICE_PRINCIPAL, load_settings
from mlxhub.embedded import free_port
from mlxhub.stack import Child, Stack, with_service_key

ROOT = Path(__file__).resolve().parent.parent
MLX_HUB = Path(sys.executable).parent / "mlx-hub"
READY_LINE = "MLX Hub is up"


def stack_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLXHUB_")}
    env.update(
        MLXHUB_HOME=str(home),
        MLXHUB_NATS_PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
        COLUMNS="200",
    )
    for service in ("registry", "trainer", "inference", "gateway"):
        env[f"MLXHUB_{service.upper()}_ADDR"] = f"127.0.0.1:{free_port()}"
        env[f"MLXHUB_{service.upper()}_METRICS_ADDR"] = f"127.0.0.1:{free_port()}"
    return env


class Up:
    """One `mlx-hub up` process, its output in a file (no pipe to fill up)."""

    def __init__(self, env: dict[str, str], out: Path) -> None:
        self.env, self.out = env, out
        self.home = Path(env["MLXHUB_HOME"])
        with open(out, "wb") as handle:
            self.process = subprocess.Popen([str(MLX_HUB), "up"], cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def logs(self) -> str:
        parts = [f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted((self.home / "logs").glob("*.log"))]
        return "\n".join(parts)

    def wait_ready(self, timeout: float = 240.0) -> dict:
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.output():
            if self.process.poll() is not None:
                pytest.fail(f"mlx-hub up exited with {self.process.returncode}:\n{self.output()}\n{self.logs()}")
            if time.monotonic() > deadline:
                pytest.fail(f"mlx-hub up not ready after {timeout:.0f}s:\n{self.output()}\n{self.logs()}")
            time.sleep(0.2)
        return json.loads((self.home / "stack.json").read_text())

    def interrupt(self, timeout: float = 90.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"mlx-hub up did not stop within {timeout:.0f}s after SIGINT:\n{self.output()}")

    def kill_leftovers(self, state: dict | None) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        leftover = pids(state or {})
        pid_file = self.home / "postgres" / "postmaster.pid"
        if pid_file.exists():  # the launcher failed before writing stack.json
            leftover.append(int(pid_file.read_text().split()[0]))
        for pid in leftover:
            if alive(pid):
                psutil.Process(pid).kill()


def pids(state: dict) -> list[int]:
    found = [child["pid"] for child in state.get("children", {}).values()]
    return [p for p in [*found, state.get("postgres_pid")] if p]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pid_list: list[int], timeout: float = 15.0) -> list[str]:
    """Processes still running after `timeout`, described by pid and command line."""
    deadline = time.monotonic() + timeout
    while (left := [p for p in pid_list if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    described = []
    for pid in left:
        with contextlib.suppress(psutil.Error):
            described.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())}")
    return described


PERSON = {"type": "object", "additionalProperties": False, "required": ["name", "age"],
          "properties": {"name": {"type": "string", "maxLength": 16},
                         "age": {"type": "integer", "minimum": 0, "maximum": 120}}}


def agent_features_through_the_openai_client(gateway: str) -> None:
    """What an agent asks of `make up`'s stack with the official `openai` client on the demo model:
    output that matches a JSON schema, and log-probabilities."""
    client = openai.OpenAI(base_url=f"{gateway}/openai/v1", api_key="unused", max_retries=0, timeout=300)
    ask = [{"role": "user", "content": "Describe a person as JSON."}]
    shaped = client.chat.completions.create(
        model="smollm2@default", messages=ask, max_tokens=60,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}})
    jsonschema.validate(json.loads(shaped.choices[0].message.content), PERSON)

    scored = client.chat.completions.create(model="smollm2@default", messages=ask, max_tokens=4,
                                            temperature=0, logprobs=True, top_logprobs=3)
    tokens = scored.choices[0].logprobs.content
    assert len(tokens) == scored.usage.completion_tokens
    for token in tokens:  # greedy: the chosen token is the most likely one
        assert token.logprob <= 0 and [t.logprob for t in token.top_logprobs] == sorted(
            (t.logprob for t in token.top_logprobs), reverse=True)
        assert token.top_logprobs[0].token == token.token


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city", "strict": True,
    "parameters": {"type": "object", "additionalProperties": False, "required": ["city", "unit"],
                   "properties": {"city": {"type": "string", "maxLength": 20},
                                  "unit": {"enum": ["celsius", "fahrenheit"]}}}}}


def a_tool_round_trip_through_the_openai_client(http: httpx.Client, gateway: str, home: Path) -> None:
    """A two-turn tool round trip against `make up`'s stack: the demo model's weights given a chat
    template with a tool-call format, registered as a model of its own, called with the official client."""
    demo = http.get("/v1/models/smollm2/versions/1").json()["version"]["artifactPath"]
    caller = with_chat_template(Path(demo), home / "models" / "caller", HERMES_TOOL_TEMPLATE)
    assert http.post("/v1/models", json={"name": "caller"}).status_code == 200
    created = http.post("/v1/models/caller/versions", json={"artifactPath": str(caller)})
    assert created.status_code == 200, created.text

    client = openai.OpenAI(base_url=f"{gateway}/openai/v1", api_key="unused", max_retries=0, timeout=300)
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(model="caller", messages=messages, tools=[WEATHER], max_tokens=40,
                                           tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert first.choices[0].finish_reason == "tool_calls", first
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 degrees"}]
    second = client.chat.completions.create(model="caller", messages=messages, tools=[WEATHER], tool_choice="none",
                                            max_tokens=12)
    assert second.choices[0].message.content and not second.choices[0].message.tool_calls, second


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "hub"


def test_up_serves_the_tour_stops_cleanly_and_keeps_state(home: Path, tmp_path: Path):
    for package in ("registry_svc", "gateway"):
        assert (ROOT / package / "__main__.py").exists(), f"{package}/__main__.py is missing: nothing to run"
    env = stack_env(home)
    gateway = f"http://{env['MLXHUB_GATEWAY_ADDR']}"
    up = Up(env, tmp_path / "up1.out")
    state = None
    try:
        state = up.wait_ready()
        printed = up.output()
        assert env["MLXHUB_REGISTRY_ADDR"] in printed and gateway in printed
        # The dashboard comes first: the first endpoint printed after the title.
        assert re.search(r"^\s*dashboard: (\S+)$", printed, re.MULTILINE).group(1) == f"{gateway}/", printed
        assert printed.index(f"dashboard: {gateway}/") < printed.index("postgresql://")
        assert state["dashboard"] == f"{gateway}/"
        assert str(home / "logs") in printed and "postgresql://" in printed
        assert f"http://{env['MLXHUB_REGISTRY_METRICS_ADDR']}/metrics" in printed  # where Prometheus scrapes
        assert f"http://{env['MLXHUB_TRAINER_METRICS_ADDR']}/metrics" in printed
        assert set(state["children"]) >= {"nats", "registry", "gateway"}
        assert (home / "postgres" / "PG_VERSION").exists() and (home / "nats").is_dir()

        with httpx.Client(base_url=gateway, timeout=30) as http:
            created = http.post("/v1/models", json={"name": "demo", "baseModel": "smollm2", "description": "tour"})
            assert created.status_code == 200, created.text
            assert created.json()["model"]["name"] == "demo"
            assert http.post("/v1/models", json={"name": "demo"}).status_code == 409

            data = home / "datasets" / "chat.jsonl"
            data.parent.mkdir(parents=True, exist_ok=True)
            data.write_text('{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n')
            registered = http.post("/v1/datasets", json={"name": "chat", "path": str(data)})
            assert registered.status_code == 200, registered.text
            assert registered.json()["dataset"]["recordCount"] == "1"

            # The demo model was imported on first start, so the newcomer can generate at once.
            assert [m["name"] for m in http.get("/v1/models").json()["models"]] == ["demo", "smollm2"]
            assert [d["name"] for d in http.get("/v1/datasets").json()["datasets"]] == ["chat"]
            answer = http.post("/v1/generate", timeout=300, json={
                "model": "smollm2@default", "sampling": {"maxTokens": 12},
                "messages": [{"role": "user", "content": "What is the capital of France?"}]})
            assert answer.status_code == 200, answer.text
            assert "Paris" in answer.json()["text"] and answer.json()["modelVersion"] == "smollm2/versions/1"
            loaded = {m["modelVersion"]: m for m in http.get("/v1/inference/models").json()["models"]}
            assert loaded["smollm2/versions/1"]["preloaded"] == "alias default of smollm2", loaded  # make up's alias
            agent_features_through_the_openai_client(gateway)
            a_tool_round_trip_through_the_openai_client(http, gateway, home)
            first_events = [json.loads(line)["result"]["event"] for line in http.get("/v1/events").text.splitlines()]
            assert {"ModelRegistered", "ModelVersionCreated", "AliasMoved", "DatasetRegistered"} <= {
                e["type"] for e in first_events}
            registry_metrics = http.get(f"http://{env['MLXHUB_REGISTRY_METRICS_ADDR']}/metrics").text
            assert 'mlxhub_rpc_requests_total{code="ALREADY_EXISTS",method="CreateModel",service="registry"} 1.0' in registry_metrics
            appends = f'mlxhub_eventstore_appends_total{{application="registry"}} {float(len(first_events))}'
            assert appends in registry_metrics

        status = subprocess.run([str(MLX_HUB), "status"], check=False, env=env, capture_output=True, text=True,
                                timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "registry" in status.stdout and "SERVING" in status.stdout and "postgres" in status.stdout

        # A crashed service is reported with its log and restarted; the hub keeps answering.
        os.kill(state["children"]["registry"]["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while "registry is back" not in up.output():
            assert time.monotonic() < deadline, f"registry was not restarted:\n{up.output()}"
            time.sleep(0.2)
        assert "registry exited unexpectedly" in up.output() and "registry.log" in up.output()
        state = json.loads((home / "stack.json").read_text())
        with httpx.Client(base_url=gateway, timeout=30) as http:
            deadline = time.monotonic() + 5  # the gateway reconnects within its 1 s backoff cap
            while (listed := http.get("/v1/models")).status_code == 503 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert [m["name"] for m in listed.json().get("models", [])] == ["caller", "demo", "smollm2"], listed.text

        started = pids(state)
        assert up.interrupt() == 0, up.output()
        left = wait_gone(started)
        assert left == [], f"still running after Ctrl-C: {left}\n{up.output()}"
        assert not (home / "stack.json").exists()
        assert "MLX Hub stopped." in up.output()
    finally:
        up.kill_leftovers(state)

    again = Up(env, tmp_path / "up2.out")
    state = None
    try:
        state = again.wait_ready()
        with httpx.Client(base_url=gateway, timeout=30) as http:
            assert http.get("/v1/models/demo").json()["model"]["description"] == "tour"
            assert [d["name"] for d in http.get("/v1/datasets").json()["datasets"]] == ["chat"]
            events = [json.loads(line)["result"]["event"] for line in http.get("/v1/events").text.splitlines()]
        assert [e["position"] for e in events[: len(first_events)]] == [e["position"] for e in first_events]
        assert {"ModelRegistered", "DatasetRegistered"} <= {e["type"] for e in events}
        started = pids(state)
        assert again.interrupt() == 0
        left = wait_gone(started)
        assert left == [], f"still running after Ctrl-C: {left}\n{again.output()}"
    finally:
        again.kill_leftovers(state)


def test_up_refuses_a_taken_port(home: Path, tmp_path: Path):
    env = stack_env(home)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", int(env["MLXHUB_NATS_PORT"])))
        busy.listen()
        result = subprocess.run([str(MLX_HUB), "up"], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"port {env['MLXHUB_NATS_PORT']}" in result.stderr and "already in use" in result.stderr
    assert "MLXHUB_NATS_PORT" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (home / "postgres").exists()  # refused before starting anything


def test_up_rejects_bad_configuration(home: Path):
    env = {**stack_env(home), "MLXHUB_BIND_HOST": "0.0.0.0"}
    result = subprocess.run([str(MLX_HUB), "up"], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "MLXHUB_API_KEYS" in result.stderr


def whole_on_a_line(text: str, items: list[str]) -> list[str]:
    """The items (URLs, paths) that no single line of `text` holds whole."""
    lines = text.splitlines()
    return [item for item in items if not any(item in line for line in lines)]


def test_endpoints_are_never_broken_across_lines(tmp_path: Path):
    env = {"MLXHUB_HOME": str(tmp_path / "a-rather-long-hub-home-directory-name" / "hub"),
           "MLXHUB_DATABASE_URL": "postgresql://mlxhub:pg-secret-pw@db.internal.example:5432/mlxhub",
           "MLXHUB_NATS_URL": "nats://127.0.0.1:4222"}
    settings = load_settings(env)
    stack = Stack(settings, env)
    for name in ("registry", "trainer", "inference", "gateway"):
        endpoint = f"http://{settings.address(name)}" if name == "gateway" else settings.address(name)
        stack.children.append(Child(name, [], stack.logs / f"{name}.log", endpoint, lambda: True, {}))
    wanted = [f"http://{settings.metrics_address(n)}/metrics" for n in ("registry", "trainer", "inference", "gateway")]
    wanted += ["postgresql://mlxhub:***@db.internal.example:5432/mlxhub",
               str(stack.logs)] + [str(stack.logs / f"{n}.log") for n in ("registry", "trainer", "inference", "gateway")]
    for terminal, width in ((False, 80), (False, 300), (True, 80)):  # a log file or pipe, and a narrow window
        out = io.StringIO()
        stack.print_endpoints(Console(file=out, width=width, force_terminal=terminal, color_system=None))
        printed = out.getvalue()
        assert whole_on_a_line(printed, wanted) == [], printed
        assert "pg-secret-pw" not in printed
        assert re.search(r"^  registry metrics: http://\S+/metrics$", printed, re.MULTILINE), printed
        assert printed.splitlines()[1] == f"  dashboard: http://{settings.address('gateway')}/", printed  # first
    wide = io.StringIO()
    stack.print_endpoints(Console(file=wide, width=300, force_terminal=True, color_system=None))
    assert "┃ component" in wide.getvalue() and whole_on_a_line(wide.getvalue(), wanted) == []  # the table fits
    rows = [line for line in wide.getvalue().splitlines() if line.startswith("│")]
    assert rows[0].split("│")[1].strip() == "dashboard", wide.getvalue()
    assert rows[0].split("│")[2].strip() == f"http://{settings.address('gateway')}/", wide.getvalue()


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    _, _, host = parts.netloc.rpartition("@")  # empty for a Unix-socket URL (host=... in the query)
    return parts._replace(netloc=f"{parts.username or 'postgres'}:{password}@{host}").geturl()


def test_up_with_api_keys_trains_for_the_requester_and_keeps_secrets_out_of_sight(
        hub_home: Path, tmp_path: Path, postgres_url: str, db_schema: str, nats_url: str, tiny_model: Path,
        training_chats: Path):
    """B9, D18, D22 through a real `mlx-hub up`: output in a file (not a terminal, 80 columns), API keys on,
    a database URL and an MLflow URI with passwords (the test server trusts any password)."""
    env = stack_env(hub_home)
    env.update(
        COLUMNS="80",
        MLXHUB_API_KEYS="alice=alice-key",
        MLXHUB_DATABASE_URL=with_password(postgres_url, "pg-secret-pw"),
        MLXHUB_DATABASE_SCHEMA=db_schema,
        MLXHUB_NATS_URL=nats_url,
        MLXHUB_IMPORT_DEMO="0",
        MLFLOW_TRACKING_URI=f"http://tracker:mlflow-pw@127.0.0.1:{free_port()}",  # unreachable: best effort
    )
    secrets = ("pg-secret-pw", "mlflow-pw")
    gateway = f"http://{env['MLXHUB_GATEWAY_ADDR']}"
    up = Up(env, tmp_path / "up.out")
    state = None
    try:
        state = up.wait_ready()
        printed = up.output()
        names = ("REGISTRY", "TRAINER", "INFERENCE", "GATEWAY")
        urls = [f"http://{env[f'MLXHUB_{n}_METRICS_ADDR']}/metrics" for n in names]
        urls += [gateway, str(hub_home / "logs" / "trainer.log")]
        assert whole_on_a_line(printed, urls) == [], printed
        assert not any(secret in printed for secret in secrets) and "postgres:***@" in printed, printed
        for private in ("stack.json", "service.key"):
            assert stat.S_IMODE((hub_home / private).stat().st_mode) == 0o600, private
        assert "pg-secret-pw" not in (hub_home / "stack.json").read_text()

        alice = {"Authorization": "Bearer alice-key"}
        with httpx.Client(base_url=gateway, timeout=60, headers=alice) as http:
            assert http.post("/v1/models", json={"name": "tiny"}).status_code == 200
            version = http.post("/v1/models/tiny/versions", json={"artifactPath": str(tiny_model)})
            assert version.status_code == 200, version.text
            assert http.post("/v1/datasets", json={"name": "chats", "path": str(training_chats)}).status_code == 200
            created = http.post("/v1/training/jobs", json={
                "model": "tiny", "dataset": "chats", "config": {"iters": 4, "batchSize": 2, "learningRate": 0.001}})
            assert created.status_code == 200, created.text
            job_id = created.json()["job"]["id"]
            deadline = time.monotonic() + 240
            while (job := http.get(f"/v1/training/jobs/{job_id}").json()["job"])["state"] in (
                    "TRAINING_JOB_STATE_QUEUED", "TRAINING_JOB_STATE_RUNNING"):
                assert time.monotonic() < deadline, f"job still {job['state']}\n{up.logs()}"
                time.sleep(0.5)
            assert job["state"] == "TRAINING_JOB_STATE_SUCCEEDED", f"{job.get('failureReason')}\n{up.logs()}"
            assert job["createdBy"] == "alice" and job["outputVersion"] == "tiny/versions/2"
            trained = http.get("/v1/models/tiny/versions/2").json()["version"]
            assert trained["createdBy"] == "alice"  # the requester, not the trainer's service credential
            assert job["mlflowStatus"].startswith("MLflow unreachable at http://tracker:***@")
            answers = json.dumps(job) + http.get("/v1/events").text + http.get("/health/deep").text
            assert not any(secret in answers for secret in secrets)

        started = pids(state)
        assert up.interrupt() == 0, up.output()
        assert wait_gone(started) == []
        logs = up.logs()
        assert not any(secret in logs for secret in secrets), logs
    finally:
        up.kill_leftovers(state)


def test_the_service_key_is_made_once_per_home_and_kept_private(tmp_path: Path):
    env = {"MLXHUB_HOME": str(tmp_path / "hub"), "MLXHUB_API_KEYS": "alice=k1"}
    first_env, first = with_service_key(env, load_settings(env))
    key_file = tmp_path / "hub" / "service.key"
    assert first.service_key and first_env["MLXHUB_SERVICE_KEY"] == first.service_key
    assert first.api_keys[first.service_key] == SERVICE_PRINCIPAL
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    _, again = with_service_key(env, load_settings(env))
    assert again.service_key == first.service_key  # the same home keeps its key across restarts
    given_env, given = with_service_key({**env, "MLXHUB_SERVICE_KEY": "operator-chosen"},
                                        load_settings({**env, "MLXHUB_SERVICE_KEY": "operator-chosen"}))
    assert given.service_key == "operator-chosen" and given_env["MLXHUB_SERVICE_KEY"] == "operator-chosen"
    open_home = {"MLXHUB_HOME": str(tmp_path / "open")}
    open_env, open_settings = with_service_key(open_home, load_settings(open_home))
    assert not open_settings.service_key and "MLXHUB_SERVICE_KEY" not in open_env and not (tmp_path / "open" / "service.key").exists()
