"""The serving page in a real browser on the real stack: the server tile (backend, BLAS, memory
budget), the loaded demo model's tile counting what it served and showing its active stream while a
long generation runs, the metrics charts from the inference service's own summary (and the trainer's
throughput from its own), and a clear
message on a hub without an inference service."""

from __future__ import annotations

import dataclasses
import re
import threading

import pytest
from playwright.sync_api import Page, expect
from util import api, assert_accessible, screenshot

LOAD_TIMEOUT_S = 120  # the first request loads the demo model; the machine is slow


@pytest.fixture
def inference_options(inference_options):
    """The conftest's engine with a keep-alive that outlasts this test on a loaded machine, so the demo
    model is still loaded when the screenshots reload the page (the tile shows its countdown either way)."""
    return dataclasses.replace(inference_options, keep_alive_s=900.0)


def test_tiles_follow_a_live_generation_and_charts_count_it(page: Page, inference_hub_url: str):
    with api(inference_hub_url) as http:
        response = http.post("/v1/generate", json={"model": "smollm2@default", "prompt": "The capital of France is",
                                                   "sampling": {"maxTokens": 8}},
                             timeout=LOAD_TIMEOUT_S)
        assert response.status_code == 200, response.text
        info = http.get("/v1/inference/info").json()

    page.goto("/serving")
    expect(page.get_by_role("heading", level=1, name="Serving")).to_be_visible()
    server = page.get_by_test_id("server-tile")
    expect(server).to_contain_text(info["backend"])
    expect(server).to_contain_text(info["blas"])
    expect(server.get_by_test_id("memory-budget")).to_have_text(f"{info['memoryBudgetGb']:.2f} GB")
    expect(server.get_by_role("meter", name="Memory budget")).to_be_visible()
    for field in ("weightFormat", "mlxVersion", "mlxLmVersion"):  # what the server runs, as the API says it
        if info.get(field):
            expect(server).to_contain_text(info[field])

    tile = page.locator('[data-testid="model-tile"][data-version="smollm2/versions/1"]')
    expect(tile).to_be_visible()
    expect(tile.get_by_test_id("requests-served")).to_have_text("1")
    expect(tile.get_by_test_id("active-streams")).to_have_text("0")
    expect(tile.get_by_test_id("unload")).to_contain_text("unloads in")
    box = tile.bounding_box()

    stop, done = threading.Event(), threading.Event()
    failures: list[str] = []
    lines: list[bytes] = []

    def long_generation() -> None:
        """Streams a long answer until told to stop; closing the stream cancels it on the server."""
        try:
            with api(inference_hub_url) as http, http.stream(
                "POST", "/v1/generate:stream",
                json={"model": "smollm2@default", "prompt": "Once upon a time",
                      "sampling": {"maxTokens": 400, "temperature": 0.8}},
            ) as stream:
                if stream.status_code != 200:
                    failures.append(f"{stream.status_code}: {stream.read()!r}")
                for line in stream.iter_lines():
                    lines.append(line)
                    if stop.is_set():
                        break
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(repr(exc))
        finally:
            done.set()

    worker = threading.Thread(target=long_generation, daemon=True)
    worker.start()
    expect(tile.get_by_test_id("active-streams")).to_have_text("1", timeout=15_000)
    expect(tile.get_by_test_id("unload")).to_contain_text("in use")
    expect(tile.get_by_text("streaming")).to_be_visible()
    assert tile.bounding_box() == box, "the tile moved or changed size while it updated"
    assert not done.is_set(), "the generation ended before the page saw it"
    stop.set()
    assert done.wait(60), "the stream did not end"
    worker.join(5)
    assert not failures, failures
    assert lines, "the stream sent nothing"
    expect(tile.get_by_test_id("active-streams")).to_have_text("0", timeout=10_000)
    expect(tile.get_by_test_id("requests-served")).to_have_text("2")
    expect(tile.get_by_test_id("tokens-served")).to_have_text(re.compile(r"^[1-9][\d,]*$"))  # both generations' tokens
    expect(tile.get_by_test_id("memory")).to_have_text(re.compile(r"^\d+(\.\d+)? (GB|MB)$"))
    expect(tile.get_by_text("TTFT p50 (last busy minute)")).to_be_visible()  # the sparklines
    expect(tile.get_by_text("Decode tokens/s (last busy minute)")).to_be_visible()

    metrics = page.get_by_role("region", name="Metrics")
    expect(metrics.get_by_test_id("total-requests")).to_have_text("2", timeout=15_000)
    for chart, lines in (("requests", 2), ("ttft", 2), ("itl", 2), ("throughput", 1), ("queue", 2), ("training", 2)):
        figure = page.get_by_test_id(f"chart-{chart}")
        expect(figure.locator(".recharts-cartesian-grid")).to_be_visible()
        expect(figure.locator("path.recharts-line-curve")).to_have_count(lines)
    expect(page.get_by_test_id("chart-training").get_by_role("heading", name="Training throughput")).to_be_visible()

    assert_accessible(page, "serving")
    screenshot(page, "serving", ready='[data-testid="model-tile"]')

    # The Overview counts the loaded version and links to this page.
    page.goto("/")
    loaded = page.get_by_test_id("tile-loaded")
    expect(loaded.get_by_test_id("count")).to_have_text("1")
    expect(loaded).to_have_attribute("href", "/serving")


def test_without_inference_the_page_says_so(page: Page, hub_url: str):
    page.goto("/serving")
    expect(page.get_by_role("heading", level=1, name="Serving")).to_be_visible()
    expect(page.get_by_test_id("inference-down")).to_contain_text("The inference service is not running")
    assert_accessible(page, "serving without inference")
