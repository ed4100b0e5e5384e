"""The Models pages in a real browser against the real hub: registering a model through the form
(the API's answers to a bad and to a taken name shown beside the name first), finding it with the
list's search, and on its page promoting and rolling back an alias through confirmations that show
the move, the alias timeline with who moved it, the as-of view, a move made through the API
appearing live, an edit that lost a race to another writer answered as a conflict instead of
overwriting it, versions registered through the form, and the list's filters, order and pages kept
in the URL."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect
from util import ALICE_KEY, BOB_KEY, api, assert_accessible, screenshot

KEY_STORAGE = "mlxhub-api-key"  # web/src/lib/auth.ts


def sign_in(page: Page, key: str) -> None:
    page.add_init_script(f"localStorage.setItem({json.dumps(KEY_STORAGE)}, {json.dumps(key)})")


def local_input(page: Page, moment: datetime) -> str:
    """`moment` as a datetime-local value in the browser's own time zone (to the second)."""
    return page.evaluate(
        """(iso) => { const d = new Date(iso); const p = (n) => String(n).padStart(2, "0");
        return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`; }""",
        moment.isoformat(),
    )


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_register_search_promote_roll_back_and_the_alias_timeline(page: Page, secured_hub_url: str, model_dir: Path):
    sign_in(page, ALICE_KEY)
    with api(secured_hub_url, ALICE_KEY) as alice:
        assert alice.post("/v1/models", json={"name": "other-model", "description": "not this one"}).status_code == 200

    # Register through the form: a bad name first, answered beside the field.
    page.goto("/models")
    expect(page.get_by_role("heading", level=1, name="Models")).to_be_visible()
    expect(page.get_by_text("1 model")).to_be_visible()
    page.get_by_role("button", name="Register model").first.click()
    dialog = page.get_by_role("dialog")
    name = dialog.get_by_label("Name")
    name.fill("Bad Name!")
    dialog.get_by_label("Base model").fill("org/base-llm")
    dialog.get_by_label("Description").fill("answers support tickets")
    dialog.get_by_role("button", name="Add tag").click()
    dialog.get_by_label("Tag 1 key").fill("team")
    dialog.get_by_label("Tag 1 value").fill("nlp")
    dialog.get_by_role("button", name="Register", exact=True).click()
    expect(name).to_have_attribute("aria-invalid", "true")
    error = dialog.locator("#register-model-name-error")
    expect(error).to_contain_text("'Bad Name!' is not valid")
    expect(name).to_have_attribute("aria-describedby", "register-model-name-error")
    name.fill("other-model")
    dialog.get_by_role("button", name="Register", exact=True).click()
    expect(error).to_contain_text("model 'other-model' already exists")
    expect(name).to_have_attribute("aria-invalid", "true")
    name.fill("support-bot")
    expect(error).to_have_count(0)
    dialog.get_by_role("button", name="Register", exact=True).click()
    expect(page).to_have_url(re.compile(r"/models/support-bot$"))
    expect(page.get_by_role("heading", level=1, name="support-bot")).to_be_visible()
    expect(page.get_by_text("answers support tickets")).to_be_visible()
    expect(page.get_by_text("team=nlp")).to_be_visible()
    with api(secured_hub_url, ALICE_KEY) as alice:
        created = alice.get("/v1/models/support-bot").json()["model"]
    assert created["createdBy"] == "alice" and created["tags"] == {"team": "nlp"}
    assert created["baseModel"] == "org/base-llm"

    # Two versions through the API; the list's search finds the model (and only it), in the URL.
    with api(secured_hub_url, ALICE_KEY) as alice:
        for description in ("first", "second"):
            response = alice.post("/v1/models/support-bot/versions",
                                  json={"artifactPath": str(model_dir), "description": description, "metrics": {"loss": 1.5}})
            assert response.status_code == 200, response.text
    page.goto("/models")
    expect(page.get_by_text("2 models")).to_be_visible()
    page.get_by_label("Search").fill("support")
    expect(page).to_have_url(re.compile(r"[?&]q=support"))
    expect(page.get_by_text("1 model matches")).to_be_visible()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("v2")
    page.reload()
    expect(page.get_by_label("Search")).to_have_value("support")
    expect(rows).to_have_count(1)
    assert_accessible(page, "models list")
    page.get_by_role("link", name="support-bot").click()
    expect(page).to_have_url(re.compile(r"/models/support-bot$"))

    # Promote prod to v1, then to v2, each through a confirmation that shows the move.
    versions = page.get_by_role("region", name=re.compile("Versions")).locator("tbody tr")
    expect(versions).to_have_count(2)
    expect(versions.first).to_contain_text("v2")
    expect(versions.first).to_contain_text("full")
    aliases = page.get_by_role("region", name="Aliases")
    aliases.get_by_role("button", name="Promote").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Alias")).to_have_value("prod")
    dialog.get_by_label("Version").select_option("1")
    expect(dialog.get_by_test_id("alias-move-preview")).to_have_text("prod: not set → v1")
    dialog.get_by_role("button", name="Confirm promotion").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_test_id("alias-row-prod")).to_contain_text("v1")
    time.sleep(2.1)  # the as-of picker has whole seconds: leave one between the moves
    page.get_by_role("button", name="Promote version 2").click()  # the version row's own action
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Version")).to_have_value("2")
    expect(dialog.get_by_test_id("alias-move-preview")).to_have_text("prod: v1 → v2")
    dialog.get_by_role("button", name="Confirm promotion").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_test_id("alias-row-prod")).to_contain_text("v2")

    # Roll back to the version before the last move.
    aliases.get_by_role("button", name="Roll back prod").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_test_id("alias-move-preview")).to_have_text("prod: v2 → v1")
    dialog.get_by_role("button", name="Confirm roll back").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_test_id("alias-row-prod")).to_contain_text("v1")
    with api(secured_hub_url, ALICE_KEY) as alice:
        assert alice.get("/v1/models/support-bot").json()["model"]["aliases"] == {"prod": "1"}
    # The versions table: the alias as a badge on v1's row, who made each version, when, and its metrics.
    cells = versions.nth(1).get_by_role("cell")
    expect(versions.nth(1)).to_contain_text("v1")
    expect(versions.nth(1)).to_contain_text("prod")
    expect(versions.first).not_to_contain_text("prod")
    expect(versions.nth(1)).to_contain_text("loss 1.5")
    expect(versions.nth(1)).to_contain_text("alice")
    expect(cells.locator("time")).to_have_count(1)

    # The timeline: every move, newest first, with who made it.
    moves = page.get_by_test_id("alias-move")
    expect(moves).to_have_count(3)
    expect(moves.nth(0)).to_contain_text(re.compile(r"prod\s*v2\s*→\s*v1"))
    expect(moves.nth(1)).to_contain_text(re.compile(r"prod\s*v1\s*→\s*v2"))
    expect(moves.nth(2)).to_contain_text("set to v1")
    for i in range(3):
        expect(moves.nth(i)).to_contain_text("by alice")

    # A move made elsewhere (bob, through the API) appears without a reload.
    with api(secured_hub_url, BOB_KEY) as bob:
        assert bob.put("/v1/models/support-bot/aliases/staging", json={"version": "2"}).status_code == 200
    expect(moves).to_have_count(4, timeout=10_000)
    expect(moves.nth(0)).to_contain_text("staging")
    expect(moves.nth(0)).to_contain_text("by bob")
    expect(page.get_by_test_id("alias-row-staging")).to_contain_text("v2")

    # As of a moment between the first two moves prod was v1, and staging did not exist yet.
    with api(secured_hub_url, ALICE_KEY) as alice:
        history = alice.get("/v1/models/support-bot/aliases/prod/history").json()["moves"]
    first, second = sorted(parse_time(m["moveTime"]) for m in history)[:2]
    between = first.replace(microsecond=0) + timedelta(seconds=1)
    assert first < between < second
    as_of = page.get_by_label("Aliases as of")
    as_of.fill(local_input(page, between))
    expect(page.get_by_test_id("as-of-prod")).to_contain_text("v1")
    expect(page.get_by_test_id("as-of-staging")).to_contain_text("not set yet")
    as_of.fill(local_input(page, first.replace(microsecond=0) - timedelta(seconds=1)))
    expect(page.get_by_test_id("as-of-prod")).to_contain_text("not set yet")
    as_of.fill(local_input(page, datetime.now(UTC) + timedelta(minutes=1)))
    expect(page.get_by_test_id("as-of-prod")).to_contain_text("v1")
    expect(page.get_by_test_id("as-of-staging")).to_contain_text("v2")

    assert_accessible(page, "model detail")
    screenshot(page, "model-detail", ready="[data-testid=alias-move]", full_page=True)


def test_an_edit_that_lost_a_race_is_a_conflict_not_an_overwrite_then_versions_from_the_form(
    page: Page, hub_url: str, model_dir: Path, tmp_path: Path
):
    with api(hub_url) as http:
        response = http.post("/v1/models", json={"name": "race", "description": "original", "tags": {"stage": "dev"}})
        assert response.status_code == 200, response.text

    page.goto("/models/no-such-model")
    expect(page.get_by_role("alert")).to_have_text('There is no model named "no-such-model".')
    page.goto("/models/race")
    expect(page.get_by_role("heading", level=1, name="race")).to_be_visible()
    page.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog")
    description = dialog.get_by_label("Description")
    expect(description).to_have_value("original")
    expect(dialog.get_by_label("Tag 1 key")).to_have_value("stage")
    description.fill("mine")

    # Someone else changes the model meanwhile.
    with api(hub_url) as http:
        response = http.patch("/v1/models/race", params={"updateMask": "description"}, json={"description": "theirs"})
        assert response.status_code == 200, response.text

    dialog.get_by_role("button", name="Save").click()
    alert = dialog.get_by_role("alert").filter(has_text="Someone else changed this model since you opened it")
    expect(alert).to_be_visible()
    expect(dialog.get_by_test_id("conflict-current-description")).to_have_text("theirs")
    expect(dialog.get_by_role("button", name="Save")).to_be_disabled()
    with api(hub_url) as http:
        assert http.get("/v1/models/race").json()["model"]["description"] == "theirs"

    # Reload takes the current values (and etag); saving then works.
    dialog.get_by_role("button", name="Reload").click()
    expect(description).to_have_value("theirs")
    expect(alert).to_have_count(0)
    description.fill("theirs, and mine")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_text("theirs, and mine")).to_be_visible()
    with api(hub_url) as http:
        assert http.get("/v1/models/race").json()["model"]["description"] == "theirs, and mine"

    # Register a version through the form: a relative path and a metric that is not a number first.
    page.get_by_role("button", name="Register version").click()
    dialog = page.get_by_role("dialog")
    path = dialog.get_by_label("Artifact path")
    path.fill("relative/model")
    dialog.get_by_role("button", name="Add metric").click()
    dialog.get_by_label("Metric 1 key").fill("loss")
    dialog.get_by_label("Metric 1 value").fill("low")
    dialog.get_by_role("button", name="Register version").click()
    expect(dialog.get_by_text('"low" is not a number.')).to_be_visible()
    dialog.get_by_label("Metric 1 value").fill("0.5")
    dialog.get_by_role("button", name="Register version").click()
    expect(path).to_have_attribute("aria-invalid", "true")
    expect(dialog.locator("#register-version-path-error")).to_contain_text("must be absolute")
    path.fill(str(model_dir))
    dialog.get_by_role("button", name="Register version").click()
    expect(dialog).to_have_count(0)
    versions = page.get_by_role("region", name=re.compile("Versions")).locator("tbody tr")
    expect(versions).to_have_count(1)
    expect(versions.first).to_contain_text("loss 0.5")
    with api(hub_url) as http:
        assert http.get("/v1/models/race/versions/1").json()["version"]["metrics"] == {"loss": 0.5}
        assert http.post("/v1/models/race/versions", json={"artifactPath": str(model_dir)}).status_code == 200

    # Versions from the API (a full one, and an adapter on v1) appear by themselves.
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"fine_tune_type": "lora", "num_layers": 2}')
    (adapter / "adapters.safetensors").write_bytes((model_dir / "model.safetensors").read_bytes())
    with api(hub_url) as http:
        response = http.post("/v1/models/race/versions",
                             json={"artifactPath": str(adapter), "lineage": {"parentVersion": "race/versions/1"}})
        assert response.status_code == 200, response.text
    expect(versions).to_have_count(3)
    expect(versions.first).to_contain_text("adapter on base 1")
    expect(versions.nth(1)).to_contain_text("full")

    # Two picked versions open the comparison.
    compare = page.get_by_role("button", name="Compare")
    page.get_by_label("Pick version 1 to compare").check()
    expect(compare).to_be_disabled()
    page.get_by_label("Pick version 2 to compare").check()
    compare.click()
    expect(page).to_have_url(re.compile(r"/models/race/compare\?a=1&b=2$"))


def test_list_filters_sorting_and_paging_live_in_the_url(page: Page, hub_url: str):
    page.goto("/models")
    expect(page.get_by_text("No models yet — register one.")).to_be_visible()
    expect(page.get_by_text("0 models")).to_be_visible()

    with api(hub_url) as http:
        for i in range(27):
            tags = {"team": "nlp" if i % 3 == 0 else "vision"}
            body = {"name": f"m{i:02d}", "baseModel": "org/a" if i < 20 else "org/b", "tags": tags}
            assert http.post("/v1/models", json=body).status_code == 200

    page.goto("/models")
    expect(page.get_by_text("27 models")).to_be_visible()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(25)
    expect(rows.first).to_contain_text("m00")
    # The search stays in view while the table scrolls under it.
    page.mouse.wheel(0, 3000)
    page.wait_for_function("() => window.scrollY > 300")
    expect(page.get_by_label("Search")).to_be_in_viewport()
    page.get_by_role("button", name="Next").click()
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("m25")
    expect(page.get_by_text("Page 2")).to_be_visible()
    page.reload()
    expect(rows).to_have_count(2)
    page.get_by_role("button", name="Previous").click()
    expect(rows).to_have_count(25)
    expect(page.get_by_role("button", name="Previous")).to_be_disabled()

    # Sorted by name ascending at first; its column header turns it around.
    expect(page.get_by_role("columnheader", name=re.compile(r"^Name"))).to_have_attribute("aria-sort", "ascending")
    page.get_by_role("button", name=re.compile(r"^Name")).click()
    expect(page.get_by_role("columnheader", name=re.compile(r"^Name"))).to_have_attribute("aria-sort", "descending")
    expect(page).to_have_url(re.compile(r"order=name\+desc|order=name%20desc"))
    expect(rows.first).to_contain_text("m26")

    # A tag filter and a base model filter narrow it; removing them widens it again.
    page.get_by_label("Tag filter", exact=True).fill("team=nlp")
    page.get_by_label("Tag filter", exact=True).press("Enter")
    expect(page.get_by_text("9 models match")).to_be_visible()
    page.get_by_label("Base model", exact=True).fill("org/b")
    page.get_by_label("Base model", exact=True).press("Enter")
    expect(page.get_by_text("2 models match")).to_be_visible()
    expect(rows.first).to_contain_text("m24")
    page.reload()
    expect(page.get_by_text("2 models match")).to_be_visible()
    page.get_by_role("button", name="Remove tag filter team=nlp").click()
    expect(page.get_by_text("7 models match")).to_be_visible()
    page.get_by_role("button", name="Remove base model filter org/b").click()
    expect(page.get_by_text("27 models")).to_be_visible()
    assert_accessible(page, "models list (full)")
    screenshot(page, "models", ready="tbody tr")
