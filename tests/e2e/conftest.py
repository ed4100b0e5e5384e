"""Browser tests of the dashboard against the real stack: the gateway serving the built app
(gateway/dashboard/, `make web`) in front of the real registry and trainer services, on the
embedded PostgreSQL and NATS of tests/conftest.py, driven by the system Chromium through
Playwright's sync API.

Fixtures:
  hub_url          the gateway's base URL (no trailing slash); the hub is open (no API keys)
  secured_hub_url  the same with MLXHUB_API_KEYS="alice=alice-key,bob=bob-key" (util.ALICE_KEY, util.BOB_KEY)
  inference_hub_url  an open hub that also runs the inference service, with the real demo model
                   registered as `smollm2` (alias `default`) and the tiny test model as `tiny`
  browser          one headless Chromium per test module (stopped before the next module runs)
  page             a fresh context (empty localStorage) and page, 1400x900, 10 s default timeout; the
                   test fails if the page throws an uncaught exception; relative URLs resolve
                   against the hub the test uses
  page_log         the page's uncaught exceptions and console errors (util.PageLog)
The trainer has no in-process workers here (jobs stay queued); a module may override
`trainer_workers` to run them.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator

import pytest
from inference_util import register
from playwright.sync_api import Browser, Page, expect, sync_playwright
from util import API_KEYS, DASHBOARD_INDEX, ROOT, SERVICE_KEY, PageLog

from gateway.server import running

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}
DEFAULT_TIMEOUT_MS = 10_000
# expect() waits as long as actions do (its own default is 5 s): on a loaded machine a page's lazily
# loaded code can take that long to arrive. Checks of how fast something happens set their own timeout.
expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
WEB_SOURCES = ("src", "public", "index.html", "package.json", "package-lock.json", "vite.config.ts", "tsconfig.json")


def _stale_sources() -> list[str]:
    """Dashboard sources newer than the build: the tests would drive an app that is not the code's."""
    built = DASHBOARD_INDEX.stat().st_mtime
    web = ROOT / "web"
    newer = []
    for name in WEB_SOURCES:
        path = web / name
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path] if path.exists() else []
        newer += [str(p.relative_to(ROOT)) for p in files
                  if p.stat().st_mtime > built and ".test." not in p.name]  # unit tests are not in the build
    return newer


@pytest.fixture(scope="session")
def dashboard_built() -> None:
    if not DASHBOARD_INDEX.is_file():
        pytest.fail(f"{DASHBOARD_INDEX.relative_to(ROOT)} is missing: build the dashboard with `make web` "
                    "(`make test` does it before pytest)", pytrace=False)
    if stale := _stale_sources():  # a warning, not a failure: `make test` always builds first
        warnings.warn(f"the built dashboard is older than {', '.join(stale[:5])}; these tests drive the "
                      "older build: run `make web`", stacklevel=1)


@pytest.fixture
def trainer_workers() -> int:
    return 0


@pytest.fixture
def hub_env(hub_env: dict[str, str], request: pytest.FixtureRequest) -> dict[str, str]:
    """conftest's hub; with API keys on (and a service credential) for tests that use `secured_hub_url`."""
    if "secured_hub_url" in request.fixturenames:
        return {**hub_env, "MLXHUB_API_KEYS": API_KEYS, "MLXHUB_SERVICE_KEY": SERVICE_KEY}
    return hub_env


@pytest.fixture
def _gateway(dashboard_built, registry, trainer, settings) -> Iterator[str]:
    with running(settings) as url:
        yield url.rstrip("/")


@pytest.fixture
def hub_url(_gateway: str, settings) -> str:
    return _gateway


@pytest.fixture
def inference_hub_url(dashboard_built, registry, registry_stub, trainer, inference, smollm2, tiny_model,
                      settings) -> Iterator[str]:
    register(registry_stub, "smollm2", smollm2, alias="default")
    register(registry_stub, "tiny", tiny_model)
    with running(settings) as url:
        yield url.rstrip("/")


@pytest.fixture
def secured_hub_url(_gateway: str, settings) -> str:
    assert settings.auth_enabled, "secured_hub_url's hub has no API keys"
    return _gateway


def _chromium() -> str:
    spec = importlib.util.spec_from_file_location("mlxhub_tools_browser", ROOT / "tools" / "browser.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        return module.ensure()
    except SystemExit as exc:
        pytest.fail(str(exc.code), pytrace=False)


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main
# thread while it is started, and the tests outside tests/e2e that call asyncio.run() must find none.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


@pytest.fixture
def page(browser: Browser, page_log: PageLog, request: pytest.FixtureRequest) -> Iterator[Page]:
    base_url = next((request.getfixturevalue(name) for name in ("hub_url", "secured_hub_url", "inference_hub_url")
                     if name in request.fixturenames), None)
    context = browser.new_context(viewport=VIEWPORT, base_url=base_url)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    page.on("pageerror", lambda error: page_log.uncaught.append(f"{error.name}: {error.message}\n{error.stack}"))
    page.on("console", lambda message: page_log.console_errors.append(message.text)
            if message.type == "error" else None)
    try:
        yield page
    finally:
        context.close()
    if page_log.uncaught:
        pytest.fail("the page threw uncaught exception(s):\n" + "\n".join(page_log.uncaught), pytrace=False)
