"""The Chromium that the dashboard's browser tests drive: `python tools/browser.py` prints its path.

Playwright's Python package brings the driver but no browser (we never run `playwright
install`); the tests use the system's Chromium. When none is found and this runs as root on
Debian or Ubuntu, it is installed with apt-get. Otherwise this exits non-zero saying what to
install, so that the browser tests fail rather than pass unseen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome",
         "/usr/bin/google-chrome-stable", "/snap/bin/chromium",
         "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
         "/Applications/Chromium.app/Contents/MacOS/Chromium")
ENV = "MLXHUB_CHROMIUM"  # an explicit path wins


def _works(path: str) -> bool:
    try:
        done = subprocess.run([path, "--version"], check=False, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def find() -> str | None:
    """A Chromium or Chrome that answers `--version`, or None."""
    if explicit := os.environ.get(ENV):
        return explicit if _works(explicit) else None
    candidates = [shutil.which(name) for name in NAMES] + [p for p in PATHS if Path(p).exists()]
    return next((c for c in candidates if c and _works(c)), None)


def _debian() -> bool:
    return Path("/etc/debian_version").exists() and shutil.which("apt-get") is not None


def install() -> None:
    """apt-get install chromium (root on Debian/Ubuntu only); output goes to stderr."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("no Chromium found; installing it with apt-get ...", file=sys.stderr)
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        subprocess.run(argv, check=True, env=env, stdout=sys.stderr)


def ensure() -> str:
    """The browser's path, installing it when we can; SystemExit with a message when we cannot."""
    found = find()
    if found:
        return found
    if os.environ.get(ENV):
        raise SystemExit(f"error: {ENV}={os.environ[ENV]} does not run (`--version` failed)")
    can_install = _debian() and hasattr(os, "geteuid") and os.geteuid() == 0
    if can_install:
        try:
            install()
        except (OSError, subprocess.CalledProcessError) as exc:
            raise SystemExit(f"error: installing Chromium with apt-get failed ({exc})") from None
        found = find()
        if found:
            return found
    raise SystemExit(
        "error: no Chromium or Chrome found for the dashboard's browser tests. Install one "
        "(Debian/Ubuntu: `sudo apt-get install chromium`; macOS: Google Chrome) "
        f"or set {ENV} to its path, then run `make test` again."
    )


if __name__ == "__main__":
    print(ensure())
