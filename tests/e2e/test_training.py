"""The Training pages in a real browser on the real stack (one in-process trainer worker): a tiny
job started from the form (the API's violation beside its field first, a double click queuing one
job), its loss chart gaining points while it runs, the version it registers opened from its page;
and a long job cancelled while it runs and resumed from its checkpoint."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from util import api, assert_accessible, screenshot


@pytest.fixture
def trainer_workers() -> int:
    return 1


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def seeded(hub_url: str, tiny_model: Path, training_chats: Path) -> str:
    with api(hub_url) as http:
        ok(http.post("/v1/models", json={"name": "tiny", "description": "a random two-layer llama"}))
        ok(http.post("/v1/models/tiny/versions", json={"artifactPath": str(tiny_model)}))
        ok(http.post("/v1/datasets", json={"name": "chats", "path": str(training_chats)}))
    return hub_url


def points(page: Page) -> int:
    text = page.get_by_test_id("loss-points").inner_text()
    return int(text.split()[0])


def figure(page: Page, label: str):
    """The value beside `label` in the job page's timeline card."""
    return page.locator("dt", has_text=re.compile(f"^{label}$")).locator("xpath=following-sibling::dd[1]")


def open_form(page: Page, iters: str, **fields: str):
    page.get_by_role("button", name="New training job").first.click()
    dialog = page.get_by_role("dialog", name="New training job")
    dialog.get_by_label("Model", exact=True).fill("tiny")
    dialog.get_by_label("Dataset", exact=True).fill("chats")
    dialog.get_by_label("Iterations").fill(iters)
    dialog.get_by_label("Batch size").fill("2")
    dialog.get_by_label("Steps per report").fill("1")
    for label, value in fields.items():
        dialog.get_by_label(label, exact=True).fill(value)
    return dialog


def test_start_a_job_from_the_form_and_watch_it_train(page: Page, seeded: str):
    page.goto("/training")
    expect(page.get_by_role("heading", level=1, name="Training")).to_be_visible()
    expect(page.get_by_text("No training jobs yet — start one.")).to_be_visible()

    dialog = open_form(page, "150")
    # Every field shows the default the trainer will use.
    expect(dialog.get_by_text("Default: 8 · 1 ≤ x ≤ 1024")).to_be_visible()  # rank
    expect(dialog.get_by_label("Fine-tune type")).to_contain_text("Default (lora)")
    rate = dialog.get_by_label("Learning rate", exact=True)
    rate.fill("-1")
    dialog.get_by_role("button", name="Start training").click()
    expect(rate).to_have_attribute("aria-invalid", "true")
    expect(dialog.get_by_label("Rank")).not_to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "new training job (error)")

    rate.fill("0.001")
    dialog.get_by_label("Validation split").fill("0.25")
    dialog.get_by_label("Steps per eval").fill("50")
    dialog.get_by_role("button", name="Start training").dblclick()
    expect(page).to_have_url(re.compile(r"/training/[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("/", 1)[1]
    with api(seeded) as http:
        assert ok(http.get("/v1/training/jobs"))["totalSize"] == 1  # the double click queued one job

    # The loss chart gains points while the job runs.
    expect(page.get_by_role("heading", name="Loss")).to_be_visible()
    expect(page.get_by_text("running", exact=True)).to_be_visible(timeout=60_000)
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if page.get_by_text("succeeded", exact=True).is_visible():
            break
        if page.get_by_test_id("loss-points").is_visible():
            n = points(page)
            if not seen or n != seen[-1]:
                seen.append(n)
        time.sleep(0.05)
    assert len(seen) >= 3 and seen == sorted(seen) and seen[-1] > seen[0], seen
    assert page.locator(".recharts-line path.recharts-line-curve").count() >= 1

    expect(page.get_by_text("succeeded", exact=True)).to_be_visible(timeout=120_000)
    expect(page.get_by_test_id("loss-points")).to_have_text("150 steps")
    expect(page.get_by_test_id("job-step")).to_have_text("150 / 150")
    # Validation ran at its steps: its own (dashed) line beside the training loss.
    expect(page.get_by_text(re.compile(r"· [1-9]\d* validation"))).to_be_visible()
    expect(page.locator(".recharts-line-curve")).to_have_count(2)
    produced = page.get_by_role("link", name="tiny v2")
    expect(produced).to_be_visible()
    expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
    expect(page.get_by_role("button", name="Resume")).to_be_disabled()
    expect(page.get_by_role("button", name="Retry")).to_be_disabled()
    # The timeline: one attempt on the worker that ran it, and the MLflow run (or why there is none).
    with api(seeded) as http:
        done = ok(http.get(f"/v1/training/jobs/{job_id}"))["job"]
    assert done["attempt"] == 1 and done["worker"]
    expect(figure(page, "Attempts")).to_have_text("1")
    expect(figure(page, "Worker")).to_have_text(done["worker"])
    expect(page.get_by_text(f"on {done['worker']}")).to_be_visible()  # the "Started" entry
    expect(figure(page, "MLflow run")).to_contain_text(done.get("mlflowRunId") or done.get("mlflowStatus") or "—")
    assert_accessible(page, "training job")
    screenshot(page, "training-job", ready=".recharts-line-curve")

    produced.click()
    expect(page).to_have_url(re.compile(r"/models/tiny/versions/2$"))

    page.goto("/training")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=job_id[:8]))
    expect(row).to_contain_text("succeeded")
    expect(row).to_contain_text("150 / 150")
    expect(row.get_by_role("link", name="tiny v2")).to_be_visible()
    expect(row.get_by_role("link", name="chats")).to_be_visible()
    assert_accessible(page, "training")
    screenshot(page, "training", ready="table")


def test_cancel_a_running_job_and_resume_it_then_compare(page: Page, seeded: str):
    with api(seeded) as http:
        short = ok(http.post("/v1/training/jobs", json={
            "model": "tiny", "dataset": "chats", "idempotencyKey": "short-1",
            "config": {"iters": 8, "batchSize": 2, "learningRate": 0.001, "stepsPerReport": 1}}))["job"]
        job = ok(http.post("/v1/training/jobs", json={
            "model": "tiny", "dataset": "chats", "idempotencyKey": "long-1",
            "config": {"iters": 100000, "batchSize": 2, "learningRate": 0.001, "stepsPerReport": 1, "saveEvery": 5}}))["job"]
    page.goto(f"/training/{job['id']}")
    cancel = page.get_by_role("button", name="Cancel")
    resume = page.get_by_role("button", name="Resume")
    retry = page.get_by_role("button", name="Retry")
    expect(page.get_by_text("running", exact=True)).to_be_visible(timeout=60_000)
    expect(cancel).to_be_enabled()
    expect(resume).to_be_disabled()
    expect(retry).to_be_disabled()
    # Wait for a checkpoint (every 5 steps) so there is something to resume from.
    expect(page.get_by_role("row").filter(has_text=re.compile(r"^\s*5\b"))).to_be_visible(timeout=60_000)
    cancel.click()
    expect(page.get_by_text("cancelled", exact=True)).to_be_visible(timeout=60_000)
    expect(cancel).to_be_disabled()
    expect(resume).to_be_enabled()
    expect(retry).to_be_enabled()
    stopped = points(page)

    resume.click()
    expect(page.get_by_text("running", exact=True)).to_be_visible(timeout=60_000)
    expect(resume).to_be_disabled()
    expect(retry).to_be_disabled()
    expect(cancel).to_be_enabled()
    # The second attempt shows in the timeline, with the worker running it.
    expect(figure(page, "Attempts")).to_contain_text("2", timeout=30_000)
    with api(seeded) as http:
        worker = ok(http.get(f"/v1/training/jobs/{job['id']}"))["job"]["worker"]
    expect(figure(page, "Worker")).to_have_text(worker)
    # The resumed attempt continues the curve past where the cancelled one stopped.
    expect(page.get_by_test_id("loss-points")).not_to_have_text(f"{stopped} steps", timeout=60_000)
    deadline = time.monotonic() + 60
    while points(page) <= stopped:
        assert time.monotonic() < deadline, "the resumed job reported no step past the cancelled one"
        time.sleep(0.1)
    cancel.click()
    expect(page.get_by_text("cancelled", exact=True)).to_be_visible(timeout=60_000)

    # Both jobs side by side: the iterations differ (marked, not only coloured) and both curves are drawn.
    page.goto("/training")
    page.get_by_label(f"Select job {short['id'][:8]}").check()
    page.get_by_label(f"Select job {job['id'][:8]}").check()
    page.get_by_role("button", name="Compare (2)").click()
    expect(page).to_have_url(re.compile(r"/training/compare\?ids="))
    expect(page.get_by_role("heading", level=1, name="Compare training jobs")).to_be_visible()
    iterations = page.get_by_role("row").filter(has_text="Iterations")
    expect(iterations).to_contain_text("≠")
    expect(iterations).to_contain_text("8")
    expect(iterations).to_contain_text("100000")
    expect(page.get_by_role("row").filter(has_text="Rank")).not_to_contain_text("≠")
    expect(page.locator(".recharts-line-curve")).to_have_count(2, timeout=30_000)
    assert_accessible(page, "compare training jobs")
    screenshot(page, "compare-jobs", ready=".recharts-line-curve")


def test_the_list_shows_queue_positions_eta_and_filters_by_state(page: Page, seeded: str):
    config = {"iters": 100000, "batchSize": 2, "learningRate": 0.001, "stepsPerReport": 1}
    with api(seeded) as http:
        running = ok(http.post("/v1/training/jobs", json={"model": "tiny", "dataset": "chats", "idempotencyKey": "run",
                                                          "config": config}))["job"]
        deadline = time.monotonic() + 60
        while ok(http.get(f"/v1/training/jobs/{running['id']}"))["job"]["state"] != "TRAINING_JOB_STATE_RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        first, second = (ok(http.post("/v1/training/jobs", json={"model": "tiny", "dataset": "chats",
                                                                 "idempotencyKey": key, "config": config}))["job"]
                         for key in ("q1", "q2"))
    try:
        page.goto("/training")
        row = lambda job: page.get_by_role("row").filter(has=page.get_by_role("link", name=job["id"][:8]))
        expect(row(first)).to_contain_text("#1 in queue")
        expect(row(second)).to_contain_text("#2 in queue")
        expect(row(running)).to_contain_text(re.compile(r"ETA \d+"), timeout=60_000)  # after its first steps
        expect(row(running)).to_contain_text(re.compile(r"\d+ / 100000"))
        expect(row(running).get_by_role("img", name=re.compile(r"^\d+% done$"))).to_be_visible()  # the progress ring
        expect(row(first)).to_contain_text("anonymous")  # who created it (this hub has no keys)

        page.get_by_role("button", name="queued", exact=True).click()
        expect(page).to_have_url(re.compile(r"\?state=queued$"))
        expect(page.get_by_text("2 jobs queued")).to_be_visible()
        expect(row(running)).to_have_count(0)
        page.get_by_role("button", name="succeeded", exact=True).click()
        expect(page.get_by_text("No succeeded jobs.")).to_be_visible()

        page.goto("/training/00000000-0000-0000-0000-000000000000")
        expect(page.get_by_text("There is no training job 00000000-0000-0000-0000-000000000000.")).to_be_visible()
    finally:
        with api(seeded) as http:
            for job in (second, first, running):
                http.post(f"/v1/training/jobs/{job['id']}:cancel", json={})
