"""Turn a request's chat messages or raw prompt into token ids, in the caller's thread.

The engine thread decodes every running stream; tokenizing there would pause them all for
as long as a prompt takes (seconds for a few MB of text). The tokenizers (Hugging Face's,
in Rust) release the GIL while they encode, so the request's own thread does it while the
engine goes on. Tokenizers are loaded once per model directory and shared with the loader;
one whose files changed on disk is loaded afresh.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlx_lm.utils import load_tokenizer

from inference_svc import tool_calls
from mlxhub import bounds
from mlxhub.errors import FailedPrecondition, InvalidArgument
from mlxhub.v1 import inference_pb2

MAX_MESSAGES = bounds.of(inference_pb2.GenerateRequest, "messages").max_items  # chat messages in one request
TOKENIZERS_KEPT = 8  # model directories whose tokenizer stays loaded


def load(path: str) -> Any:
    """mlx-lm's tokenizer for the model directory `path`, with the end-of-sequence ids of its config."""
    config_file = Path(path) / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    eos = config.get("eos_token_id")
    return load_tokenizer(Path(path), eos_token_ids=[eos] if isinstance(eos, int) else eos)


def _signature(path: str) -> tuple:
    """Name, size and mtime of the directory's files other than the weights (the tokenizer's among them)."""
    try:
        files = [f for f in Path(path).iterdir() if f.suffix != ".safetensors" and f.is_file()]
        return tuple(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files))
    except OSError as exc:
        raise FailedPrecondition(f"cannot read the model directory {path}: {exc}", resource_type="directory",
                                 resource_name=path) from None


class Tokenizers:
    """The tokenizers of recently used model directories, safe to use from any thread."""

    def __init__(self, kept: int = TOKENIZERS_KEPT) -> None:
        self.kept = kept
        self._loaded: OrderedDict[str, tuple[tuple, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str) -> Any:
        signature = _signature(path)
        with self._lock:
            if path in self._loaded and self._loaded[path][0] == signature:
                self._loaded.move_to_end(path)
                return self._loaded[path][1]
        try:
            tokenizer = load(path)  # outside the lock: another directory's requests need not wait
        except Exception as exc:  # noqa: BLE001  (transformers raises many kinds for a broken tokenizer)
            raise FailedPrecondition(f"cannot load the tokenizer of {path}: {exc}", resource_type="directory",
                                     resource_name=path) from None
        with self._lock:
            self._loaded[path] = (signature, tokenizer)
            self._loaded.move_to_end(path)
            while len(self._loaded) > self.kept:
                self._loaded.popitem(last=False)
        return tokenizer


def check_messages(messages: Sequence | None) -> None:
    """The bound the gRPC requests declare (and the services check there), for callers of the engine itself."""
    if messages is not None and len(messages) > MAX_MESSAGES:
        raise InvalidArgument(f"messages holds {len(messages)} messages; at most {MAX_MESSAGES} are allowed in one "
                              "request", field="messages")


def encode(tokenizer: Any, version: str, messages: list[dict[str, Any]] | None, prompt: str,
           tools: tool_calls.ToolUse | None = None) -> list[int]:
    """The prompt's token ids: messages through the model's chat template (with the request's
    tools, and a forced call's opening when one is required), or the raw prompt."""
    check_messages(messages)
    if messages is not None:
        if not getattr(tokenizer, "chat_template", None):
            raise InvalidArgument(f"{version} has no chat template; send a raw `prompt` instead", field="messages")
        if tools is None:
            tokens = tokenizer.apply_chat_template(messages, add_generation_prompt=True)
        else:
            tokens = _with_tools(tokenizer, version, messages, tools)
    else:
        tokens = tokenizer.encode(prompt)
    if not tokens:
        raise InvalidArgument("the prompt encodes to no tokens", field="prompt")
    return tokens if isinstance(tokens, list) else list(tokens)


def _with_tools(tokenizer: Any, version: str, messages: list[dict[str, Any]], tools: tool_calls.ToolUse) -> list[int]:
    """Rendered to text first: a required call's opening is appended after the generation prompt, so
    the reply starts inside the call (the template's tokens are the same either way)."""
    if not tool_calls.supports_tools(tokenizer):
        raise InvalidArgument(f"{version} does not support tool calls: its chat template has no tool-call format; "
                              "leave `tools` out or use a model whose template has one", field="tools")
    text = tokenizer.apply_chat_template(messages, tools=[dict(t) for t in tools.tools], add_generation_prompt=True,
                                         tokenize=False)
    return tokenizer.encode(text + tool_calls.forced_prefix(tokenizer, tools), add_special_tokens=False)
