"""The audit page in a real browser against the real hub: the event log in order with who did what,
filters by event type, principal and time that narrow the rows (and live in the URL), a live-followed
event appearing within a second, an event opened in full with its request and trace ids, the NDJSON
export being exactly the API's filtered events, and a log of thousands of events kept out of the DOM
by virtualization while every event stays reachable."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect
from util import ALICE_KEY, BOB_KEY, api, assert_accessible, screenshot

from mlxhub.v1 import registry_pb2

KEY_STORAGE = "mlxhub-api-key"  # web/src/lib/auth.ts
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def api_events(hub_url: str, key: str | None = None, **query) -> list[dict]:
    with api(hub_url, key) as http:
        response = http.get("/v1/events", params=query)
        assert response.status_code == 200, response.text
        return [json.loads(line)["result"]["event"] for line in response.text.splitlines() if line.strip()]


def count_text(page: Page):
    return page.get_by_test_id("event-count")


def loaded(page: Page, count: str, timeout: float = 10_000) -> None:
    expect(count_text(page)).to_have_text(count, timeout=timeout)
    expect(page.get_by_test_id("event-loading")).to_have_count(0, timeout=timeout)


def positions_shown(page: Page) -> list[int]:
    return [int(p) for p in page.locator("tbody tr[data-position]").evaluate_all(
        "rows => rows.map(r => r.dataset.position)")]


def seed_alias_history(hub_url: str, model_dir: Path) -> None:
    """alice registers alpha and beta, a version of alpha and moves prod to it; bob registers gamma, a
    second version of alpha, and moves prod to it. 7 events, 4 by alice and 3 by bob."""
    with api(hub_url, ALICE_KEY) as alice, api(hub_url, BOB_KEY) as bob:
        for name in ("alpha", "beta"):
            assert alice.post("/v1/models", json={"name": name, "baseModel": "org/base"}).status_code == 200
        assert alice.post("/v1/models/alpha/versions", json={"artifactPath": str(model_dir)}).status_code == 200
        assert alice.put("/v1/models/alpha/aliases/prod", json={"version": "1"}).status_code == 200
        assert bob.post("/v1/models", json={"name": "gamma", "description": "bob's"}).status_code == 200
        assert bob.post("/v1/models/alpha/versions", json={"artifactPath": str(model_dir)},
                        headers={"x-request-id": "audit-e2e-request",
                                 "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}).status_code == 200
        assert bob.put("/v1/models/alpha/aliases/prod", json={"version": "2"}).status_code == 200


def test_the_log_in_order_filters_export_and_one_event_in_full(page: Page, secured_hub_url: str, model_dir: Path):
    seed_alias_history(secured_hub_url, model_dir)
    everything = api_events(secured_hub_url, ALICE_KEY)
    assert [e["type"] for e in everything] == ["ModelRegistered", "ModelRegistered", "ModelVersionCreated",
                                              "AliasMoved", "ModelRegistered", "ModelVersionCreated", "AliasMoved"]
    page.add_init_script(f"localStorage.setItem({json.dumps(KEY_STORAGE)}, {json.dumps(ALICE_KEY)})")
    page.goto("/audit")
    expect(page.get_by_role("heading", level=1, name="Audit")).to_be_visible()
    loaded(page, "7 events")

    # Every event, in log order, with its principal, type and a link to its resource.
    assert positions_shown(page) == [int(e["position"]) for e in everything]
    rows = page.locator("tbody tr[data-position]")
    assert rows.locator("td:nth-child(5)").all_inner_texts() == [e["type"] for e in everything]
    assert rows.locator("td:nth-child(3)").all_inner_texts() == ["alice"] * 4 + ["bob"] * 3
    last_move = page.locator(f'tr[data-position="{everything[-1]["position"]}"]')
    expect(last_move.get_by_role("link", name="model/alpha", exact=True)).to_have_attribute("href", "/models/alpha")
    expect(last_move.get_by_role("link", name="model/alpha v2")).to_have_attribute("href", "/models/alpha/versions/2")
    expect(last_move).to_contain_text("prod → v2 (was v1)")
    expect(last_move.locator("time")).to_have_attribute("title", everything[-1]["time"])

    # An event type narrows the rows (and goes into the URL); a principal narrows them further.
    page.get_by_role("button", name="AliasMoved", exact=True).click()
    loaded(page, "2 events")
    expect(page).to_have_url(re.compile(r"[?&]type=AliasMoved"))
    expect(page.get_by_role("button", name="AliasMoved", exact=True)).to_have_attribute("aria-pressed", "true")
    page.get_by_label("Principal").fill("bob")
    page.get_by_label("Principal").press("Enter")
    loaded(page, "1 event")
    assert positions_shown(page) == [int(everything[-1]["position"])]
    expect(page).to_have_url(re.compile(r"principal=bob"))

    # A filter the API refuses says why, where the rows would be.
    page.get_by_label("Aggregate").fill("not-an-aggregate")
    page.get_by_label("Aggregate").press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("model/<name> or dataset/<name>")
    expect(count_text(page)).to_have_text("0 events")
    page.get_by_label("Aggregate").fill("")
    page.get_by_role("button", name="Apply filters").click()
    loaded(page, "1 event")
    expect(page.get_by_role("alert")).to_have_count(0)

    # The filters survive a reload (they live in the URL).
    page.reload()
    loaded(page, "1 event")
    expect(page.get_by_label("Principal")).to_have_value("bob")

    # A time range: from an hour ahead matches nothing; from an hour ago matches all of bob's.
    page.get_by_role("button", name="AliasMoved", exact=True).click()
    loaded(page, "3 events")
    ahead = (datetime.now() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    page.get_by_label("From (local time)").fill(ahead)
    page.get_by_role("button", name="Apply filters").click()
    loaded(page, "0 events")
    expect(page.get_by_text("No events match these filters.")).to_be_visible()
    page.get_by_label("From (local time)").fill((datetime.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("To (local time)").fill(ahead)
    page.get_by_role("button", name="Apply filters").click()
    loaded(page, "3 events")
    assert positions_shown(page) == [int(e["position"]) for e in everything if e["metadata"]["principal"] == "bob"]

    # The export is exactly the API's events for these filters, one JSON object per line.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export NDJSON").click()
    download = download_info.value
    assert re.fullmatch(r"mlxhub-events-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ\.ndjson", download.suggested_filename)
    lines = Path(download.path()).read_text().splitlines()
    assert len(lines) == 3
    assert [json.loads(line) for line in lines] == api_events(secured_hub_url, BOB_KEY, principal="bob")

    # One event in full: ids (copyable), data, and links to the model and the version.
    version_event = next(e for e in everything if e["metadata"].get("requestId") == "audit-e2e-request")
    assert version_event["type"] == "ModelVersionCreated"
    assert version_event["metadata"]["traceId"] == TRACE_ID
    page.get_by_role("button", name="Clear").click()
    loaded(page, "7 events")
    expect(page).to_have_url(re.compile(r"/audit$"))
    # An aggregate narrows the log to one model's events (alpha: registered, two versions, two moves).
    page.get_by_label("Aggregate").fill("model/alpha")
    page.get_by_label("Aggregate").press("Enter")
    loaded(page, "5 events")
    assert positions_shown(page) == [int(e["position"]) for e in everything if e["aggregate"] == "model/alpha"]
    page.get_by_role("button", name="Clear").click()
    loaded(page, "7 events")
    trigger = page.get_by_role("button", name=f"Show event {version_event['position']}", exact=True)
    expect(trigger).to_have_attribute("aria-expanded", "false")
    trigger.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading", name=re.compile("ModelVersionCreated"))).to_be_visible()
    expect(dialog).to_contain_text("audit-e2e-request")
    expect(dialog).to_contain_text(TRACE_ID)
    expect(dialog).to_contain_text(version_event["aggregateId"])
    expect(dialog.get_by_role("button", name="Copy Request ID")).to_be_visible()
    expect(dialog.get_by_role("button", name="Copy Trace ID")).to_be_visible()
    expect(dialog.get_by_role("link", name="v2")).to_have_attribute("href", "/models/alpha/versions/2")
    data = json.loads(dialog.get_by_label("Event data as JSON").inner_text())
    assert data == version_event["data"]
    expect(page.locator(f'tr[data-position="{version_event["position"]}"] button')).to_have_attribute(
        "aria-expanded", "true")
    assert_accessible(page, "audit with an event open")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(trigger).to_be_focused()  # the focus is back on the row's button
    assert_accessible(page, "audit")
    screenshot(page, "audit", ready="tbody tr[data-position]")


def test_follow_live_shows_a_new_event_within_a_second(page: Page, hub_url: str):
    with api(hub_url) as http:
        assert http.post("/v1/models", json={"name": "before"}).status_code == 200
    page.goto("/audit")
    loaded(page, "1 event")
    follow = page.get_by_role("switch", name="Follow live")
    follow.click()
    expect(follow).to_be_checked()
    expect(page).to_have_url(re.compile(r"follow=1"))
    expect(page.get_by_test_id("follow-state")).to_have_text("live")
    with api(hub_url) as http:
        assert http.post("/v1/models", json={"name": "live-one"}).status_code == 200
        created = time.monotonic()
    row = page.locator("tbody tr[data-position]", has_text="model/live-one")
    expect(row).to_be_visible(timeout=1_000)
    assert time.monotonic() - created < 1.5  # the assertion's own polling included
    expect(row).to_contain_text("anonymous")
    loaded(page, "2 events")
    # Off: no more live rows.
    follow.click()
    expect(follow).not_to_be_checked()
    expect(page.get_by_test_id("follow-state")).to_have_count(0)
    with api(hub_url) as http:
        assert http.post("/v1/models", json={"name": "unseen"}).status_code == 200
    page.wait_for_timeout(700)
    expect(page.locator("tbody tr[data-position]", has_text="model/unseen")).to_have_count(0)
    expect(count_text(page)).to_have_text("2 events")


SEEDED = 3_000


def test_thousands_of_events_keep_the_dom_small(page: Page, hub_url: str, registry_stub):
    def create(i: int) -> None:
        registry_stub.CreateModel(registry_pb2.CreateModelRequest(name=f"bulk-{i:05d}", base_model="org/base"))

    with ThreadPoolExecutor(max_workers=8) as pool:  # straight to the registry over gRPC: seconds, not minutes
        list(pool.map(create, range(SEEDED)))
    seeded = api_events(hub_url)
    assert len(seeded) == SEEDED
    first_position, last_position = seeded[0]["position"], seeded[-1]["position"]

    page.goto("/audit")
    loaded(page, f"{SEEDED:,} events", timeout=30_000)
    table = page.get_by_role("table")
    expect(table).to_have_attribute("aria-rowcount", str(SEEDED + 1))
    rendered = page.locator("tbody tr[data-position]").count()
    assert 0 < rendered < 100, f"{rendered} rows in the DOM for {SEEDED} events"

    page.get_by_role("region", name="Event log").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(page.locator(f'tr[data-position="{last_position}"]')).to_be_visible()
    assert page.locator("tbody tr[data-position]").count() < 100
    page.get_by_role("button", name="First").click()
    expect(page.locator("tbody tr[data-position]").first).to_have_attribute("data-position", first_position)

    # Following live: a new event at the end is scrolled to only when the user is at the bottom.
    page.get_by_role("switch", name="Follow live").click()
    expect(page.get_by_test_id("follow-state")).to_have_text("live")
    create(SEEDED)
    loaded(page, f"{SEEDED + 1:,} events")
    expect(page.locator("tbody tr[data-position]", has_text=f"model/bulk-{SEEDED:05d}")).to_have_count(0)
    page.get_by_role("button", name="Latest").click()
    expect(page.locator("tbody tr[data-position]", has_text=f"model/bulk-{SEEDED:05d}")).to_be_visible()
    create(SEEDED + 1)
    expect(page.locator("tbody tr[data-position]", has_text=f"model/bulk-{SEEDED + 1:05d}")).to_be_visible()
    assert page.locator("tbody tr[data-position]").count() < 100

