"""What the registry records about a dataset file comes from one read of it."""

from __future__ import annotations

import hashlib
import json

import pytest

from mlxhub.errors import InvalidArgument
from registry_svc.files import inspect_dataset


def test_the_checksum_covers_every_byte_read_including_trailing_blank_lines(tmp_path):
    path = tmp_path / "chat.jsonl"
    lines = [json.dumps({"messages": [{"role": "user", "content": f"hi {i}"}]}) for i in range(3)]
    path.write_bytes(("\n".join(lines) + "\n\n\n").encode())
    info = inspect_dataset(path)
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (info.size_bytes, info.record_count, info.format) == (path.stat().st_size, 3, "CHAT")


def test_the_file_is_opened_once(tmp_path, monkeypatch):
    path = tmp_path / "text.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b"}\n')
    opened = []
    real_open = open

    def counting_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    monkeypatch.setattr("io.open", counting_open)  # what Path.open calls
    assert inspect_dataset(path).record_count == 2
    assert opened.count(str(path)) == 1


def test_a_bad_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "a"}\nnot json\n')
    with pytest.raises(InvalidArgument, match="line 2"):
        inspect_dataset(path)
