"""Inspect files the registry is asked to register: datasets (JSONL as mlx-lm
reads them) and model directories (mlx-lm models or adapters).

Everything is streamed, so the checksum the registry records is the checksum
of the bytes it actually read. Problems raise `HubError`s that name the field
and the fix.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from mlxhub.digest import new_sha256, sha256_file
from mlxhub.errors import FailedPrecondition, InvalidArgument, NotFound


@dataclass(frozen=True)
class DatasetInfo:
    path: Path
    sha256: str
    size_bytes: int
    record_count: int
    format: str  # CHAT, COMPLETIONS or TEXT


def resolve_under_roots(raw: str, roots: tuple[Path, ...], field: str = "path") -> Path:
    """Resolve `raw` (relative paths are taken from the first root) and insist that
    the real file, after following every symlink, lies under one of the roots."""
    if not raw:
        raise InvalidArgument(f"{field} is empty; give the path of a file under {roots[0]}", field=field)
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    allowed = ", ".join(str(r) for r in roots)
    if not candidate.exists() and not candidate.is_symlink():
        raise NotFound(
            f"{field} {raw!r}: no such file ({candidate}); put the file under one of: {allowed}",
            field=field,
            resource_type="file",
            resource_name=str(candidate),
        )
    try:
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        raise NotFound(
            f"{field} {raw!r} is a broken symlink; point it at a file under one of: {allowed}",
            field=field,
            resource_type="file",
            resource_name=str(candidate),
        ) from None
    real_roots = [root.resolve() for root in roots]
    if not any(real == root or real.is_relative_to(root) for root in real_roots):
        via = f" (it resolves to {real})" if real != candidate.absolute() else ""
        raise InvalidArgument(
            f"{field} {raw!r} lies outside the data roots{via}; move or copy it under one of: {allowed} "
            "or add its directory to MLXHUB_DATA_ROOTS",
            field=field,
        )
    return real


def _check_record(record: object, line_no: int) -> str:
    """Return the mlx-lm format of one JSONL record, or raise naming the line."""
    if not isinstance(record, dict):
        raise InvalidArgument(f"line {line_no}: expected a JSON object, got {type(record).__name__}", field="path")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            raise InvalidArgument(f"line {line_no}: 'messages' must be a non-empty list", field="path")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise InvalidArgument(f"line {line_no}: messages[{i}] needs a string 'role'", field="path")
            if not isinstance(message.get("content", ""), (str, list)):
                raise InvalidArgument(f"line {line_no}: messages[{i}].content must be a string", field="path")
        return "CHAT"
    if "prompt" in record or "completion" in record:
        for key in ("prompt", "completion"):
            if not isinstance(record.get(key), str):
                raise InvalidArgument(f"line {line_no}: completions records need string 'prompt' and 'completion'", field="path")
        return "COMPLETIONS"
    if "text" in record:
        if not isinstance(record["text"], str):
            raise InvalidArgument(f"line {line_no}: 'text' must be a string", field="path")
        return "TEXT"
    raise InvalidArgument(
        f"line {line_no}: unknown record shape with keys {sorted(record)}; use "
        '{"messages": [...]} (chat), {"prompt", "completion"} (completions) or {"text"} (text)',
        field="path",
    )


def inspect_dataset(path: Path) -> DatasetInfo:
    """A JSONL file's sha256 (the hub's one file digest), size, record count and the one format of
    every record, from one pass: the checksum is that of the bytes whose lines were checked."""
    if not path.is_file():
        raise InvalidArgument(f"path {str(path)!r} is not a regular file", field="path")
    if not os.access(path, os.R_OK):
        raise FailedPrecondition(f"path {str(path)!r} is not readable by the registry service; fix its permissions")
    digest = new_sha256()
    size = count = 0
    fmt = ""
    pending_blank = 0
    with path.open("rb") as handle:
        for line_no, line in enumerate(handle, start=1):
            digest.update(line)
            size += len(line)
            if not line.strip():
                pending_blank = pending_blank or line_no
                continue
            if pending_blank:
                raise InvalidArgument(f"line {pending_blank}: empty line inside the file; remove it", field="path")
            try:
                record = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InvalidArgument(f"line {line_no}: not valid JSON ({exc}); fix or remove that line", field="path") from None
            kind = _check_record(record, line_no)
            if fmt and kind != fmt:
                raise InvalidArgument(
                    f"line {line_no}: {kind.lower()} record in a {fmt.lower()} dataset; every record must have one format",
                    field="path",
                )
            fmt = kind
            count += 1
    if not count:
        raise InvalidArgument(f"path {str(path)!r} holds no records; a dataset needs at least one JSON line", field="path")
    return DatasetInfo(path=path, sha256=digest.hexdigest(), size_bytes=size, record_count=count, format=fmt)


@dataclass(frozen=True)
class ModelDirInfo:
    path: Path
    kind: str  # FULL or ADAPTER
    files: list[dict]


def inspect_model_dir(raw: str) -> ModelDirInfo:
    """Check that `raw` is an mlx-lm model or adapter directory and hash every file in it."""
    if not raw:
        raise InvalidArgument("artifact_path is empty; give an mlx-lm model or adapter directory", field="artifact_path")
    path = Path(raw).expanduser()
    if not path.is_absolute():
        raise InvalidArgument(f"artifact_path {raw!r} must be absolute", field="artifact_path")
    if not path.is_dir():
        raise NotFound(
            f"artifact_path {raw!r} is not an existing directory",
            field="artifact_path",
            resource_type="directory",
            resource_name=raw,
        )
    path = path.resolve()
    if (path / "adapter_config.json").is_file():
        kind, config_name, weights = "ADAPTER", "adapter_config.json", ["adapters.safetensors"]
    else:
        kind, config_name, weights = "FULL", "config.json", sorted(p.name for p in path.glob("*.safetensors"))
    config_path = path / config_name
    if not config_path.is_file():
        raise InvalidArgument(
            f"artifact_path {raw!r} has no config.json or adapter_config.json; register an mlx-lm model "
            "(config.json + *.safetensors) or adapter directory (adapter_config.json + adapters.safetensors)",
            field="artifact_path",
        )
    try:
        config = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"{config_path} is not valid JSON ({exc})", field="artifact_path") from None
    if kind == "FULL" and not (isinstance(config, dict) and config.get("model_type")):
        raise InvalidArgument(f"{config_path} has no 'model_type'; it is not an mlx-lm config", field="artifact_path")
    if not weights or not all((path / w).is_file() for w in weights):
        raise InvalidArgument(f"artifact_path {raw!r} has no {' or '.join(weights) or '*.safetensors'} weights", field="artifact_path")
    files = []
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        files.append({"path": str(file.relative_to(path)), "sha256": sha256_file(file), "size_bytes": file.stat().st_size})
    return ModelDirInfo(path=path, kind=kind, files=files)
