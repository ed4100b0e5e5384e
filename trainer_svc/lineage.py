"""What a trained version's lineage names besides the job: library versions and the
code commit that produced it."""

from __future__ import annotations

import functools
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def library_versions() -> dict[str, str]:
    found = {}
    for package in ("mlx", "mlx-lm", "mlx-hub"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


@functools.cache
def code_commit() -> str:
    """`git rev-parse HEAD` of the checkout this code runs from, else the package version."""
    root = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5,
                              check=True)
        return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"mlx-hub {library_versions().get('mlx-hub', 'unknown')}"
