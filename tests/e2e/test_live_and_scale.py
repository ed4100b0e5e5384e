"""The dashboard's live streams and its large views in a real browser: a followed stream that drops
(the gateway restarts) shows "Reconnecting…" in the top bar and resumes after the last event it
delivered, so an event made meanwhile appears once and nothing twice; the audit page holds 100,000
events with a small, bounded DOM while scrolling end to end; a 10,000-step training curve is held in
full and drawn thinned. The last two answer the API's streams from the test (Playwright routes) with
as many records as a real hub would send, because seeding 100,000 events takes minutes here."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, Request, Route, expect
from util import api

from gateway.server import running
from mlxhub.v1 import registry_pb2


@pytest.fixture
def hub_env(hub_env: dict[str, str]) -> dict[str, str]:
    """A short shutdown grace: the restart test stops a gateway that holds an open stream."""
    return {**hub_env, "MLXHUB_SHUTDOWN_GRACE_S": "1"}


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def connection(page: Page):
    return page.get_by_role("banner").get_by_test_id("connection-state")


def test_a_dropped_stream_resumes_after_its_last_event_and_the_top_bar_says_so(
    page: Page, dashboard_built, registry, trainer, registry_stub, settings
):
    follows: list[Request] = []
    page.on("request", lambda r: follows.append(r) if "/v1/events" in r.url and "follow=true" in r.url else None)
    with running(settings) as url:
        page.goto(url + "/")
        feed = page.get_by_test_id("activity-feed").get_by_role("listitem")
        expect(page.get_by_test_id("feed-state")).to_have_text("Live")
        expect(connection(page)).to_have_attribute("data-state", "live")
        expect(connection(page)).to_have_text("Live")
        with api(url) as http:
            ok(http.post("/v1/models", json={"name": "before"}))
            (before,) = [json.loads(line)["result"]["event"] for line in http.get("/v1/events").text.splitlines()]
        expect(feed.filter(has_text="created model before")).to_have_count(1)

    # The gateway is gone: the stream dropped, and the top bar says it is being resumed.
    expect(connection(page)).to_have_attribute("data-state", "reconnecting", timeout=15_000)
    expect(connection(page)).to_have_text("Reconnecting…")
    registry_stub.CreateModel(registry_pb2.CreateModelRequest(name="during"))  # made while the page is cut off
    expect(feed.filter(has_text="created model during")).to_have_count(0)
    follows.clear()

    with running(settings):
        expect(connection(page)).to_have_attribute("data-state", "live", timeout=20_000)
        expect(feed.filter(has_text="created model during")).to_have_count(1)
        expect(feed.filter(has_text="created model before")).to_have_count(1)  # not delivered twice
        assert follows, "the page did not open the stream again"
        resumed = parse_qs(urlsplit(follows[-1].url).query)
        assert resumed["afterPosition"] == [before["position"]], follows[-1].url
        expect(feed).to_have_count(2)


def ndjson(records: Iterator[dict]) -> str:
    return "".join(json.dumps({"result": r}, separators=(",", ":")) + "\n" for r in records)


AUDIT_EVENTS = 100_000


def test_the_audit_page_holds_100000_events_with_a_bounded_dom(page: Page, hub_url: str):
    with api(hub_url) as http:
        ok(http.post("/v1/models", json={"name": "tmpl-000000", "baseModel": "org/base"}))
        (real,) = [json.loads(line)["result"]["event"] for line in http.get("/v1/events").text.splitlines()]
    # Every event is the real one with its own position and model name.
    real["position"] = "__POSITION__"
    template = json.dumps({"result": {"event": real}}, separators=(",", ":"))
    assert template.count("tmpl-000000") >= 1

    def event_line(position: int) -> str:
        return template.replace('"__POSITION__"', f'"{position}"').replace("tmpl-000000", f"bulk-{position:06d}") + "\n"

    served: list[int] = []

    def events(route: Route) -> None:
        query = parse_qs(urlsplit(route.request.url).query)
        if "follow" in query:
            route.continue_()
            return
        after, limit = int(query.get("afterPosition", ["0"])[0]), int(query["limit"][0])
        last = min(after + limit, AUDIT_EVENTS)
        served.append(last - after)
        route.fulfill(status=200, content_type="application/x-ndjson",
                      body="".join(event_line(p) for p in range(after + 1, last + 1)))

    page.route(lambda url: urlsplit(url).path == "/v1/events", events)
    page.goto("/audit")
    expect(page.get_by_test_id("event-count")).to_have_text(f"{AUDIT_EVENTS:,} events", timeout=120_000)
    expect(page.get_by_test_id("event-loading")).to_have_count(0, timeout=30_000)
    assert sum(served) == AUDIT_EVENTS and len(served) > 1, served  # read in pages, by the API's limit
    expect(page.get_by_role("table")).to_have_attribute("aria-rowcount", str(AUDIT_EVENTS + 1))

    # Scrolling from the top to the end shows the rows at each place, never more than a screenful in the DOM.
    region = page.get_by_role("region", name="Event log")
    rows = page.locator("tbody tr[data-position]")
    for fraction in (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0):
        region.evaluate("(el, f) => { el.scrollTop = f * (el.scrollHeight - el.clientHeight); }", fraction)
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        shown = [int(p) for p in rows.evaluate_all("rows => rows.map(r => r.dataset.position)")]
        assert 0 < len(shown) < 100, f"{len(shown)} rows in the DOM at {fraction:.0%} of {AUDIT_EVENTS} events"
        assert shown == list(range(shown[0], shown[0] + len(shown))), "the rows shown are not consecutive"
        expected = fraction * AUDIT_EVENTS
        assert shown[0] - 100 <= expected <= shown[-1] + 100, (fraction, shown[0], shown[-1])
    expect(page.locator(f'tr[data-position="{AUDIT_EVENTS}"]')).to_be_visible()
    expect(page.locator(f'tr[data-position="{AUDIT_EVENTS}"]')).to_contain_text(f"bulk-{AUDIT_EVENTS:06d}")


TRAINING_STEPS = 10_000
EVAL_EVERY = 1_000


def test_a_10000_step_curve_is_held_in_full_and_drawn_thinned(page: Page, hub_url: str, tiny_model, chat_dataset):
    with api(hub_url) as http:
        ok(http.post("/v1/models", json={"name": "long"}))
        ok(http.post("/v1/models/long/versions", json={"artifactPath": str(tiny_model)}))
        ok(http.post("/v1/datasets", json={"name": "chat", "path": str(chat_dataset)}))
        # The trainer here has no workers: the job stays queued, and its watch is answered below.
        job = ok(http.post("/v1/training/jobs", json={"model": "long/versions/1", "dataset": "chat",
                                                      "config": {"iters": TRAINING_STEPS, "batchSize": 1}}))["job"]
    finished = {**job, "state": "TRAINING_JOB_STATE_SUCCEEDED", "step": str(TRAINING_STEPS),
                "totalSteps": str(TRAINING_STEPS)}

    def progress(step: int) -> dict:
        report = {"step": str(step), "totalSteps": str(TRAINING_STEPS), "loss": 3.0 / (1 + step / 500),
                  "tokensPerSecond": 1234.0, "learningRate": 1e-4, "peakMemoryGb": 1.5}
        if step % EVAL_EVERY == 0:
            report.update(hasValidationLoss=True, validationLoss=3.2 / (1 + step / 500))
        return {"progress": report}

    body = ndjson(progress(s) for s in range(1, TRAINING_STEPS + 1)) + ndjson([{"job": finished}])
    page.route(lambda url: urlsplit(url).path == f"/v1/training/jobs/{job['id']}:watch",
               lambda route: route.fulfill(status=200, content_type="application/x-ndjson", body=body))
    page.goto(f"/training/{job['id']}")
    expect(page.get_by_test_id("loss-points")).to_have_text(f"{TRAINING_STEPS} steps", timeout=60_000)
    expect(page.get_by_text(f"· {TRAINING_STEPS // EVAL_EVERY} validation")).to_be_visible()
    expect(page.get_by_test_id("job-step")).to_have_text(f"{TRAINING_STEPS} / {TRAINING_STEPS}")
    # The latest report's figures beside the chart.
    for label, value in (("Tokens/s", "1234"), ("Peak memory", "1.50 GB"), ("Learning rate", "1.00e-4")):
        # .first: the figures come before the job's configuration, which has a "Learning rate" too.
        figure = page.locator("dt", has_text=re.compile(f"^{re.escape(label)}$")).first.locator("xpath=following-sibling::dd[1]")
        expect(figure).to_have_text(value)
    curves = page.locator("path.recharts-line-curve")
    expect(curves).to_have_count(2)  # training and validation
    drawn = [len(re.findall(r"[ML]", d)) for d in curves.evaluate_all("paths => paths.map(p => p.getAttribute('d'))")]
    training = max(drawn)
    # At most about 2,000 (LossChart's limit), plus the last and the steps that carry a validation loss.
    limit = 2_000 + 1 + TRAINING_STEPS // EVAL_EVERY
    assert 1_000 <= training <= limit, f"the training line has {training} points for {TRAINING_STEPS} steps"
    assert min(drawn) == TRAINING_STEPS // EVAL_EVERY  # every validation point is kept
