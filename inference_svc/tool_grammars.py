"""The grammar a reply that calls tools is decoded under, for each tool-call format of mlx-lm's
tokenizer whose arguments are JSON: a call names one of the offered functions and its arguments
match that function's parameters schema (llguidance's `%json`), so they always parse and validate.

A format is described once (`Syntax`): what comes between its start marker (mlx-lm's
`tool_call_start`) and a call's arguments, what closes a call, how calls follow one another, and
how the reader recognizes a call's head while it streams. The same description gives the grammar,
the text a forced call's prompt ends with, and the reader's pattern, so they cannot disagree.

Formats whose arguments are not JSON (pythonic calls, XML-like parameter tags, Gemma's `<|"|>`
strings) have no `Syntax`: their parameters are written as raw text or Python literals that a
JSON schema's grammar cannot describe faithfully (a string's length or pattern, Python's escapes),
so their calls are decoded free and only parsed (`tool_calls.constraint` logs it per request)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inference_svc.decode import constraints
from inference_svc.decode.vocabulary import vocabulary
from mlxhub.errors import InvalidArgument

INDEX = "\x00index"  # a piece of a head: the call's number (Kimi's `functions.name:0`)
# Arguments as the templates write them (`tojson`): no free whitespace, ", " and ": " between.
ARGUMENT_JSON = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
JSON_NAME = r'(?P<json>"(?:[^"\\]|\\.)*")'  # a name written as a JSON string


def _json_head(name: str) -> tuple[str, ...]:
    return ('{"name": ' + json.dumps(name) + ', "arguments": ',)


@dataclass(frozen=True)
class Syntax:
    """How one family writes its calls. A block is `start open call (join call)* close end` (one call
    per block when `join` is None); blocks follow one another apart by `gap` (a Lark expression)
    when `repeat`. A call is `head(name) arguments tail`; a piece that is one of the tokenizer's special
    tokens is referenced by id (the family's markers are, in its own vocabulary), else written as text."""

    parser: str  # mlx-lm's tool parser module
    head: Callable[[str], tuple[str, ...]]
    tail: tuple[str, ...] = ()
    open: str = ""
    close: str = ""
    join: str | None = None
    repeat: bool = True
    gap: str = "SEP?"
    # The reader's pattern of a call's head (after the call before it, if any): its name as `json` or `raw`.
    reads: re.Pattern[str] = re.compile(r"(?!)")

    def head_text(self, name: str) -> str:
        return "".join("0" if piece == INDEX else piece for piece in self.head(name))


HERMES = Syntax(  # <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>, blocks apart by whitespace
    "json_tools", _json_head, ("}",), open="\n", close="\n",
    reads=re.compile(r'\s*\{\s*"name"\s*:\s*' + JSON_NAME + r'\s*,\s*"arguments"\s*:\s*'))
MISTRAL = Syntax(  # [TOOL_CALLS]f[ARGS]{...}[TOOL_CALLS]g[ARGS]{...} (Mistral Small 3.2, Magistral, Devstral)
    "mistral", lambda name: (name, "[ARGS]"), gap="",
    reads=re.compile(r"\s*(?:\[TOOL_CALLS\]\s*)?(?P<raw>[\w-]+)\s*\[ARGS\]\s*"))
MISTRAL_LIST = Syntax(  # [TOOL_CALLS] [{"name": "f", "arguments": {...}}, {...}] (Mistral 7B v0.3, Nemo)
    "mistral", _json_head, ("}",), open=" [", close="]", join=", ", repeat=False,
    reads=re.compile(r'\s*\}?[\s\[,]*\{\s*"name"\s*:\s*' + JSON_NAME + r'\s*,\s*"arguments"\s*:\s*'))
KIMI = Syntax(  # <|tool_calls_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{...}
    "kimi_k2",  # <|tool_call_end|>...<|tool_calls_section_end|>
    lambda name: ("<|tool_call_begin|>", f"functions.{name}:", INDEX, "<|tool_call_argument_begin|>"),
    ("<|tool_call_end|>",), join="", repeat=False,
    reads=re.compile(r"\s*(?:<\|tool_call_end\|>\s*)?<\|tool_call_begin\|>\s*(?:functions\.)?(?P<raw>[^<]+?):\d+\s*"
                     r"<\|tool_call_argument_begin\|>\s*"))
# What each free format writes instead of JSON arguments (for the log line and the docs).
FREE = {"pythonic": "Python keyword arguments", "qwen3_coder": "<parameter=...> tags with raw values",
        "glm47": "<arg_key>/<arg_value> tags with raw values", "minimax_m2": "<parameter name=...> tags with raw values",
        "minicpm5": "<param name=...> tags with raw values", "longcat": "<longcat_arg_key> tags with raw values",
        "gemma4": "Gemma's <|\"|>-quoted strings and bare keys", "function_gemma": "<escape>-quoted key:value pairs",
        "kimi_k3": "typed <|open|>argument tags with raw values", "muse_spark": "<atem:parameter> tags with raw values"}


def parser_name(tokenizer: Any) -> str:
    """Which of mlx-lm's tool parsers the tokenizer uses (`json_tools`, `mistral`, ...)."""
    return getattr(getattr(tokenizer, "tool_parser", None), "__module__", "").rpartition(".")[2]


def syntax_of(tokenizer: Any) -> Syntax | None:
    """The format the tokenizer's template writes calls in, when its arguments are JSON (None: free).
    Mistral's templates write one of two: `name[ARGS]{...}` (those naming `[ARGS]`) or a JSON list."""
    name = parser_name(tokenizer)
    if name == "mistral":
        template = getattr(tokenizer, "chat_template", None)
        return MISTRAL if not isinstance(template, str) or "[ARGS]" in template else MISTRAL_LIST
    return {"json_tools": HERMES, "kimi_k2": KIMI}.get(name)


def forced_prefix(syntax: Syntax | None, start: str, name: str | None) -> str:
    """The text a forced reply starts with: the start marker, then (one function forced, in a JSON
    format) the call's opening up to its arguments, which the model writes."""
    if syntax is None or name is None:
        return start
    return start + syntax.open + syntax.head_text(name)


def reply_grammar(syntax: Syntax, tokenizer: Any, tools: Sequence[Mapping[str, Any]], *, required: bool,
                  forced: str | None, single: bool, fmt: constraints.Format | None = None) -> str:
    """llguidance's grammar of a reply offering `tools` in `syntax`, after `forced_prefix`. `required`:
    calls only (`single`: exactly one, of `forced`); else free text (or text matching `fmt`), or text
    then calls. InvalidArgument naming a function whose parameters the engine cannot compile."""
    names = [tool["function"]["name"] for tool in tools]
    marker = _markers(tokenizer)
    start, end = marker(tokenizer.tool_call_start), marker(tokenizer.tool_call_end or "")
    rules = [f"args_{i}: %json {json.dumps(argument_schema(tool, i))}" for i, tool in enumerate(tools)]
    rules += [f"call_{i}: {_seq(*map(marker, syntax.head(name)), f'args_{i}', *map(marker, syntax.tail))}"
              for i, name in enumerate(names)]
    rules.append(f"every: {' | '.join(f'call_{i}' for i in range(len(names)))}")
    later = f"({_seq(marker(syntax.join), 'every')})*" if syntax.join is not None else ""
    rules.append(f"block: {_seq(start, marker(syntax.open), 'every', later, marker(syntax.close), end)}")
    more = f"({_seq(syntax.gap, 'block')})* {syntax.gap}" if syntax.repeat else ""
    side: list[dict[str, Any]] = []
    if required and forced is not None:  # the prompt ends with the forced call's head
        i = names.index(forced)
        tail = _seq(*map(marker, syntax.tail))
        top = _seq(f"args_{i}", tail, marker(syntax.close), end) if single else \
            _seq(f"args_{i}", tail, later, marker(syntax.close), end, more)
    elif required:  # the prompt ends with the start marker; the model picks the tools
        top = _seq(marker(syntax.open), "every", later, marker(syntax.close), end, more)
    else:
        calls = _seq(marker(syntax.open), "every", later, marker(syntax.close), end, more)
        if fmt is not None:  # the text answer matches the format; a reply that calls starts with the call
            side = json.loads(constraints.grammar_of(fmt))["grammars"]
            side[0]["name"] = "answer"
            top = f"@answer | {_seq('block', more)}"
        elif start.startswith("<["):  # a special token: text cannot contain it
            top = f"TEXT | {_seq('TEXT', start, calls)}"
        else:  # text up to the first start marker (lazily: the marker ends it), then the calls
            rules.append(f"head[lazy]: TEXT {start}")
            top = f"TEXT | {_seq('head', calls)}"
    lark = "\n".join(["%llguidance {}", f"start: {top}", *rules, "TEXT: /(.|\\n)*/", "SEP: /[ \\t\\n]+/",
                      "INDEX: /[0-9]{1,3}/"])
    grammar = json.dumps({"grammars": [{"name": "tool_calls", "lark_grammar": lark}, *side]})
    return constraints.checked(grammar, "the tool-call grammar", "tools", vocabulary(tokenizer))


def argument_schema(tool: Mapping[str, Any], i: int) -> dict[str, Any]:
    """A function's parameters schema as its arguments are decoded; InvalidArgument naming the function
    and the part of its schema the engine cannot compile."""
    function = tool["function"]
    schema = dict(function["parameters"])
    field = f"tools[{i}].parameters"
    try:
        constraints.grammar_of(constraints.Format(constraints.JSON_SCHEMA, json.dumps(schema), field))
    except InvalidArgument as error:
        raise InvalidArgument(f"{error.message} (the parameters of function {function['name']!r})",
                              field=field) from None
    return {**schema, "x-guidance": {**schema.get("x-guidance", {}), **ARGUMENT_JSON}}


def _markers(tokenizer: Any) -> Callable[[str], str]:
    """A piece of a call in Lark: a special token by its id (text never contains one), else its text."""
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    special = {token.content: ident for ident, token in added.items() if token.special}

    def marker(piece: str) -> str:
        if piece == INDEX:
            return "INDEX"
        if piece in special:
            return f"<[{special[piece]}]>"
        return json.dumps(piece) if piece else ""

    return marker


def _seq(*parts: str) -> str:
    """A Lark sequence of the parts, the empty ones (a format's missing marker or separator) left out."""
    return " ".join(part for part in parts if part)
