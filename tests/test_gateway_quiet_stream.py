"""A follow stream with nothing to say yet still answers at once: the dashboard shows
"live" the moment it is connected, not when the next event happens to arrive."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from gateway.app import STREAM_HEAD_WAIT_S
from gateway.server import running


@pytest.fixture
def base_url(registry, settings):
    with running(settings) as url:
        yield url


def test_a_quiet_follow_stream_answers_200_at_once_and_delivers_the_next_event(base_url):
    with httpx.Client(base_url=base_url, timeout=15) as http:
        started = time.monotonic()
        with http.stream("GET", "/v1/events", params={"follow": "true"}) as response:
            answered = time.monotonic() - started
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/x-ndjson")
            assert answered < STREAM_HEAD_WAIT_S + 1.0, f"headers came after {answered:.2f}s"
            created = http.post("/v1/models", json={"name": "late"})
            assert created.status_code == 200, created.text
            line = next(line for line in response.iter_lines() if line)
    event = json.loads(line)["result"]["event"]
    assert (event["aggregate"], event["type"]) == ("model/late", "ModelRegistered")


def test_a_refused_stream_still_gets_its_http_status(base_url):
    with httpx.Client(base_url=base_url, timeout=15) as http:
        response = http.get("/v1/events", params={"follow": "true", "aggregate": "nonsense"})
    assert response.status_code == 400, response.text
    assert "aggregate" in response.json()["message"]
