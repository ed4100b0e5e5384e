"""A loaded tokenizer's vocabulary as the grammar engine sees it: each token's exact bytes
(llguidance's `LLTokenizer`, built from the Hugging Face tokenizer's own description). Constrained
decoding masks tokens by their bytes (`inference_svc.decode.constraints`), and log-probabilities
name tokens by them. Building one takes about a second, so it is done once per tokenizer."""

from __future__ import annotations

import copy
import threading
import weakref

import llguidance

_built: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_building = threading.Lock()


class UnsupportedTokenizer(Exception):
    """The tokenizer has no Hugging Face "fast" description for the grammar engine to read."""


def vocabulary(tokenizer) -> llguidance.LLTokenizer:
    """The grammar engine's view of `tokenizer` (mlx-lm's wrapper or a Hugging Face fast tokenizer), cached."""
    with _building:
        found = _built.get(tokenizer)
        if found is None:
            found = _built[tokenizer] = _build(tokenizer)
        return found


def _build(tokenizer) -> llguidance.LLTokenizer:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise UnsupportedTokenizer("this model's tokenizer is not a Hugging Face fast tokenizer")
    backend = copy.copy(backend)  # its JSON form, without the padding and truncation a caller may have set
    backend.no_padding()
    backend.no_truncation()
    eos = sorted(getattr(tokenizer, "eos_token_ids", None) or [tokenizer.eos_token_id])
    return llguidance.LLTokenizer(backend.to_str(), eos_token=eos)


def token_bytes(tokenizer, token: int) -> bytes:
    """The exact bytes of one token (special tokens by their name, as the tokenizer writes them)."""
    return vocabulary(tokenizer).decode_bytes([token])
