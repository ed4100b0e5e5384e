"""The first records of a registered dataset, for PreviewDataset.

The work is bounded whatever the file holds: at most `limit` records and
`MAX_READ_BYTES` of the file are read, a line longer than `MAX_RECORD_BYTES`
is not parsed, and strings are shortened to `MAX_STRING`, so one call never
holds a server thread or much memory for long.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxhub.errors import FailedPrecondition, HubError
from registry_svc.files import resolve_under_roots

MAX_READ_BYTES = 1 << 20
MAX_RECORD_BYTES = 64 << 10
MAX_STRING = 4096
# Deeper records are shown unparsed: a Struct nests two messages per JSON level, and protobuf
# parsers refuse messages nested about 100 deep.
MAX_DEPTH = 32
UNPARSED = "_unparsed"


@dataclass
class Preview:
    records: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity: a Struct could not carry them as JSON


class _TooDeep(ValueError):
    pass


def _shorten(value: Any, preview: Preview, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise _TooDeep
    if isinstance(value, str) and len(value) > MAX_STRING:
        preview.truncated = True
        return value[:MAX_STRING]
    if isinstance(value, dict):
        return {str(k): _shorten(v, preview, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v, preview, depth + 1) for v in value]
    return value


def _unparsed(line: bytes, preview: Preview) -> dict[str, Any]:
    text = line.decode("utf-8", errors="replace").rstrip("\r\n")
    if len(text) > MAX_STRING:
        preview.truncated = True
    return {UNPARSED: text[:MAX_STRING]}


def _parse(line: bytes, preview: Preview) -> dict[str, Any]:
    try:
        record = json.loads(line, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # ValueError includes UnicodeDecodeError and JSONDecodeError
        return _unparsed(line, preview)
    if not isinstance(record, dict):
        return _unparsed(line, preview)
    try:
        return _shorten(record, preview)
    except _TooDeep:
        preview.truncated = True
        return _unparsed(line, preview)


def checked_path(name: str, raw: str, roots: tuple[Path, ...]) -> Path:
    """The dataset's file, still there and still under a data root (as registration demands)."""
    if not Path(raw).exists():
        raise FailedPrecondition(
            f"dataset {name!r}: its file {raw} is gone; put it back, or register the new file as another dataset"
        )
    try:
        path = resolve_under_roots(raw, roots)
    except HubError as exc:
        raise FailedPrecondition(f"dataset {name!r}: its file can no longer be read: {exc.message}") from None
    if not path.is_file() or not os.access(path, os.R_OK):
        raise FailedPrecondition(
            f"dataset {name!r}: its file {path} is not a readable regular file; fix it or its permissions"
        )
    return path


def read_preview(path: Path, limit: int) -> Preview:
    """Parse the first `limit` non-blank lines of `path`, within the byte budget."""
    preview = Preview()
    budget = MAX_READ_BYTES
    with path.open("rb") as handle:
        while budget > 0:
            line = handle.readline(min(MAX_RECORD_BYTES + 1, budget))
            if not line:
                return preview  # end of file
            budget -= len(line)
            complete = line.endswith(b"\n") or len(line) <= MAX_RECORD_BYTES and not handle.peek(1)
            if not line.strip() and complete:
                continue
            if len(preview.records) >= limit:
                preview.truncated = True  # another record follows
                return preview
            if complete:
                preview.records.append(_parse(line, preview))
                continue
            # Longer than a record may be (or than the budget left): show its start, skip the rest.
            preview.truncated = True
            preview.records.append(_unparsed(line, preview))
            while budget > 0:
                rest = handle.readline(min(MAX_RECORD_BYTES, budget))
                budget -= len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
        at_end = not handle.peek(1)
    preview.truncated = preview.truncated or not at_end  # the budget ran out before the end of the file
    return preview
