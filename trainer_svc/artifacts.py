"""Write a trained adapter so that readers see all of it or nothing: every file goes
into a temp directory beside the destination, is fsynced and hashed, and the
directory is renamed into place last. A failure (disk full) removes the temp
directory, so no partial artifact is ever visible. A written adapter is never
replaced: each attempt writes a directory of its own, since a registered version
points at one and records its files' hashes."""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from mlxhub.digest import sha256_file


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
    """Write adapters.safetensors + adapter_config.json to `dest` atomically; return files with sha256.
    `dest` must not exist yet (FileExistsError otherwise)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        raise FileExistsError(errno.EEXIST, "an adapter directory is never replaced", str(dest))
    tmp = dest.parent / f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        save_weights(tmp / "adapters.safetensors", weights)
        save_json(tmp / "adapter_config.json", adapter_config)
        files = []
        for file in sorted(tmp.iterdir()):
            _fsync(file)
            file.chmod(0o444)  # read-only: a registered version records these bytes' hashes
            files.append({"path": file.name, "sha256": sha256_file(file), "size_bytes": file.stat().st_size})
        _fsync(tmp)
        os.rename(tmp, dest)
        _fsync(dest.parent)
        return files
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
