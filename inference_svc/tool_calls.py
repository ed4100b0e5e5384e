"""Tool calls: the request's tools and choice as a chat template takes them, the text a reply
must start with when a call is forced, the grammar a call is decoded under, and the reader that
finds the calls in the model's text.

The call format is the model's own: mlx-lm's tokenizer wrapper knows, from the chat template,
the markers around a call (`tool_call_start`/`tool_call_end`, `<tool_call>`…`</tool_call>` for
the Hermes/Qwen family) and the parser for what is between them. A model whose template has no
tool format cannot be asked for tools.

In the Hermes/Qwen format (a JSON object `{"name": …, "arguments": …}` between the markers) a call
is decoded under a grammar (`constraint`, llguidance's, as `response_format` is): the name is one of
the offered tools and the arguments match that function's parameters schema, so they always parse
and validate. A forced call is constrained from the reply's first token; under `auto` the reply is
free text (only a call's start marker leads into the grammar of a call) or text then calls. Rows
decoding under it share the batch with free rows (`inference_svc.decode.constraints`).

The reader works on the detokenized text as it streams: text outside the markers goes on as text;
a call is sent as OpenAI streams it, its index, id and name first (once the name is read), then its
arguments' JSON text in pieces as they arrive, whose concatenation is the call's whole arguments.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from inference_svc.decode import constraints
from inference_svc.decode.vocabulary import vocabulary
from mlxhub.errors import InvalidArgument
from mlxhub.v1 import inference_pb2 as pb

AUTO, NONE, REQUIRED, FUNCTION = "auto", "none", "required", "function"
MODES = {pb.TOOL_CHOICE_MODE_UNSPECIFIED: AUTO, pb.TOOL_CHOICE_MODE_AUTO: AUTO, pb.TOOL_CHOICE_MODE_NONE: NONE,
         pb.TOOL_CHOICE_MODE_REQUIRED: REQUIRED, pb.TOOL_CHOICE_MODE_FUNCTION: FUNCTION}
JSON_TOOLS = "json_tools"  # mlx-lm's parser of the Hermes/Qwen format: <tool_call>{"name": …, "arguments": …}</tool_call>


@dataclass(frozen=True)
class ToolUse:
    """A chat request's tools (as chat templates take them: OpenAI's `{"type": "function", ...}`)
    and which the reply must call: `auto` (the model decides), `required` (one of them), or
    `function` (the one named)."""

    tools: tuple[Mapping[str, Any], ...]
    choice: str = AUTO
    function: str = ""

    @property
    def forced(self) -> str | None:
        """The function the reply must call: the named one, or the only tool when one is required."""
        if self.choice == FUNCTION:
            return self.function
        if self.choice == REQUIRED and len(self.tools) == 1:
            return self.tools[0]["function"]["name"]
        return None


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # a JSON object, as JSON text


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a streamed call: its first names it (`id`, `name`), the next carry `arguments` text."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


# -- the request -------------------------------------------------------------------------------
def tool_use(tools: Iterable[pb.Tool], choice: pb.ToolChoice, chat: bool) -> ToolUse | None:
    """The request's tools and choice, checked; None when it asks for no tool calls (no tools,
    or `none`: the tools stay out of the prompt and the reply is text)."""
    tools = list(tools)
    mode = MODES.get(choice.mode)
    if mode is None:
        raise InvalidArgument(f"tool_choice.mode {choice.mode} is not a ToolChoiceMode", field="tool_choice.mode")
    if not tools:
        if mode in (REQUIRED, FUNCTION):
            raise InvalidArgument(f"tool_choice {mode!r} needs tools: send the functions in `tools`",
                                  field="tool_choice")
        return None
    if not chat:
        raise InvalidArgument("tools need chat `messages` (rendered with the model's chat template), not a raw prompt",
                              field="tools")
    rendered, names = [], set()
    for i, tool in enumerate(tools):
        if tool.name in names:
            raise InvalidArgument(f"tools[{i}].name {tool.name!r} is given twice; function names must be unique",
                                  field=f"tools[{i}].name")
        names.add(tool.name)
        rendered.append({"type": "function", "function": {
            "name": tool.name, "description": tool.description, "parameters": _parameters(tool.parameters, i)}})
    if mode == FUNCTION and choice.function not in names:
        raise InvalidArgument(f"tool_choice.function {choice.function!r} is not one of the tools "
                              f"({', '.join(sorted(names))})", field="tool_choice.function")
    if mode == NONE:
        return None
    return ToolUse(tuple(rendered), mode, choice.function if mode == FUNCTION else "")


def _parameters(text: str, i: int) -> dict[str, Any]:
    if not text:
        return {"type": "object", "properties": {}}
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"tools[{i}].parameters is not JSON: {exc}", field=f"tools[{i}].parameters") from None
    if not isinstance(schema, dict):
        raise InvalidArgument(f"tools[{i}].parameters must be a JSON Schema object", field=f"tools[{i}].parameters")
    return schema


def template_message(message: pb.ChatMessage, i: int) -> dict[str, Any]:
    """A chat message as chat templates take it: an assistant's calls with their arguments as
    objects (templates write them with `tojson`), a tool's result with the id it answers."""
    rendered: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        if message.role != "assistant":
            raise InvalidArgument(f"messages[{i}].tool_calls: only assistant messages carry tool calls",
                                  field=f"messages[{i}].tool_calls")
        rendered["tool_calls"] = [
            {"id": call.id, "type": "function",
             "function": {"name": call.name, "arguments": _arguments(call.arguments, f"messages[{i}].tool_calls[{j}]")}}
            for j, call in enumerate(message.tool_calls)]
    if message.role == "tool":
        if not message.tool_call_id:
            raise InvalidArgument(f"messages[{i}].tool_call_id is required: a tool message answers the call it names",
                                  field=f"messages[{i}].tool_call_id")
        rendered["tool_call_id"] = message.tool_call_id
    return rendered


def _arguments(text: str, where: str) -> Any:
    try:
        return json.loads(text) if text else {}
    except ValueError as exc:
        raise InvalidArgument(f"{where}.arguments is not JSON: {exc}", field=f"{where}.arguments") from None


# -- the model's format ------------------------------------------------------------------------
def supports_tools(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "has_tool_calling", False))


def parser_name(tokenizer: Any) -> str:
    """Which of mlx-lm's tool parsers the tokenizer uses (`json_tools`, `mistral`, ...)."""
    return getattr(tokenizer.tool_parser, "__module__", "").rpartition(".")[2]


def forced_prefix(tokenizer: Any, use: ToolUse) -> str:
    """The text the reply starts with when a call is required: the call's start marker and, in
    the Hermes/Qwen format, the forced function's name up to its arguments (the model writes
    the arguments and closes the call)."""
    if use.choice not in (REQUIRED, FUNCTION):
        return ""
    name = use.forced
    if name is not None and parser_name(tokenizer) == JSON_TOOLS:
        return f'{tokenizer.tool_call_start}\n{{"name": {json.dumps(name)}, "arguments": '
    return tokenizer.tool_call_start


# -- the grammar of a call -------------------------------------------------------------------
# Arguments as Hermes/Qwen templates write them (`tojson`): no free whitespace, ", " and ": " between.
ARGUMENT_JSON = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def constraint(fmt: constraints.Format | None, use: ToolUse | None, tokenizer: Any) -> constraints.Constraint | None:
    """What the reply is decoded under: the tool-call grammar when the request offers tools to a
    model in the Hermes/Qwen format (with `response_format` as the grammar of its text answer under
    `auto`), else the `response_format`'s (None: free). InvalidArgument naming a function whose
    parameters schema the engine cannot compile. Slow the first time for a tokenizer: call it off
    the engine thread."""
    calls = use is not None and supports_tools(tokenizer) and parser_name(tokenizer) == JSON_TOOLS
    if not calls:
        return constraints.constrain(fmt, tokenizer) if fmt is not None else None
    return constraints.Constraint(call_grammar(use, tokenizer, fmt), vocabulary(tokenizer), "tools")


def call_grammar(use: ToolUse, tokenizer: Any, fmt: constraints.Format | None = None) -> str:
    """llguidance's grammar of a reply with `use`'s tools in the Hermes/Qwen format, after the
    prompt's forced prefix (`forced_prefix`): each call `<tool_call>\\n{"name": <a tool>, "arguments":
    <its schema>}\\n</tool_call>`, calls apart by whitespace. Under `auto`, free text (or text
    matching `fmt`), or text then calls; forced, calls only (one for a named function)."""
    start, end = _marker(tokenizer, tokenizer.tool_call_start), _marker(tokenizer, tokenizer.tool_call_end)
    names = [tool["function"]["name"] for tool in use.tools]
    rules = [f"args_{i}: %json {json.dumps(_argument_schema(tool, i))}" for i, tool in enumerate(use.tools)]
    for i, name in enumerate(names):
        head = '{"name": ' + json.dumps(name) + ', "arguments": '
        rules.append(f"call_{i}: {json.dumps(head)} args_{i} \"}}\"")
    every = " | ".join(f"call_{i}" for i in range(len(names)))
    rules.append(f"block: {start} \"\\n\" ({every}) \"\\n\" {end}")
    more = "(SEP? block)* SEP?"
    side: list[dict[str, Any]] = []
    forced = use.forced
    if use.choice == FUNCTION or (use.choice == REQUIRED and forced is not None):
        i = names.index(forced)
        tail = "" if use.choice == FUNCTION else f" {more}"
        top = f"start: args_{i} \"}}\\n\" {end}{tail}"
    elif use.choice == REQUIRED:  # the prompt ends with the start marker; the model picks the tool
        top = f"start: \"\\n\" ({every}) \"\\n\" {end} {more}"
    else:
        calls = f"\"\\n\" ({every}) \"\\n\" {end} {more}"
        if fmt is not None:  # the text answer matches the format; a reply that calls starts with the call
            side = json.loads(constraints.grammar_of(fmt))["grammars"]
            side[0]["name"] = "answer"
            top = f"start: @answer | block {more}"
        elif start.startswith("<") and not start.startswith('"'):  # a special token: text cannot contain it
            top = f"start: TEXT | TEXT {start} {calls}"
        else:  # text up to the first start marker (lazily: the marker ends it), then the call
            rules.append(f"head[lazy]: TEXT {start}")
            top = f"start: TEXT | head {calls}"
    lark = "\n".join(["%llguidance {}", top, *rules, "TEXT: /(.|\\n)*/", "SEP: /[ \\t\\n]+/"])
    grammar = json.dumps({"grammars": [{"name": "tool_calls", "lark_grammar": lark}, *side]})
    return constraints.checked(grammar, "the tool-call grammar", "tools")


def _argument_schema(tool: Mapping[str, Any], i: int) -> dict[str, Any]:
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


def _marker(tokenizer: Any, marker: str) -> str:
    """A call marker in the grammar: a special token by its name (text never contains one), else its text."""
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    if any(token.content == marker and token.special for token in added.values()):
        return marker
    return json.dumps(marker)


# A Hermes/Qwen call's head, up to its arguments' value: read as soon as it has arrived, it names the call.
HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"arguments"\s*:\s*')


class ToolCallReader:
    """Finds the tool calls in a reply's text as it streams. `feed` and `finish` return what
    to send, in order: text (str) and pieces of calls (ToolCallDelta: a call's index, id and name
    first, then its arguments' text in pieces).

    In the Hermes/Qwen format a call is named as soon as its head (`{"name": …, "arguments": `) is
    read, and its arguments object streams as it arrives: the pieces are the JSON text of the
    arguments as the model wrote it, so together they are the call's arguments. In other formats
    (or a call whose head reads otherwise) the call is read whole once its end marker closes it."""

    def __init__(self, start: str, end: str, parser: Callable[[str, Any], Any], tools: Any = None,
                 prefix: str = "") -> None:
        self.start, self.end, self.parser, self.tools = start, end, parser, tools
        self.streams = getattr(parser, "__module__", "").rpartition(".")[2] == JSON_TOOLS
        self.buffer = ""
        self.inside = prefix.startswith(start) if prefix else False
        if self.inside:
            self.buffer = prefix[len(start):]  # the forced part of the call, already in the prompt
        self.calls = 0
        self._open: _OpenCall | None = None  # the call being streamed

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, use: ToolUse) -> ToolCallReader:
        return cls(tokenizer.tool_call_start, tokenizer.tool_call_end or "", tokenizer.tool_parser,
                   [dict(t) for t in use.tools], forced_prefix(tokenizer, use))

    def feed(self, text: str) -> list[str | ToolCallDelta]:
        self.buffer += text
        out: list[str | ToolCallDelta] = []
        while True:
            if self.inside:
                at = self.buffer.find(self.end) if self.end else -1
                if at < 0:  # not closed yet (or a format whose calls run to the end of the reply)
                    out += self._stream(self.buffer)
                    return out
                out += self._close(self.buffer[:at], self.end)
                self.buffer, self.inside = self.buffer[at + len(self.end):], False
            else:
                at = self.buffer.find(self.start)
                if at < 0:
                    keep = _partial_marker(self.buffer, self.start)
                    if len(self.buffer) > keep:
                        out.append(self.buffer[:len(self.buffer) - keep])
                        self.buffer = self.buffer[len(self.buffer) - keep:]
                    return out
                if at:
                    out.append(self.buffer[:at])
                self.buffer, self.inside = self.buffer[at + len(self.start):], True

    def finish(self) -> list[str | ToolCallDelta]:
        """What is left when the reply ends: a call its end marker never closed is read as it is
        (some formats end a call with the end of the reply); one that does not parse is text."""
        rest, self.buffer = self.buffer, ""
        if not self.inside:
            return [rest] if rest else []
        self.inside = False
        return self._close(rest, "")

    def _stream(self, span: str) -> list[ToolCallDelta]:
        """The new pieces of the call being read (its name once its head is in, then its arguments)."""
        out: list[ToolCallDelta] = []
        if self._open is None and self.streams:
            head = HEAD.match(span)
            if head is None:
                return out  # not (yet) a head: a call read otherwise is read whole when closed
            self._open = _OpenCall(self.calls, new_call_id(), json.loads(head.group(1)), head.end())
            self.calls += 1
            out.append(ToolCallDelta(self._open.index, self._open.id, self._open.name))
        if self._open is not None and self._open.streams(span):
            piece = self._open.more(span)
            if piece:
                out.append(ToolCallDelta(self._open.index, arguments=piece))
        return out

    def _close(self, span: str, closing: str) -> list[str | ToolCallDelta]:
        """The rest of one marked span: the rest of a call being streamed, or the calls it holds;
        a span that is no call (it does not parse, or names no function) stays text, markers and
        all, rather than being dropped."""
        out: list[str | ToolCallDelta] = self._stream(span)
        if self._open is not None:
            call, self._open = self._open, None
            if not call.streams(span):  # arguments that are no object (a JSON string of one): sent parsed, whole
                out.append(ToolCallDelta(call.index, arguments=_arguments_text(self.parser, span, self.tools)))
            return out
        try:
            parsed = self.parser(span, self.tools)
        except Exception:  # noqa: BLE001  (each family's parser raises its own kinds)
            return [self.start + span + closing]
        parsed = parsed if isinstance(parsed, list) else [parsed]
        if not all(isinstance(call, dict) and isinstance(call.get("name"), str) for call in parsed):
            return [self.start + span + closing]
        for call in parsed:
            arguments = call.get("arguments", {})
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False)
            out.append(ToolCallDelta(self.calls, call.get("id") or new_call_id(), call["name"], arguments))
            self.calls += 1
        return out


def _arguments_text(parser: Callable[[str, Any], Any], span: str, tools: Any) -> str:
    """A call's arguments as JSON text, read from its whole span ("" if it does not parse)."""
    try:
        call = parser(span, tools)
    except Exception:  # noqa: BLE001  (each family's parser raises its own kinds)
        return ""
    arguments = call.get("arguments", {}) if isinstance(call, dict) else {}
    return arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)


class _OpenCall:
    """A streamed call whose arguments object begins at `at` in its span: how far it has been sent,
    and where the object ends (its closing brace, outside strings)."""

    def __init__(self, index: int, ident: str, name: str, at: int) -> None:
        self.index, self.id, self.name = index, ident, name
        self.at = self.scanned = at
        self.depth, self.in_string, self.escaped, self.done = 0, False, False, False

    def streams(self, span: str) -> bool | None:
        """Whether the arguments are an object (streamed as they arrive); None until their first character."""
        first = span[self.at:].lstrip()[:1]
        return first == "{" if first else None

    def more(self, span: str) -> str:
        """The arguments' text that arrived since the last call (none past the object's end)."""
        i = self.scanned
        while self.depth == 0 and i < len(span) and span[i].isspace():  # before the object: not part of it
            i += 1
        sent = i
        while i < len(span) and not self.done:
            char = span[i]
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif char == "\\":
                    self.escaped = True
                elif char == '"':
                    self.in_string = False
            elif char == '"':
                self.in_string = True
            elif char in "{[":
                self.depth += 1
            elif char in "}]":
                self.depth -= 1
                self.done = self.depth == 0
            i += 1
        self.scanned = i
        return span[sent:i]


def _partial_marker(text: str, marker: str) -> int:
    """How many characters at the end of `text` could be the beginning of `marker`."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:size]):
            return size
    return 0


def read_all(reader: ToolCallReader, text: str) -> tuple[str, list[ToolCall]]:
    """A whole reply's text and calls (a unary answer): each call's pieces joined."""
    items = reader.feed(text) + reader.finish()
    return "".join(i for i in items if isinstance(i, str)), joined(i for i in items if isinstance(i, ToolCallDelta))


def joined(deltas: Iterable[ToolCallDelta]) -> list[ToolCall]:
    """Whole calls from their streamed pieces (the first of each index names it)."""
    calls: dict[int, list[str]] = {}
    for delta in deltas:
        call = calls.setdefault(delta.index, ["", "", ""])
        call[0], call[1] = call[0] or delta.id, call[1] or delta.name
        call[2] += delta.arguments
    return [ToolCall(*calls[index]) for index in sorted(calls)]
