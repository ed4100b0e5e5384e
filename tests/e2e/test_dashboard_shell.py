"""The dashboard's shell in a real browser, served by the real gateway: it loads at the root and
at a deep link (the gateway answers index.html, the client routes), with its main navigation,
without throwing, and with no serious accessibility problem."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from util import ALICE_KEY, api, assert_accessible


def test_the_app_loads_at_the_root(page: Page, hub_url: str):
    response = page.goto(hub_url + "/")
    assert response is not None and response.status == 200
    assert response.headers["cache-control"] == "no-cache"
    expect(page).to_have_title(re.compile("MLX Hub"))
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Models")).to_be_visible()
    assert_accessible(page, "shell")


def test_a_deep_link_loads_the_app_and_navigation_stays_in_it(page: Page, hub_url: str):
    response = page.goto(hub_url + "/models/demo/versions/2")
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    expect(page.locator("nav").get_by_role("link", name="Models").first).to_be_visible()
    assets = []
    page.on("response", lambda r: assets.append(r) if "/assets/" in r.url else None)
    page.locator("nav").get_by_role("link", name="Models").first.click()
    expect(page).to_have_url(hub_url + "/models")
    assert all(r.status in (200, 304) for r in assets), [(r.url, r.status) for r in assets]


def test_the_api_beside_the_app_is_untouched(hub_url: str):
    with api(hub_url) as http:
        assert http.get("/v1/models").headers["content-type"].startswith("application/json")
        missing = http.get("/v1/no-such-thing")
        assert missing.status_code == 404 and missing.json()["code"] == 5


def test_with_api_keys_the_app_still_loads_and_the_api_wants_a_key(page: Page, secured_hub_url: str):
    response = page.goto(secured_hub_url + "/")
    assert response is not None and response.status == 200  # the app itself needs no key: it asks for one
    dialog = page.get_by_role("dialog", name=re.compile("Sign in"))
    dialog.get_by_label("API key").fill(ALICE_KEY)
    dialog.get_by_role("button", name="Sign in").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("nav").get_by_role("link", name="Models").first).to_be_visible()
    with api(secured_hub_url) as anonymous:
        assert anonymous.get("/v1/models").status_code == 401


def test_an_unknown_address_is_the_apps_own_not_found_page(page: Page, hub_url: str):
    response = page.goto(hub_url + "/no/such/page")
    assert response is not None and response.status == 200  # a client route: the app answers it
    expect(page.get_by_role("heading", level=1, name="Page not found")).to_be_visible()
    page.get_by_role("link", name="Go to the overview").click()
    expect(page).to_have_url(hub_url + "/")
    page.go_back()
    expect(page.get_by_role("heading", level=1, name="Page not found")).to_be_visible()
    assert_accessible(page, "not found")
