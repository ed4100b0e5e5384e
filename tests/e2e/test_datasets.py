"""The Datasets pages in a real browser on the real stack: registering through the form (the API's
field violation shown beside the path field first), the list, search, and a dataset's page with its
hash, record count, versions trained on it and a preview of its chat turns."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from playwright.sync_api import Page, expect
from util import api, assert_accessible, screenshot


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def test_register_a_dataset_through_the_form_and_open_it(page: Page, hub_url: str, chat_dataset: Path,
                                                         model_dir: Path, tmp_path: Path):
    outside = tmp_path / "outside.jsonl"
    outside.write_text(chat_dataset.read_text())

    page.goto("/datasets")
    expect(page.get_by_role("heading", level=1, name="Datasets")).to_be_visible()
    expect(page.get_by_text("No datasets yet — register one")).to_be_visible()
    assert_accessible(page, "datasets (empty)")

    page.get_by_role("button", name="Register dataset").click()
    dialog = page.get_by_role("dialog", name="Register dataset")
    dialog.get_by_label("Name").fill("support-chat")
    path_field = dialog.get_by_label("Path")
    path_field.fill(str(outside))
    dialog.get_by_label("Description").fill("two short chats")
    dialog.get_by_role("button", name="Register", exact=True).click()

    # The registry refuses a file outside its data roots; the message sits beside the path field.
    expect(path_field).to_have_attribute("aria-invalid", "true")
    expect(path_field).to_have_accessible_description(re.compile("outside the data roots"))
    expect(dialog.get_by_text(re.compile("lies outside the data roots"))).to_be_visible()
    expect(dialog.get_by_label("Name")).not_to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "register dataset (error)")

    path_field.fill(str(chat_dataset))
    dialog.get_by_role("button", name="Register", exact=True).click()
    expect(dialog).to_be_hidden()

    sha = hashlib.sha256(chat_dataset.read_bytes()).hexdigest()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="support-chat"))
    expect(row).to_be_visible()
    expect(row).to_contain_text("chat")
    expect(row).to_contain_text(sha[:12])
    expect(row.get_by_role("cell").nth(2)).to_have_text("2")  # records
    expect(page.get_by_text("1 dataset", exact=True)).to_be_visible()
    screenshot(page, "datasets", ready="table")

    # A version whose lineage names the dataset, seeded through the API.
    with api(hub_url) as http:
        ok(http.post("/v1/models", json={"name": "helper", "description": "trained on support-chat"}))
        ok(http.post("/v1/models/helper/versions",
                     json={"artifactPath": str(model_dir), "lineage": {"dataset": "support-chat"}}))

    row.get_by_role("link", name="support-chat").click()
    expect(page).to_have_url(re.compile(r"/datasets/support-chat$"))
    expect(page.get_by_role("heading", level=1, name="support-chat")).to_be_visible()
    expect(page.get_by_test_id("dataset-sha256")).to_have_text(sha)
    expect(page.get_by_test_id("dataset-records")).to_have_text("2")
    expect(page.get_by_text("two short chats")).to_be_visible()
    expect(page.get_by_text(str(chat_dataset.resolve()), exact=True)).to_be_visible()

    trained = page.get_by_role("link", name="helper v1")
    expect(trained).to_have_attribute("href", "/models/helper/versions/1")

    first = page.get_by_role("listitem", name="Record 1")
    expect(first.get_by_text("User", exact=True)).to_be_visible()
    expect(first.get_by_text("What is 2+2?")).to_be_visible()
    expect(first.get_by_text("Assistant", exact=True)).to_be_visible()
    second = page.get_by_role("listitem", name="Record 2")
    expect(second.get_by_text("Capital of France?")).to_be_visible()
    expect(second.get_by_text("Paris", exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile("^Truncated"))).to_have_count(0)
    assert_accessible(page, "dataset detail")
    screenshot(page, "dataset-detail", ready="[aria-label='Record 1']", full_page=True)

    trained.click()
    expect(page).to_have_url(re.compile(r"/models/helper/versions/1$"))


def test_a_taken_name_shows_beside_the_name_and_search_narrows_the_list(page: Page, hub_url: str,
                                                                        chat_dataset: Path, hub_home: Path):
    text = hub_home / "datasets" / "notes.jsonl"
    text.write_text('{"text": "' + "long line " * 200 + '"}\n{"text": "short"}\n')
    completions = hub_home / "datasets" / "qa.jsonl"
    completions.write_text('{"prompt": "Q: sky?", "completion": "blue"}\n')
    with api(hub_url) as http:
        ok(http.post("/v1/datasets", json={"name": "chat", "path": str(chat_dataset)}))
        ok(http.post("/v1/datasets", json={"name": "notes", "path": str(text), "description": "plain text"}))
        ok(http.post("/v1/datasets", json={"name": "qa", "path": str(completions), "description": "questions"}))
    # The file changed after it was registered: the preview shows what it holds now, bad lines too.
    with completions.open("a") as file:
        file.write("not json at all\n")

    page.goto("/datasets")
    expect(page.get_by_text("3 datasets", exact=True)).to_be_visible()
    page.get_by_label("Search", exact=True).fill("plain")
    expect(page.get_by_role("link", name="notes")).to_be_visible()
    expect(page.get_by_role("link", name="chat", exact=True)).to_have_count(0)
    expect(page).to_have_url(re.compile(r"\?q=plain"))
    page.get_by_label("Search", exact=True).fill("nothing-like-this")
    expect(page.get_by_text("No datasets match “nothing-like-this”.")).to_be_visible()
    page.get_by_label("Search", exact=True).fill("")
    page.get_by_label("Sort by").select_option(label="Name A–Z")
    links = page.get_by_role("table").get_by_role("link")
    expect(links).to_have_text(["chat", "notes", "qa"])
    page.get_by_label("Sort by").select_option(label="Name Z–A")
    expect(links).to_have_text(["qa", "notes", "chat"])

    page.get_by_role("button", name="Register dataset").click()
    dialog = page.get_by_role("dialog", name="Register dataset")
    dialog.get_by_label("Name").fill("chat")
    dialog.get_by_label("Path").fill(str(chat_dataset))
    dialog.get_by_role("button", name="Register", exact=True).click()
    expect(dialog.get_by_label("Name")).to_have_attribute("aria-invalid", "true")
    expect(dialog.get_by_label("Name")).to_have_accessible_description(re.compile("already exists"))
    page.keyboard.press("Escape")

    # A text dataset's preview: long text collapsed behind "Show more".
    page.goto("/datasets/notes")
    first = page.get_by_role("listitem", name="Record 1")
    expect(first.get_by_text("Text", exact=True)).to_be_visible()
    more = first.get_by_role("button", name=re.compile("Show more"))
    expect(more).to_have_attribute("aria-expanded", "false")
    more.click()
    expect(first.get_by_role("button", name="Show less")).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_text("No version has been trained on this dataset yet.")).to_be_visible()

    # Completions as prompt and completion; a line that is not JSON shown as such.
    page.goto("/datasets/qa")
    first = page.get_by_role("listitem", name="Record 1")
    expect(first.get_by_text("Prompt", exact=True)).to_be_visible()
    expect(first.get_by_text("Q: sky?")).to_be_visible()
    expect(first.get_by_text("Completion", exact=True)).to_be_visible()
    expect(first.get_by_text("blue", exact=True)).to_be_visible()
    second = page.get_by_role("listitem", name="Record 2")
    expect(second.get_by_text("Not valid JSON — shown as stored")).to_be_visible()
    expect(second.get_by_text("not json at all")).to_be_visible()
    assert_accessible(page, "dataset preview (completions)")

    page.goto("/datasets/no-such-set")
    expect(page.get_by_role("alert")).to_contain_text("no-such-set")


def test_pages_of_datasets_follow_the_api_page_tokens(page: Page, hub_url: str, hub_home: Path):
    with api(hub_url) as http:
        for i in range(27):
            path = hub_home / "datasets" / f"set-{i:02d}.jsonl"
            path.write_text(f'{{"text": "record of set {i}"}}\n')
            ok(http.post("/v1/datasets", json={"name": f"set-{i:02d}", "path": str(path)}))

    page.goto("/datasets?sort=name")
    expect(page.get_by_label("Sort by", exact=True)).to_have_value("name")
    pages = page.get_by_role("navigation", name="Pages")
    links = page.get_by_role("table").get_by_role("link")
    expect(pages).to_contain_text("1–25 of 27")
    expect(links).to_have_count(25)
    expect(links.first).to_have_text("set-00")
    expect(pages.get_by_role("button", name="Previous")).to_be_disabled()
    pages.get_by_role("button", name="Next").click()
    expect(pages).to_contain_text("26–27 of 27")
    expect(links).to_have_text(["set-25", "set-26"])
    expect(pages.get_by_role("button", name="Next")).to_be_disabled()
    pages.get_by_role("button", name="Previous").click()
    expect(links.first).to_have_text("set-00")
    # A new search starts again from the first page.
    pages.get_by_role("button", name="Next").click()
    expect(pages).to_contain_text("26–27 of 27")
    page.get_by_label("Search", exact=True).fill("set-1")
    expect(pages).to_contain_text("1–10 of 10")
    assert_accessible(page, "datasets (paged)")
