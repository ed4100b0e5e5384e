"""The Overview in a real browser on the real stack: its tiles count what was seeded (and say
"inference not running" when there is no inference service), and its activity feed shows an event
made through the API within a second, linked to its resource, with the counts refreshed."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect
from util import ALICE_KEY, BOB_KEY, api, assert_accessible, screenshot


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def count(page: Page, tile: str):
    return page.get_by_test_id(tile).get_by_test_id("count")


def test_tiles_count_the_seeded_hub_and_the_feed_is_live(page: Page, hub_url: str, chat_dataset: Path,
                                                         tiny_model: Path, model_dir: Path):
    with api(hub_url) as http:
        for name in ("alpha", "beta"):
            ok(http.post("/v1/models", json={"name": name, "description": f"{name} model"}))
        ok(http.post("/v1/models/alpha/versions", json={"artifactPath": str(tiny_model)}))  # trainable
        ok(http.post("/v1/models/alpha/versions", json={"artifactPath": str(model_dir)}))
        ok(http.put("/v1/models/alpha/aliases/prod", json={"version": "2"}))
        ok(http.post("/v1/datasets", json={"name": "chat", "path": str(chat_dataset)}))
        # The trainer here has no workers: the job stays queued.
        ok(http.post("/v1/training/jobs", json={"model": "alpha/versions/1", "dataset": "chat",
                                                "config": {"iters": 1, "batchSize": 1}}))

    page.goto("/")
    expect(page.get_by_role("heading", level=1, name="Overview")).to_be_visible()
    expect(count(page, "tile-models")).to_have_text("2")
    expect(count(page, "tile-versions")).to_have_text("2")
    expect(page.get_by_test_id("tile-versions")).to_contain_text("1 alias")
    expect(count(page, "tile-datasets")).to_have_text("1")
    expect(page.get_by_test_id("jobs-queued").get_by_test_id("count")).to_have_text("1")
    for state in ("running", "succeeded", "failed", "cancelled"):
        expect(page.get_by_test_id(f"jobs-{state}").get_by_test_id("count")).to_have_text("0")
    expect(page.get_by_test_id("tile-loaded")).to_contain_text("inference not running")
    expect(page.get_by_test_id("tile-datasets")).to_have_attribute("href", "/datasets")
    expect(page.get_by_test_id("tile-models")).to_have_attribute("href", "/models")
    expect(page.get_by_test_id("tile-training")).to_have_attribute("href", "/training")

    feed = page.get_by_test_id("activity-feed")
    items = feed.get_by_role("listitem")
    # The seeded events, newest on top, each linked to its resource.
    expect(items.first).to_contain_text("anonymous registered dataset chat")
    alias = items.filter(has_text="moved alias prod of alpha to v2")
    expect(alias.get_by_role("link", name="alpha", exact=True)).to_have_attribute("href", "/models/alpha")
    version = items.filter(has_text="created version alpha v1")
    expect(version.get_by_role("link", name="alpha v1")).to_have_attribute("href", "/models/alpha/versions/1")
    expect(items.filter(has_text="created model beta")).to_have_count(1)
    time = items.first.locator("time")
    expect(time).to_have_attribute("title", re.compile(r"\d{4}-\d\d-\d\dT"))
    expect(page.get_by_test_id("feed-state")).to_have_text("Live")

    with api(hub_url) as http:
        ok(http.post("/v1/models", json={"name": "gamma"}))
    entry = items.filter(has_text="created model gamma")
    expect(entry).to_be_visible(timeout=1000)
    expect(items.first).to_contain_text("created model gamma")
    link = entry.get_by_role("link", name="gamma")
    expect(link).to_have_attribute("href", "/models/gamma")
    expect(count(page, "tile-models")).to_have_text("3")  # the counts follow the feed

    assert_accessible(page, "overview")
    screenshot(page, "overview", ready="[data-testid=activity-feed]")

    page.get_by_test_id("activity-feed").get_by_role("link", name="gamma").click()
    expect(page).to_have_url(re.compile(r"/models/gamma$"))


def test_an_empty_hub_says_so(page: Page, hub_url: str):
    page.goto("/")
    expect(count(page, "tile-models")).to_have_text("0")
    expect(page.get_by_text("No events yet — register a model or dataset and it shows up here.")).to_be_visible()
    with api(hub_url) as http:
        ok(http.post("/v1/models", json={"name": "first"}))
    expect(page.get_by_test_id("activity-feed").get_by_role("listitem")).to_have_count(1, timeout=1000)
    expect(count(page, "tile-models")).to_have_text("1")
    assert_accessible(page, "overview (empty)")


def test_with_api_keys_the_feed_names_who_did_it(page: Page, secured_hub_url: str):
    with api(secured_hub_url, ALICE_KEY) as alice:
        ok(alice.post("/v1/models", json={"name": "alices"}))
    page.add_init_script(f"localStorage.setItem('mlxhub-api-key', {ALICE_KEY!r})")
    page.goto("/")
    items = page.get_by_test_id("activity-feed").get_by_role("listitem")
    expect(items.first).to_contain_text("alice created model alices")
    expect(page.get_by_test_id("feed-state")).to_have_text("Live")
    with api(secured_hub_url, BOB_KEY) as bob:
        ok(bob.post("/v1/models", json={"name": "bobs"}))
    expect(items.first).to_contain_text("bob created model bobs", timeout=1000)
    expect(count(page, "tile-models")).to_have_text("2")
