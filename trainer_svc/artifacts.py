"""Write a trained adapter so that readers see all of it or nothing: every file goes
into a temp directory beside the destination, is fsynced and hashed, and the
directory is renamed into place last. A failure (disk full) removes the temp
directory, so no partial artifact is ever visible."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def save_weights(path: Path, weights: dict[str, Any]) -> None:
    import mlx.core as mx

    mx.save_safetensors(str(path), weights)


def save_json(path: Path, value: dict[str, Any]) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=True))


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_adapter(dest: Path, weights: dict[str, Any], adapter_config: dict[str, Any]) -> list[dict[str, Any]]:
    """Write adapters.safetensors + adapter_config.json to `dest` atomically; return files with sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        save_weights(tmp / "adapters.safetensors", weights)
        save_json(tmp / "adapter_config.json", adapter_config)
        files = []
        for file in sorted(tmp.iterdir()):
            _fsync(file)
            files.append({"path": file.name, "sha256": sha256_file(file), "size_bytes": file.stat().st_size})
        _fsync(tmp)
        if dest.exists():  # left by an attempt that crashed before registering: replace it whole
            shutil.rmtree(dest)
        os.replace(tmp, dest)
        _fsync(dest.parent)
        return files
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
