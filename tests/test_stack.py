"""`mlx-hub up` as a newcomer runs it: a real subprocess with its own home, the
curl tour from the README over HTTP, Ctrl-C, and a second start that still has
everything (PostgreSQL data and NATS store under the same home)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from mlxhub.embedded import free_port

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
        if service != "gateway":
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
            assert [m["name"] for m in listed.json().get("models", [])] == ["demo", "smollm2"], listed.text

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
