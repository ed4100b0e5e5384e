"""Output that must match a JSON schema, a regular expression or a grammar: constrained decoding with
llguidance. Each constrained row's sampler masks, at every step, the tokens that would leave the format
(`Constrained`); rows without a format are untouched, so constrained and free rows share a batch, and
the lean step (raw logits, no log-softmax) stays lean: masking sets logits to -inf, which argmax and
the categorical draw read the same as log-probabilities.

A format is compiled and checked when the request arrives (`constrain`, in the caller's thread): a
schema the engine cannot compile, or a keyword it does not implement, is InvalidArgument naming that
part of the schema. The engine thread only wraps the row's sampler (`Constraint.sampler`).

The mask for a step needs the token drawn at the step before, which the batch reads one step later:
the sampler keeps its own last draw and feeds it to the matcher first. It starts the model's step
(`async_eval`) before computing the mask, so the mask's CPU work overlaps the forward pass."""

from __future__ import annotations

import json
from dataclasses import dataclass

import llguidance
import numpy as np

from inference_svc.decode.vocabulary import vocabulary
from mlxhub.errors import InvalidArgument

JSON_OBJECT, JSON_SCHEMA, REGEX, GRAMMAR = "json_object", "json_schema", "regex", "grammar"
KINDS = (JSON_OBJECT, JSON_SCHEMA, REGEX, GRAMMAR)
# Compact JSON: a small model given free whitespace may write it until its budget ends.
JSON_OPTIONS = {"whitespace_flexible": False}
ANY_OBJECT = {"type": "object"}


@dataclass(frozen=True)
class Format:
    """What a request's output must match: `kind` (one of KINDS) and its `source` (a JSON Schema's JSON
    text, a regular expression, or a grammar in llguidance's Lark dialect; empty for json_object).
    `field` names the request field it came from, for errors."""

    kind: str
    source: str = ""
    field: str = "response_format"


def grammar_of(fmt: Format) -> str:
    """llguidance's grammar for `fmt`, checked; InvalidArgument naming what it cannot compile."""
    if fmt.kind == JSON_OBJECT:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(ANY_OBJECT, defaults=JSON_OPTIONS)
    elif fmt.kind == JSON_SCHEMA:
        try:
            schema = json.loads(fmt.source)
        except json.JSONDecodeError as error:
            raise InvalidArgument(f"{fmt.field} is not valid JSON: {error}", field=fmt.field) from None
        if not isinstance(schema, dict | bool):
            raise InvalidArgument(f"{fmt.field} must be a JSON Schema object", field=fmt.field)
        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(schema, defaults=JSON_OPTIONS)
        except Exception as error:  # noqa: BLE001  (the engine's own words name the part)
            raise InvalidArgument(f"{fmt.field} cannot be compiled: {error}", field=fmt.field) from None
    elif fmt.kind == REGEX:
        grammar = llguidance.LLMatcher.grammar_from_regex(fmt.source)
    elif fmt.kind == GRAMMAR:
        grammar = llguidance.LLMatcher.grammar_from_lark(fmt.source)
    else:
        raise InvalidArgument(f"{fmt.field} must be one of {', '.join(KINDS)}, got {fmt.kind!r}", field=fmt.field)
    what = {JSON_OBJECT: "the JSON object format", JSON_SCHEMA: "the JSON schema", REGEX: "the regular expression",
            GRAMMAR: "the grammar"}[fmt.kind]
    return checked(grammar, what, fmt.field)


def checked(grammar: str, what: str, field: str, tokenizer: llguidance.LLTokenizer | None = None) -> str:
    """`grammar`, once llguidance has validated it (with `tokenizer` when it names special tokens);
    InvalidArgument naming `field` when it cannot be compiled or leaves a part unenforced (a warning:
    refused, never ignored)."""
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, tokenizer)
    if is_error or messages:
        raise InvalidArgument(f"{field}: {what} is not supported by the constrained decoder: " + "; ".join(messages),
                              field=field)
    return grammar


class Constraint:
    """A compiled format for one request on one tokenizer: its matcher, built and warmed (the first mask
    builds the lexer's states, which can take long) in the caller's thread. `sampler` wraps the request's
    sampler; it is used once."""

    def __init__(self, grammar: str, tokenizer: llguidance.LLTokenizer, field: str = "response_format") -> None:
        self.grammar, self.vocab_size = grammar, tokenizer.vocab_size
        self.matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
        self.matcher.compute_bitmask()
        if self.matcher.is_error():
            raise InvalidArgument(f"the format cannot be used with this model's tokenizer: {self.matcher.get_error()}",
                                  field=field)

    def sampler(self, inner) -> Constrained:
        return Constrained(inner, self.matcher, self.vocab_size)


def constrain(fmt: Format, tokenizer) -> Constraint:
    """`fmt` compiled for `tokenizer` (mlx-lm's or Hugging Face's); InvalidArgument when it cannot be.
    Slow the first time for a tokenizer (its vocabulary is read once): call it off the engine thread."""
    grammar = grammar_of(fmt)
    return Constraint(grammar, vocabulary(tokenizer), fmt.field)


def json_schema(schema: dict | str, tokenizer, field: str = "response_format") -> Constraint:
    """Constrain a row to JSON matching `schema` (a dict or its JSON text)."""
    source = schema if isinstance(schema, str) else json.dumps(schema)
    return constrain(Format(JSON_SCHEMA, source, field), tokenizer)


class Constrained:
    """A row's sampler that draws only tokens the format allows (llguidance's matcher, one per row)."""

    def __init__(self, sampler, matcher: llguidance.LLMatcher, vocab_size: int) -> None:
        self.sampler, self.matcher = sampler, matcher
        self.takes_logits = getattr(sampler, "takes_logits", False)
        self._mask = np.zeros((vocab_size + 31) // 32, dtype=np.int32)
        self._pending = None  # the last draw, fed to the matcher at the next call

    def __call__(self, logits):
        import mlx.core as mx

        mx.async_eval(logits)  # the model's step runs while the mask is computed
        if self._pending is not None:
            token, self._pending = int(self._pending.reshape(-1)[0].item()), None
            if not self.matcher.consume_token(token):
                raise RuntimeError(f"the output left its format: {self.matcher.get_error()}")
        self.matcher.unsafe_compute_mask_ptr(self._mask.ctypes.data, self._mask.nbytes)
        if self.matcher.is_error():
            raise RuntimeError(f"the output left its format: {self.matcher.get_error()}")
        allowed = np.unpackbits(self._mask.view(np.uint8), bitorder="little")
        width = logits.shape[-1]
        allowed = allowed[:width] if allowed.size >= width else np.pad(allowed, (0, width - allowed.size))
        token = self.sampler(mx.where(mx.array(allowed.astype(np.bool_)), logits, -mx.inf))
        self._pending = token
        return token

    def rewind(self) -> None:
        """Take back the last draw (not yet fed to the matcher)."""
        self._pending = None
        rewind = getattr(self.sampler, "rewind", None)
        if rewind is not None:
            rewind()
