"""The dashboard's shell and sign-in in a real browser against the real hub: the API key prompt
(a wrong key refused beside the field, the right one kept across a reload, sign-out asking again,
every API call carrying the key), and on an open hub the top bar (health pills, theme, account),
the command palette and the navigation, with axe scans in both themes."""

from __future__ import annotations

import re

from playwright.sync_api import Page, Request, expect
from util import ALICE_KEY, BOB_KEY, THEME_KEY, api, assert_accessible

KEY_STORAGE = "mlxhub-api-key"  # web/src/lib/auth.ts
NAV_LINKS = ("Overview", "Models", "Datasets", "Training", "Playground", "Serving", "Audit")


def _sign_in_dialog(page: Page):
    return page.get_by_role("dialog", name="Sign in to MLX Hub")


def _stored_key(page: Page) -> str | None:
    return page.evaluate("(k) => localStorage.getItem(k)", KEY_STORAGE)


def test_sign_in_rejects_a_wrong_key_keeps_the_right_one_and_sign_out_asks_again(page: Page, secured_hub_url: str):
    page.goto("/models")
    dialog = _sign_in_dialog(page)
    expect(dialog).to_be_visible()
    # It cannot be dismissed without a key.
    page.keyboard.press("Escape")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Close")).to_have_count(0)
    page.keyboard.press("Control+k")  # nothing to search without a key
    expect(page.get_by_role("dialog", name="Command palette")).to_have_count(0)

    key_field = dialog.get_by_label("API key")
    expect(key_field).to_have_attribute("type", "password")
    key_field.fill("not-a-key")
    dialog.get_by_role("button", name="Sign in").click()
    expect(dialog.get_by_text("The hub did not accept this key")).to_be_visible()
    expect(key_field).to_have_attribute("aria-invalid", "true")
    assert _stored_key(page) is None

    # The right key: the dialog closes, every page call and the top bar use it.
    api_requests: list[Request] = []
    page.on("request", lambda r: api_requests.append(r) if "/v1/" in r.url else None)
    key_field.fill(ALICE_KEY)
    with page.expect_request(lambda r: "/v1/whoami" in r.url and r.headers.get("authorization") == f"Bearer {ALICE_KEY}"):
        dialog.get_by_role("button", name="Sign in").click()
    expect(dialog).to_be_hidden()
    banner = page.get_by_role("banner")
    expect(banner.get_by_role("button", name="Account: alice")).to_be_visible()
    expect(banner.get_by_text("alice", exact=True)).to_be_visible()
    assert _stored_key(page) == ALICE_KEY
    expect(page.get_by_role("list", name="Hub health")).to_be_visible()

    # The Models page refetched with the key (it had been refused before).
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    # From the key's first use (the sign-in's own check) on, every call carries it; a call the Models page
    # sent before (its code can load late on a busy machine) was refused and is not counted.
    keyed = [r.headers.get("authorization") == f"Bearer {ALICE_KEY}" for r in api_requests]
    assert any(keyed), "no API call with the key after signing in"
    since_key = api_requests[keyed.index(True):]
    assert len(since_key) > 1, "no API call after the sign-in's own check"
    unkeyed = [r.url for r in since_key if r.headers.get("authorization") != f"Bearer {ALICE_KEY}"]
    assert not unkeyed, f"API calls without the key: {unkeyed}"

    # Streams carry it too (fetch, not EventSource, so they can): the Overview follows the event log.
    with page.expect_request(lambda r: "/v1/events" in r.url) as stream:
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Overview").click()
    assert stream.value.headers.get("authorization") == f"Bearer {ALICE_KEY}"

    # A reload keeps the session.
    with page.expect_request(lambda r: "/v1/" in r.url) as first_call:
        page.reload()
    assert first_call.value.headers.get("authorization") == f"Bearer {ALICE_KEY}"
    expect(banner.get_by_role("button", name="Account: alice")).to_be_visible()
    expect(_sign_in_dialog(page)).to_have_count(0)

    # Sign out forgets the key and asks again (with no complaint about the old one).
    banner.get_by_role("button", name="Account: alice").click()
    page.get_by_role("menuitem", name="Sign out").click()
    expect(dialog).to_be_visible()
    assert _stored_key(page) is None
    expect(dialog.get_by_role("alert")).to_have_count(0)
    expect(banner.get_by_role("button", name="Account: alice")).to_have_count(0)
    assert_accessible(page, "sign-in dialog")

    # Another key signs in as another principal, and the page is fetched again with it.
    with page.expect_request(lambda r: "/v1/registry/stats" in r.url
                             and r.headers.get("authorization") == f"Bearer {BOB_KEY}"):
        dialog.get_by_label("API key").fill(BOB_KEY)
        dialog.get_by_role("button", name="Sign in").click()
    expect(banner.get_by_role("button", name="Account: bob")).to_be_visible()


def test_a_saved_key_the_hub_refuses_asks_again_saying_why(page: Page, secured_hub_url: str):
    page.goto("/")
    page.evaluate("([k, v]) => localStorage.setItem(k, v)", [KEY_STORAGE, "revoked-key"])
    page.reload()
    dialog = _sign_in_dialog(page)
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("alert")).to_contain_text("did not accept the saved API key")
    dialog.get_by_label("API key").fill(ALICE_KEY)
    dialog.get_by_role("button", name="Sign in").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("banner").get_by_role("button", name="Account: alice")).to_be_visible()


def test_open_hub_shows_no_prompt_health_pills_and_every_page_link(page: Page, hub_url: str):
    page.goto("/")
    health = page.get_by_role("list", name="Hub health")
    expect(health).to_be_visible()
    for name in ("postgres", "nats", "followers", "mlflow", "model store", "memory"):
        expect(health.get_by_role("button", name=re.compile(rf"^{name}: (healthy|slow|failing)$"))).to_be_visible()
    postgres = health.get_by_role("button", name=re.compile(r"^postgres: "))
    expect(postgres).to_have_attribute("data-level", re.compile("ok|slow"))
    postgres.click()
    detail = page.get_by_role("dialog")
    expect(detail.get_by_text("Latency")).to_be_visible()
    expect(detail).to_contain_text("connected")
    page.keyboard.press("Escape")

    # No keys on this hub: no prompt, no account menu.
    expect(_sign_in_dialog(page)).to_have_count(0)
    expect(page.get_by_test_id("user-menu")).to_have_count(0)

    nav = page.get_by_role("navigation", name="Main")
    for label in NAV_LINKS:
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(nav.get_by_role("link")).to_have_count(len(NAV_LINKS))
    nav.get_by_role("link", name="Datasets").click()
    expect(page).to_have_url(re.compile(r"/datasets$"))
    expect(nav.get_by_role("link", name="Datasets")).to_have_attribute("aria-current", "page")


def test_narrow_screens_fold_the_sidebar_into_a_menu(page: Page, hub_url: str):
    page.set_viewport_size({"width": 420, "height": 800})
    page.goto("/")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    page.get_by_role("button", name="Open navigation").click()
    sheet = page.get_by_role("dialog")
    sheet.get_by_role("link", name="Models").click()
    expect(page).to_have_url(re.compile(r"/models$"))
    expect(sheet).to_be_hidden()


def test_theme_toggle_switches_and_keeps_the_dark_class(page: Page, hub_url: str):
    page.emulate_media(color_scheme="light")
    page.goto("/")
    html = page.locator("html")
    expect(page.get_by_role("list", name="Hub health")).to_be_visible()
    expect(html).not_to_have_class(re.compile(r"\bdark\b"))
    assert_accessible(page, "shell (light)")

    page.get_by_role("button", name=re.compile("^Theme")).click()
    page.get_by_role("menuitemradio", name="Dark").click()
    expect(html).to_have_class(re.compile(r"\bdark\b"))
    assert page.evaluate("(k) => localStorage.getItem(k)", THEME_KEY) == "dark"
    page.reload()
    expect(html).to_have_class(re.compile(r"\bdark\b"))
    expect(page.get_by_role("list", name="Hub health")).to_be_visible()
    assert_accessible(page, "shell (dark)")

    page.get_by_role("button", name="Theme: Dark").click()
    page.get_by_role("menuitemradio", name="Light").click()
    expect(html).not_to_have_class(re.compile(r"\bdark\b"))

    # "System" follows the operating system's setting as it changes.
    page.get_by_role("button", name="Theme: Light").click()
    page.get_by_role("menuitemradio", name="System").click()
    assert page.evaluate("(k) => localStorage.getItem(k)", THEME_KEY) == "system"
    expect(html).not_to_have_class(re.compile(r"\bdark\b"))
    page.emulate_media(color_scheme="dark")
    expect(html).to_have_class(re.compile(r"\bdark\b"))
    page.emulate_media(color_scheme="light")
    expect(html).not_to_have_class(re.compile(r"\bdark\b"))


def test_command_palette_finds_a_model_and_a_version(page: Page, hub_url: str, model_dir):
    with api(hub_url) as http:
        assert http.post("/v1/models", json={"name": "palette-demo", "description": "found by search"}).status_code == 200
        assert http.post("/v1/models", json={"name": "other-model"}).status_code == 200
        for _ in range(2):
            assert http.post("/v1/models/palette-demo/versions", json={"artifactPath": str(model_dir)}).status_code == 200
        assert http.put("/v1/models/palette-demo/aliases/prod", json={"version": "1"}).status_code == 200

    page.goto("/")
    expect(page.get_by_role("list", name="Hub health")).to_be_visible()
    page.keyboard.press("Control+k")
    palette = page.get_by_role("dialog", name="Command palette")
    expect(palette).to_be_visible()
    search = palette.get_by_label("Search the hub")
    expect(search).to_be_focused()
    search.fill("palette-d")
    models = palette.get_by_role("group", name="Models", exact=True)
    expect(models.get_by_role("option", name=re.compile("palette-demo"))).to_be_visible()
    expect(models.get_by_role("option", name=re.compile("other-model"))).to_have_count(0)
    expect(palette.get_by_role("option").first).to_contain_text("palette-demo")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/models/palette-demo$"))
    expect(palette).to_be_hidden()

    # The top bar's button opens it too; an alias resolves to its version.
    page.get_by_test_id("open-palette").click()
    expect(palette).to_be_visible()
    palette.get_by_label("Search the hub").fill("palette-demo@prod")
    resolved = palette.get_by_role("group", name="Version", exact=True)
    expect(resolved.get_by_role("option", name="palette-demo/versions/1")).to_be_visible()
    expect(palette.get_by_role("group", name="Versions of palette-demo", exact=True).get_by_role("option")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/models/palette-demo/versions/1$"))

    # "name N" names a version; pages are found by name.
    page.keyboard.press("Control+k")
    palette.get_by_label("Search the hub").fill("palette-demo 2")
    expect(palette.get_by_role("group", name="Version", exact=True).get_by_role("option")).to_contain_text("palette-demo/versions/2")
    palette.get_by_label("Search the hub").fill("audi")
    expect(palette.get_by_role("group", name="Pages", exact=True).get_by_role("option", name=re.compile("Audit"))).to_be_visible()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/audit$"))


def test_command_palette_finds_datasets_and_training_jobs(page: Page, hub_url: str, chat_dataset, tiny_model):
    with api(hub_url) as http:
        assert http.post("/v1/models", json={"name": "tuned"}).status_code == 200
        assert http.post("/v1/models/tuned/versions", json={"artifactPath": str(tiny_model)}).status_code == 200
        assert http.post("/v1/datasets", json={"name": "chat-turns", "path": str(chat_dataset)}).status_code == 200
        # The trainer here has no workers: the job stays queued.
        created = http.post("/v1/training/jobs", json={"model": "tuned/versions/1", "dataset": "chat-turns",
                                                       "config": {"iters": 1, "batchSize": 1}})
        assert created.status_code == 200, created.text
        job_id = created.json()["job"]["id"]

    page.goto("/")
    expect(page.get_by_role("list", name="Hub health")).to_be_visible()  # the app (and its shortcut) is up
    page.keyboard.press("Control+k")
    palette = page.get_by_role("dialog", name="Command palette")
    expect(palette).to_be_visible()
    search = palette.get_by_label("Search the hub")
    search.fill("chat-t")
    expect(palette.get_by_role("group", name="Datasets", exact=True).get_by_role("option", name="chat-turns")).to_be_visible()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/datasets/chat-turns$"))

    page.keyboard.press("Control+k")
    search.fill(job_id[:8])
    jobs = palette.get_by_role("group", name="Training jobs", exact=True)
    expect(jobs.get_by_role("option")).to_have_count(1)
    expect(jobs.get_by_role("option")).to_contain_text("queued")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/training/{re.escape(job_id)}$"))

    # A job is found by its model's name too.
    page.keyboard.press("Control+k")
    search.fill("tuned")
    expect(palette.get_by_role("group", name="Training jobs", exact=True).get_by_role("option")).to_have_count(1)
    expect(palette.get_by_role("group", name="Models", exact=True).get_by_role("option", name=re.compile("tuned"))).to_be_visible()
