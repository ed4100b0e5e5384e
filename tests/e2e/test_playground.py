"""The playground in a real browser against the real hub with the inference service and the real
demo model: "What is the capital of France?" streams "Paris" with the version that produced it and
its figures; Stop (Escape, from the keyboard) cancels a long generation on the server, whose open
stream count drops; side by side streams two versions and promotes one through the confirmation; an
adapter version is picked by its kind and answers on its base's loaded weights."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from inference_util import register
from playwright.sync_api import Page, expect
from prometheus_client import REGISTRY
from util import api, assert_accessible, screenshot

from bench.tiny_model import make_tiny_model

GENERATION_TIMEOUT_MS = 120_000  # the first request loads the model; the machine is slow


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def active_streams(hub_url: str) -> int:
    with api(hub_url) as http:
        models = ok(http.get("/v1/inference/models")).get("models", [])
    return sum(m.get("activeStreams", 0) for m in models)


def streams_open() -> float:
    """The inference service's own gauge (it runs in this process) of the streams it is serving."""
    return REGISTRY.get_sample_value("mlxhub_rpc_streams_open", {"service": "inference"}) or 0.0


def test_chat_streams_paris_with_figures(page: Page, inference_hub_url: str):
    page.goto("/playground?model=smollm2@default")
    expect(page.get_by_role("heading", level=1, name="Playground")).to_be_visible()
    expect(page.get_by_label("Model", exact=True)).to_have_value("smollm2")
    expect(page.get_by_label("Model version")).to_have_value("@default")
    page.get_by_label("Max tokens").fill("16")

    message = page.get_by_label("Message")
    message.fill("What is the capital of France?")
    message.press("Enter")  # Enter sends
    expect(page.get_by_test_id("user-message")).to_have_text(re.compile("What is the capital of France"))
    answer = page.get_by_test_id("answer")
    expect(answer).to_have_attribute("data-state", "done", timeout=GENERATION_TIMEOUT_MS)
    expect(answer.get_by_test_id("answer-text")).to_contain_text("Paris")
    figures = answer.get_by_test_id("answer-figures")
    expect(figures).to_contain_text("smollm2/versions/1")
    expect(figures).to_contain_text(re.compile(r"TTFT\s*\d+ ms"))
    expect(figures).to_contain_text(re.compile(r"\d+\.\d tok/s"))
    expect(figures).to_contain_text(re.compile(r"Prompt tokens\s*\d+"))
    expect(figures).to_contain_text(re.compile(r"Cached\s*\d+"))
    expect(page.get_by_test_id("playground-status")).to_have_text("The answer is complete.")
    expect(message).to_be_focused()

    # The sampling controls take their limits from the API's schema.
    expect(page.get_by_label("Top-p")).to_have_attribute("max", "1")
    page.get_by_label("Top-p").fill("0")
    expect(page.get_by_label("Top-p")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("Must be 0 < x ≤ 1.")).to_be_visible()
    page.get_by_label("Top-p").fill("")

    # View code: the next request as curl with the same model and sampling.
    page.get_by_role("button", name="View code").click()
    sheet = page.get_by_role("dialog", name="View code")
    expect(sheet.get_by_label("curl snippet", exact=True)).to_contain_text("/v1/generate:stream")
    expect(sheet.get_by_label("curl snippet", exact=True)).to_contain_text('"maxTokens": 16')
    sheet.get_by_role("tab", name="Python").click()
    expect(sheet.get_by_label("Python snippet", exact=True)).to_contain_text("/openai/v1")
    sheet.get_by_role("tab", name="mlx-hub").click()
    expect(sheet.get_by_label("mlx-hub snippet", exact=True)).to_contain_text("mlx-hub chat 'smollm2@default' --max-tokens 16")
    page.keyboard.press("Escape")
    expect(sheet).to_be_hidden()

    # Export: the conversation as JSON names the exact version of the answer.
    with page.expect_download() as download:
        page.get_by_role("button", name="Export JSON").click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["exchanges"][0]["answers"][0]["modelVersion"] == "smollm2/versions/1"
    assert "Paris" in exported["exchanges"][0]["answers"][0]["text"]
    with page.expect_download() as download:
        page.get_by_role("button", name="Export Markdown").click()
    assert "## Assistant (smollm2/versions/1)" in Path(download.value.path()).read_text()

    assert_accessible(page, "playground")
    screenshot(page, "playground", ready="[data-testid=answer]")
    # The conversation is kept in the browser: it survived the screenshot's reloads.
    expect(page.get_by_test_id("answer-text")).to_contain_text("Paris")
    conversations = page.get_by_role("navigation", name="Conversations")
    expect(conversations).to_contain_text("What is the capital of France?")
    conversations.get_by_role("button", name="New conversation").click()
    expect(page.get_by_test_id("exchange")).to_have_count(0)
    expect(conversations.get_by_role("listitem")).to_have_count(2)
    conversations.get_by_role("button", name=re.compile("^What is the capital")).click()
    expect(page.get_by_test_id("answer-text")).to_contain_text("Paris")
    conversations.get_by_role("button", name="Delete conversation New conversation").click()
    expect(conversations.get_by_role("listitem")).to_have_count(1)


def test_escape_stops_a_long_generation_on_the_server(page: Page, inference_hub_url: str, registry_stub, tmp_path: Path):
    # A context of a million tokens: the generation cannot end on its own before Stop, however slow the check.
    register(registry_stub, "endless", make_tiny_model(tmp_path / "endless", max_position_embeddings=1_000_000))
    page.goto("/playground?model=endless")
    page.get_by_label("Mode", exact=True).select_option("completion")
    page.get_by_label("Max tokens").fill("900000")
    prompt = page.get_by_label("Prompt")
    prompt.fill("Once upon")
    prompt.press("Shift+Enter")  # a new line, not a send
    prompt.press_sequentially("a time")
    expect(prompt).to_have_value("Once upon\na time")
    expect(page.get_by_test_id("exchange")).to_have_count(0)
    prompt.press("Enter")
    answer = page.get_by_test_id("answer")
    expect(answer).to_have_attribute("data-state", "streaming")
    expect(answer.get_by_test_id("answer-text")).not_to_be_empty(timeout=GENERATION_TIMEOUT_MS)
    expect(answer.get_by_test_id("answer-text")).not_to_contain_text("Waiting for the first token")
    assert active_streams(inference_hub_url) == 1
    assert streams_open() == 1

    prompt.press("Escape")  # Escape stops
    expect(answer).to_have_attribute("data-state", "stopped")
    expect(page.get_by_test_id("playground-status")).to_have_text("Stopped.")
    deadline = time.monotonic() + 15
    while active_streams(inference_hub_url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert active_streams(inference_hub_url) == 0, "the server still streams after Stop"
    assert streams_open() == 0
    expect(prompt).to_be_focused()
    stopped_at = len(answer.get_by_test_id("answer-text").inner_text())
    page.wait_for_timeout(1000)
    assert len(answer.get_by_test_id("answer-text").inner_text()) == stopped_at  # no token after Stop


def test_side_by_side_streams_two_versions_and_promotes_one(page: Page, inference_hub_url: str, smollm2: Path):
    with api(inference_hub_url) as http:
        assert ok(http.post("/v1/models/smollm2/versions", json={"artifactPath": str(smollm2)}))["version"]["version"] == "2"
    page.goto("/playground?model=smollm2@default")
    page.get_by_role("switch", name="Side by side").click()
    page.get_by_label("Model B version").select_option("/versions/2")
    page.get_by_label("Max tokens").fill("8")
    page.get_by_label("Message").fill("Say hello.")
    page.get_by_role("button", name="Send").click()

    answers = page.get_by_test_id("answer")
    expect(answers).to_have_count(2)
    for column, version in ((0, "smollm2/versions/1"), (1, "smollm2/versions/2")):
        one = page.locator(f"[data-testid=answer][data-column='{column}']")
        expect(one).to_have_attribute("data-state", "done", timeout=GENERATION_TIMEOUT_MS)
        expect(one.get_by_test_id("answer-figures")).to_contain_text(version)
        expect(one.get_by_test_id("answer-figures")).to_contain_text("tok/s")
        expect(one.get_by_test_id("answer-text")).not_to_be_empty()
    expect(page.get_by_test_id("playground-status")).to_have_text("Both answers are complete.")

    page.get_by_role("button", name="View code").click()
    sheet = page.get_by_role("dialog", name="View code")
    expect(sheet.get_by_role("region", name="Model A request")).to_contain_text('"model": "smollm2@default"')
    expect(sheet.get_by_role("region", name="Model B request")).to_contain_text('"model": "smollm2/versions/2"')
    page.keyboard.press("Escape")
    expect(sheet).to_be_hidden()
    screenshot(page, "playground-side-by-side", ready="[data-testid=answer]")

    page.get_by_role("button", name="Promote this one (B)").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Alias")).to_have_value("default")
    expect(dialog.get_by_test_id("alias-move-preview")).to_have_text("default: v1 → v2")
    assert_accessible(page, "playground side by side, promote")
    dialog.get_by_role("button", name="Confirm promotion").click()
    expect(dialog).to_be_hidden()
    with api(inference_hub_url) as http:
        assert ok(http.get("/v1/models/smollm2"))["model"]["aliases"]["default"] == "2"


def test_a_failed_generation_shows_the_api_error_in_its_answer(page: Page, inference_hub_url: str):
    page.goto("/playground?model=nosuch@prod")
    expect(page.get_by_text("No model named nosuch.")).to_be_visible()
    page.get_by_label("Message").fill("Hello?")
    page.get_by_label("Message").press("Enter")
    answer = page.get_by_test_id("answer")
    expect(answer).to_have_attribute("data-state", "error")
    expect(answer.get_by_role("alert")).to_contain_text("nosuch")
    expect(page.get_by_test_id("playground-status")).to_contain_text("The generation failed")
    assert_accessible(page, "playground error")


def tab_to(page: Page, target, limit: int = 150) -> None:
    """Press Tab until `target` has the focus (the way a keyboard user gets there), or fail."""
    handle = target.element_handle()
    for _ in range(limit):
        if page.evaluate("(el) => document.activeElement === el", handle):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{limit} presses of Tab never reached {target}")


def test_the_playground_works_with_the_keyboard_alone(page: Page, inference_hub_url: str):
    page.goto("/playground")
    expect(page.get_by_role("heading", level=1, name="Playground")).to_be_visible()
    model = page.get_by_label("Model", exact=True)
    tab_to(page, model)
    page.keyboard.type("tiny")
    expect(page.get_by_text("Reference: tiny", exact=False)).to_be_visible()
    system = page.get_by_label("System prompt")
    tab_to(page, system)
    page.keyboard.type("Answer briefly.")
    max_tokens = page.get_by_label("Max tokens")
    tab_to(page, max_tokens)
    page.keyboard.type("4")
    expect(max_tokens).to_have_value("4")
    message = page.get_by_label("Message")
    tab_to(page, message)
    page.keyboard.type("Hello there")
    page.keyboard.press("Enter")
    answer = page.get_by_test_id("answer")
    expect(answer).to_have_attribute("data-state", "done", timeout=GENERATION_TIMEOUT_MS)
    expect(answer.get_by_test_id("answer-figures")).to_contain_text("tiny/versions/1")
    expect(message).to_be_focused()  # ready for the next message

    # The view-code drawer opens and closes from the keyboard, and gives the focus back.
    view_code = page.get_by_role("button", name="View code")
    tab_to(page, view_code)
    page.keyboard.press("Enter")
    sheet = page.get_by_role("dialog", name="View code")
    expect(sheet).to_be_visible()
    curl = sheet.get_by_label("curl snippet", exact=True)
    expect(curl).to_contain_text('"model": "tiny"')
    expect(curl).to_contain_text('"role": "system"')
    expect(curl).to_contain_text("Answer briefly.")
    page.keyboard.press("Escape")
    expect(sheet).to_be_hidden()
    expect(view_code).to_be_focused()

    # Copy the conversation, from the keyboard.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=inference_hub_url)
    copy = page.get_by_role("button", name="Copy conversation as Markdown")
    tab_to(page, copy)
    page.keyboard.press("Enter")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert "Hello there" in copied and "tiny/versions/1" in copied, copied


def test_an_adapter_version_is_picked_and_answers_beside_its_base(page: Page, inference_hub_url: str, smollm2: Path,
                                                                 tmp_path: Path):
    from bench.adapters import make_adapter

    adapter = make_adapter(smollm2, tmp_path / "adapter", seed=7, rank=4, num_layers=4)
    with api(inference_hub_url) as http:
        made = ok(http.post("/v1/models/smollm2/versions",
                            json={"artifactPath": str(adapter), "lineage": {"parentVersion": "smollm2/versions/1"}}))
    assert made["version"]["kind"] == "MODEL_VERSION_KIND_ADAPTER"
    page.goto("/playground?model=smollm2@default")
    page.get_by_role("switch", name="Side by side").click()
    version_b = page.get_by_label("Model B version")
    expect(version_b.locator("option[value='/versions/2']")).to_have_text(re.compile(r"v2 · adapter of smollm2/versions/1"))
    version_b.select_option("/versions/2")
    page.get_by_label("Max tokens").fill("8")
    page.get_by_label("Message").fill("Say hello.")
    page.get_by_role("button", name="Send").click()
    for column, version in ((0, "smollm2/versions/1"), (1, "smollm2/versions/2")):
        one = page.locator(f"[data-testid=answer][data-column='{column}']")
        expect(one).to_have_attribute("data-state", "done", timeout=GENERATION_TIMEOUT_MS)
        expect(one.get_by_test_id("answer-figures")).to_contain_text(version)
        expect(one.get_by_test_id("answer-text")).not_to_be_empty()
    # The adapter is served on its base's loaded weights: both entries are loaded, the adapter's only
    # its low-rank matrices.
    with api(inference_hub_url) as http:
        loaded = {(m["modelVersion"], m.get("adapterVersion", "")): m
                  for m in ok(http.get("/v1/inference/models"))["models"]}
    base, on_base = ("smollm2/versions/1", ""), ("smollm2/versions/1", "smollm2/versions/2")
    assert {base, on_base} <= set(loaded), loaded
    assert loaded[on_base]["memoryGb"] < loaded[base]["memoryGb"] / 10, loaded
