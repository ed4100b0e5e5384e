"""The sha256 of a file, as the hub records it for datasets, model files and adapters: one
definition, so the registry, the trainer and inference always agree on what a hash means."""

from __future__ import annotations

import hashlib
from pathlib import Path


def new_sha256():
    """The hasher behind `sha256_file`, for a reader that hashes a file as it streams it once."""
    return hashlib.sha256()


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of the file's bytes, read in chunks (weights can be gigabytes)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, new_sha256).hexdigest()
