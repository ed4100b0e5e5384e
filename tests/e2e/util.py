"""Helpers for the dashboard's browser tests: accessibility checks with axe-core, screenshots in
both themes for the docs, and an API client for seeding data through the real gateway."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_INDEX = ROOT / "gateway" / "dashboard" / "index.html"
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "screenshots"
THEME_KEY = "mlxhub-theme"  # the app reads it: light | dark | system

# The `secured_hub_url` hub's keys (MLXHUB_API_KEYS="alice=alice-key,bob=bob-key").
ALICE_KEY = "alice-key"
BOB_KEY = "bob-key"
SERVICE_KEY = "e2e-service-key"  # the services' own credential on that hub
API_KEYS = f"alice={ALICE_KEY},bob={BOB_KEY}"

BLOCKING_IMPACTS = ("serious", "critical")
SETTLE_TIMEOUT_MS = 30_000  # for a screenshot's page to be ready again after its reload


@dataclass
class PageLog:
    """What the page said: uncaught exceptions (the `page` fixture fails the test on any) and console errors."""

    uncaught: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


def api(hub_url: str, key: str | None = None) -> httpx.Client:
    """An HTTP client for the hub's API (seeding data, checking what the UI did); close it or use `with`."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=hub_url, headers=headers, timeout=30)


def assert_accessible(page: Page, name: str) -> None:
    """Run axe-core on the page as it is now; fail listing every serious or critical violation."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing; run `make web` (it runs `npm ci` in web/)")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await window.axe.run(document, {resultTypes: ['violations']})")
    blocking = [v for v in result["violations"] if v.get("impact") in BLOCKING_IMPACTS]
    if blocking:
        lines = [f"{name}: {len(blocking)} serious/critical accessibility violation(s) at {page.url}"]
        for violation in blocking:
            lines.append(f"- [{violation['impact']}] {violation['id']}: {violation['help']} ({violation['helpUrl']})")
            for node in violation["nodes"][:5]:
                summary = " ".join(line.strip() for line in node.get("failureSummary", "").splitlines()[1:])
                lines.append(f"    {json.dumps(node['target'])}: {summary}")
        pytest.fail("\n".join(lines), pytrace=False)


def _settle(page: Page, ready: str | None) -> None:
    page.wait_for_load_state("load")
    if ready:  # a reload on a loaded machine: the page's lazily loaded code and first reads can take a while
        page.locator(ready).first.wait_for(state="visible", timeout=SETTLE_TIMEOUT_MS)
    page.evaluate("() => document.fonts.ready.then(() => new Promise(r => requestAnimationFrame(() => "
                  "requestAnimationFrame(r))))")


def screenshot(page: Page, name: str, ready: str | None = None, full_page: bool = False) -> list[Path]:
    """docs/screenshots/{name}-light.png and {name}-dark.png of the page as it is now, each theme set
    through localStorage and a reload; `ready` is a selector to wait for after each reload. The
    page's own theme setting is restored afterwards (and the page reloaded once more)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    before = page.evaluate(f"() => localStorage.getItem({json.dumps(THEME_KEY)})")
    saved = []
    try:
        for theme in ("light", "dark"):
            page.evaluate("([k, v]) => localStorage.setItem(k, v)", [THEME_KEY, theme])
            page.reload()
            _settle(page, ready)
            is_dark = page.evaluate("() => document.documentElement.classList.contains('dark')")
            assert is_dark == (theme == "dark"), f"the page did not switch to the {theme} theme"
            path = SCREENSHOTS / f"{name}-{theme}.png"
            page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="hide")
            saved.append(path)
    finally:
        if before is None:
            page.evaluate("(k) => localStorage.removeItem(k)", THEME_KEY)
        else:
            page.evaluate("([k, v]) => localStorage.setItem(k, v)", [THEME_KEY, before])
        page.reload()
        _settle(page, ready)
    return saved
