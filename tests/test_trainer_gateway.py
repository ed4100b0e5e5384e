"""The trainer through the JSON gateway, as a curl user sees it: create, get, watch
(NDJSON and SSE), cancel. Routes come from trainer.proto's annotations."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from trainer_util import register

from gateway.server import running


@pytest.fixture
def client(trainer, registry_stub, settings, tiny_model, training_chats):
    register(registry_stub, tiny_model, training_chats)
    with running(settings) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http


def test_create_get_watch_and_cancel_over_http(client):
    body = {"model": "tiny", "dataset": "chats", "idempotencyKey": "http-1",
            "config": {"iters": 5, "batchSize": 2, "learningRate": 0.001}}
    created = client.post("/v1/training/jobs", json=body)
    assert created.status_code == 200, created.text
    job = created.json()["job"]
    assert job["state"] == "TRAINING_JOB_STATE_QUEUED" and job["config"]["rank"] == 8
    assert client.post("/v1/training/jobs", json=body).json()["job"]["id"] == job["id"]  # idempotent

    with client.stream("GET", f"/v1/training/jobs/{job['id']}:watch") as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.iter_lines() if line]
    steps = [line["result"]["progress"]["step"] for line in lines if "progress" in line["result"]]
    assert [int(s) for s in steps] == [1, 2, 3, 4, 5]
    assert lines[-1]["result"]["job"]["state"] == "TRAINING_JOB_STATE_SUCCEEDED"

    got = client.get(f"/v1/training/jobs/{job['id']}").json()["job"]
    assert got["outputVersion"] == "tiny/versions/2" and got["step"] == "5"

    sse = client.get(f"/v1/training/jobs/{job['id']}:watch", headers={"Accept": "text/event-stream"})
    assert sse.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line.removeprefix("data:")) for line in sse.text.splitlines() if line.startswith("data:")]
    # the same replay; job updates between are whatever changed while it was watched (none here: it has ended)
    assert [e["progress"]["step"] for e in events if "progress" in e] == steps
    assert events[-1]["job"]["state"] == "TRAINING_JOB_STATE_SUCCEEDED"

    long = client.post("/v1/training/jobs", json={**body, "model": "tiny/versions/1", "idempotencyKey": "http-2",
                                                  "config": {**body["config"], "iters": 100000}}).json()["job"]
    cancel = client.post(f"/v1/training/jobs/{long['id']}:cancel", json={})
    assert cancel.status_code == 200, cancel.text
    deadline = time.monotonic() + 60
    while (state := client.get(f"/v1/training/jobs/{long['id']}").json()["job"]["state"]) != "TRAINING_JOB_STATE_CANCELLED":
        assert time.monotonic() < deadline, state
        time.sleep(0.1)

    bad = client.post("/v1/training/jobs", json={**body, "idempotencyKey": "", "config": {"learningRate": -1}})
    assert bad.status_code == 400 and "config.learning_rate" in bad.text
    missing = client.get("/v1/training/jobs/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
