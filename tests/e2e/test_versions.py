"""The version pages in a real browser against the real hub: a trained adapter's page shows its
lineage as a graph (external base → base version → job, fed by the dataset with its sha256 → this
version), its provenance and files with their sha256, copies a reference to the clipboard and switches
between call snippets; the compare page marks the differing learning rate in text and shows metric
deltas B − A and which files differ."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect
from util import api, assert_accessible, screenshot

BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"
JOB = "0f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a00"
COMMIT = "4c1d2e3f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d"


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def adapter_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "adapter"
    directory.mkdir()
    (directory / "adapter_config.json").write_text('{"fine_tune_type": "lora", "num_layers": 2}')
    (directory / "adapters.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    return directory


def seed(hub_url: str, model_dir: Path, chat_dataset: Path, tmp_path: Path) -> tuple[str, dict]:
    """demo v1 (registered from the external base) and v2 (an adapter trained on it with `chat`)."""
    with api(hub_url) as http:
        sha = ok(http.post("/v1/datasets", json={"name": "chat", "path": str(chat_dataset)}))["dataset"]["sha256"]
        ok(http.post("/v1/models", json={"name": "demo", "baseModel": BASE}))
        ok(http.post("/v1/models/demo/versions", json={
            "artifactPath": str(model_dir), "description": "the base as registered",
            "metrics": {"loss": 2.0, "accuracy": 0.5},
            "lineage": {"baseModel": BASE, "seed": "1", "libraryVersions": {"mlx": "0.29.0"},
                        "parameters": {"learning_rate": 0.0001, "iters": 100}},
        }))
        v2 = ok(http.post("/v1/models/demo/versions", json={
            "artifactPath": str(adapter_dir(tmp_path)), "description": "LoRA on chat",
            "metrics": {"loss": 1.25, "accuracy": 0.75},
            "lineage": {"baseModel": "demo/versions/1", "parentVersion": "demo/versions/1", "dataset": "chat",
                        "datasetSha256": sha, "trainingJob": JOB, "seed": "7", "codeCommit": COMMIT,
                        "mlflowRunId": "run42", "source": "trained",
                        "libraryVersions": {"mlx": "0.29.1", "mlx-lm": "0.28.0"},
                        "parameters": {"learning_rate": 0.0002, "iters": 100, "batch_size": 2}},
        }))["version"]
        ok(http.put("/v1/models/demo/aliases/prod", json={"version": "2"}))
    return sha, v2


def test_version_detail_lineage_references_snippets_and_compare(page: Page, hub_url: str, model_dir: Path,
                                                                  chat_dataset: Path, tmp_path: Path):
    sha, v2 = seed(hub_url, model_dir, chat_dataset, tmp_path)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=hub_url)

    page.goto("/models/demo/versions/2")
    expect(page.get_by_role("heading", level=1)).to_contain_text("demo v2")
    expect(page.get_by_text("Adapter on base")).to_be_visible()
    expect(page.get_by_text("LoRA on chat")).to_be_visible()

    # The lineage graph: every node a link, the dataset with its short sha (the full one in its title).
    graph = page.get_by_test_id("lineage-graph")
    dataset = graph.get_by_role("link", name=f"Dataset chat sha256 {sha[:12]}")
    expect(dataset).to_have_attribute("href", "/datasets/chat")
    expect(dataset).to_have_attribute("title", re.compile(sha))
    expect(graph.get_by_role("link", name="Version demo v1")).to_have_attribute("href", "/models/demo/versions/1")
    expect(graph.get_by_role("link", name=f"Base model {BASE} external base model")).to_be_visible()
    expect(graph.get_by_role("link", name=f"Training job {JOB[:8]} MLflow run run42")).to_have_attribute(
        "href", f"/training/{JOB}")
    current = graph.get_by_role("link", name="This version demo v2")
    expect(current).to_have_attribute("aria-current", "page")
    # Columns left to right: the base, v1 (with the dataset beside it), the job, this version.
    xs = {kind: graph.locator(f'[data-kind="{kind}"]').first.bounding_box()["x"]
          for kind in ("external", "version", "dataset", "job", "current")}
    assert xs["external"] < xs["version"] == xs["dataset"] < xs["job"] < xs["current"], xs

    # Provenance and the resolved config.
    expect(page.get_by_text(COMMIT)).to_be_visible()
    config = page.get_by_role("table", name="Training config")
    expect(config.get_by_role("row", name=re.compile(r"learning_rate\s+0\.0002"))).to_be_visible()
    expect(config.get_by_role("row").nth(1)).to_contain_text("batch_size")  # sorted by key
    libraries = page.get_by_role("table", name="Library versions")
    expect(libraries.get_by_role("row", name=re.compile(r"mlx-lm\s+0\.28\.0"))).to_be_visible()

    # Files with sizes and short sha256.
    files = page.get_by_role("table", name="Files")
    by_path = {f["path"]: f for f in v2["files"]}
    row = files.get_by_role("row", name=re.compile("adapters.safetensors"))
    expect(row).to_contain_text(by_path["adapters.safetensors"]["sha256"][:12])
    expect(row).to_contain_text(f'{by_path["adapters.safetensors"]["sizeBytes"]} B')

    # References: copying one puts it on the clipboard and says so.
    refs = page.get_by_role("list", name="References")
    expect(refs.get_by_text("demo/versions/2", exact=True)).to_be_visible()
    copy = page.get_by_role("button", name="Copy reference demo@prod")
    copy.click()
    expect(copy).to_contain_text("Copied")
    assert page.evaluate("() => navigator.clipboard.readText()") == "demo@prod"

    # An alias moved through the API shows up without a reload.
    with api(hub_url) as http:
        ok(http.put("/v1/models/demo/aliases/canary", json={"version": "2"}))
    expect(refs.get_by_text("demo@canary", exact=True)).to_be_visible()

    # Snippets: curl first, then the OpenAI client and the CLI.
    panel = page.get_by_role("tabpanel")
    expect(panel).to_contain_text(f"curl -s {hub_url}/v1/generate")
    expect(panel).to_contain_text('"model":"demo/versions/2"')
    page.get_by_role("tab", name="Python").click()
    expect(panel).to_contain_text(f'base_url="{hub_url}/openai/v1"')
    expect(panel).to_contain_text('model="demo/versions/2"')
    page.get_by_role("tab", name="CLI").click()
    expect(panel).to_contain_text('mlx-hub generate demo/versions/2 "')

    assert_accessible(page, "version detail")
    screenshot(page, "version-detail", ready='[data-testid="lineage-graph"]', full_page=True)

    # Compare v1 with v2: the learning rate is marked as differing in text, metrics show B − A.
    page.get_by_role("link", name="Compare", exact=True).click()
    expect(page).to_have_url(re.compile(r"/models/demo/compare\?a=1&b=2$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Compare demo v1 and v2")
    config = page.get_by_role("table", name="Training config comparison")
    lr = config.get_by_role("row", name=re.compile("learning_rate"))
    expect(lr).to_have_attribute("data-status", "changed")
    expect(lr).to_contain_text("differs")
    expect(lr).to_contain_text("0.0001")
    expect(lr).to_contain_text("0.0002")
    expect(config.get_by_role("row", name=re.compile("iters"))).to_have_attribute("data-status", "same")
    expect(config.get_by_role("row", name=re.compile("batch_size"))).to_contain_text("only in B")
    metrics = page.get_by_role("table", name="Metrics comparison")
    expect(metrics.get_by_role("row", name=re.compile("loss"))).to_contain_text("−0.75")
    expect(metrics.get_by_role("row", name=re.compile("accuracy"))).to_contain_text("+0.25")
    lineage = page.get_by_role("table", name="Lineage comparison")
    expect(lineage.get_by_role("row", name=re.compile("Dataset sha256"))).to_contain_text(sha)
    expect(lineage.get_by_role("row", name=re.compile("Seed"))).to_contain_text("differs")
    file_rows = page.get_by_role("table", name="Files comparison")
    expect(file_rows.get_by_role("row", name=re.compile("adapters.safetensors"))).to_contain_text("only in B")
    expect(file_rows.get_by_role("row", name=re.compile(r"^config\.json"))).to_contain_text("only in A")

    assert_accessible(page, "compare")
    screenshot(page, "compare", ready='table[aria-label="Training config comparison"]', full_page=True)

    # Swapping turns the delta around; a selector changes a side through the URL.
    page.get_by_role("button", name="Swap A and B").click()
    expect(page).to_have_url(re.compile(r"a=2&b=1"))
    expect(page.get_by_role("table", name="Metrics comparison").get_by_role("row", name=re.compile("loss"))).to_contain_text("+0.75")
    page.get_by_label("Version B").select_option("2")
    expect(page).to_have_url(re.compile(r"a=2&b=2"))
    expect(page.get_by_role("table", name="Metrics comparison").get_by_role("row", name=re.compile("loss"))).to_contain_text("±0")
