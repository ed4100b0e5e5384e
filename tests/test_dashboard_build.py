"""The built dashboard's first load stays small: the entry script plus everything index.html
makes the browser fetch before the app can run (modulepreloads, stylesheets), gzipped."""

from __future__ import annotations

import gzip
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "gateway" / "dashboard"
JS_BUDGET = 250 * 1024  # gzipped bytes of first-load JavaScript


class _FirstLoad(HTMLParser):
    """The same-origin scripts and stylesheets index.html loads: (kind, path) pairs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.found.append(("js", a["src"]))
        elif tag == "link" and a.get("href"):
            rel = set((a.get("rel") or "").split())
            if "modulepreload" in rel:
                self.found.append(("js", a["href"]))
            elif "stylesheet" in rel:
                self.found.append(("css", a["href"]))


def first_load() -> list[tuple[str, Path]]:
    index = DASHBOARD / "index.html"
    if not index.is_file():
        pytest.fail(f"{index.relative_to(ROOT)} is missing: build the dashboard with `make web`", pytrace=False)
    parser = _FirstLoad()
    parser.feed(index.read_text())
    files = []
    for kind, url in parser.found:
        assert url.startswith("/") and not url.startswith("//"), f"index.html loads {url} from elsewhere"
        path = DASHBOARD / url.split("?", 1)[0].lstrip("/")
        assert path.is_file(), f"index.html references {url}, which the build does not contain"
        files.append((kind, path))
    return files


def gzipped(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def test_first_load_javascript_fits_the_budget():
    files = first_load()
    scripts = [p for kind, p in files if kind == "js"]
    assert scripts, "index.html loads no script: not a built dashboard"
    js = sum(gzipped(p) for p in scripts)
    css = sum(gzipped(p) for kind, p in files if kind == "css")
    for kind, path in files:
        print(f"{kind:3} {gzipped(path) / 1024:7.1f} KB gz  {path.relative_to(DASHBOARD)}")
    print(f"first load: JavaScript {js / 1024:.1f} KB gzipped (budget {JS_BUDGET / 1024:.0f} KB), CSS {css / 1024:.1f} KB")
    assert js <= JS_BUDGET, f"first-load JavaScript is {js / 1024:.1f} KB gzipped, over the {JS_BUDGET / 1024:.0f} KB " \
                            "budget: load more of it lazily (route-level import())"


def test_the_readme_shows_screenshots_of_the_main_pages_and_each_exists():
    readme = (ROOT / "README.md").read_text()
    shown = re.findall(r"\]\((docs/screenshots/[^)]+\.png)\)", readme)
    for path in shown:
        assert (ROOT / path).is_file(), f"README.md shows {path}, which the browser tests did not save"
    names = {Path(p).stem.rsplit("-", 1)[0] for p in shown}
    for page in ("overview", "model-detail", "audit", "training-job", "training", "playground-side-by-side", "serving"):
        assert page in names, f"README.md shows no screenshot of the {page} page"
    for theme in ("light", "dark"):  # the tests save both themes of every shown page
        for name in names:
            assert (ROOT / "docs" / "screenshots" / f"{name}-{theme}.png").is_file(), f"{name}-{theme}.png is missing"
