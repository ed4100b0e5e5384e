"""Tool calls: the request's tools and choice as a chat template takes them, the text a reply
must start with when a call is forced, the grammar a call is decoded under, and the reader that
finds the calls in the model's text.

The call format is the model's own: mlx-lm's tokenizer wrapper knows, from the chat template,
the markers around a call (`tool_call_start`/`tool_call_end`, `<tool_call>`…`</tool_call>` for
the Hermes/Qwen family) and the parser for what is between them. A model whose template has no
tool format cannot be asked for tools.

In a format whose arguments are JSON (Hermes/Qwen, Mistral's two, Kimi K2: `tool_grammars`) a call
is decoded under a grammar (`constraint`, llguidance's, as `response_format` is): the name is one
of the offered tools and the arguments match that function's parameters schema, so they always
parse and validate. A forced call is constrained from the reply's first token; under `auto` the
reply is free text (only a call's start marker leads into the grammar of a call) or text then
calls. Rows decoding under it share the batch with free rows (`inference_svc.decode.constraints`).
Formats whose arguments are not JSON are decoded free, said in a warning per request.

The reader works on the detokenized text as it streams: text outside the markers goes on as text;
a call is sent as OpenAI streams it, its index, id and name first (once the name is read), then its
arguments' JSON text in pieces as they arrive, whose concatenation is the call's whole arguments.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from inference_svc import tool_grammars
from inference_svc.decode import constraints
from inference_svc.decode.vocabulary import vocabulary
from mlxhub.errors import InvalidArgument
from mlxhub.v1 import inference_pb2 as pb

log = logging.getLogger(__name__)

AUTO, NONE, REQUIRED, FUNCTION = "auto", "none", "required", "function"
MODES = {pb.TOOL_CHOICE_MODE_UNSPECIFIED: AUTO, pb.TOOL_CHOICE_MODE_AUTO: AUTO, pb.TOOL_CHOICE_MODE_NONE: NONE,
         pb.TOOL_CHOICE_MODE_REQUIRED: REQUIRED, pb.TOOL_CHOICE_MODE_FUNCTION: FUNCTION}


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


def forced_prefix(tokenizer: Any, use: ToolUse) -> str:
    """The text the reply starts with when a call is required: the call's start marker and, in a
    format whose arguments are JSON, the forced function's call up to its arguments (the model
    writes the arguments and closes the call)."""
    if use.choice not in (REQUIRED, FUNCTION):
        return ""
    return tool_grammars.forced_prefix(tool_grammars.syntax_of(tokenizer), tokenizer.tool_call_start, use.forced)


# -- the grammar of a call -------------------------------------------------------------------
def constraint(fmt: constraints.Format | None, use: ToolUse | None, tokenizer: Any) -> constraints.Constraint | None:
    """What the reply is decoded under: the tool-call grammar when the request offers tools to a
    model whose format writes JSON arguments (with `response_format` as the grammar of its text
    answer under `auto`), else the `response_format`'s (None: free). InvalidArgument naming a
    function whose parameters schema the engine cannot compile. Slow the first time for a
    tokenizer: call it off the engine thread."""
    calls = use is not None and supports_tools(tokenizer)
    if calls and tool_grammars.syntax_of(tokenizer) is None:
        parser = tool_grammars.parser_name(tokenizer)
        log.warning("tool-call arguments are NOT constrained to their schemas: this model's call format "
                    "(mlx-lm's %r parser) writes %s, which a JSON schema's grammar cannot describe faithfully; "
                    "the calls are decoded free and only parsed", parser, tool_grammars.FREE.get(parser, "no JSON"))
        calls = False
    if not calls:
        return constraints.constrain(fmt, tokenizer) if fmt is not None else None
    return constraints.Constraint(call_grammar(use, tokenizer, fmt), vocabulary(tokenizer), "tools")


def call_grammar(use: ToolUse, tokenizer: Any, fmt: constraints.Format | None = None) -> str:
    """llguidance's grammar of a reply with `use`'s tools in the model's format, after the prompt's
    forced prefix (`forced_prefix`). Under `auto`, free text (or text matching `fmt`), or text then
    calls; forced, calls only (one for a named function)."""
    syntax = tool_grammars.syntax_of(tokenizer)
    if syntax is None:
        raise InvalidArgument(f"tool calls in mlx-lm's {tool_grammars.parser_name(tokenizer)!r} format cannot be constrained",
                              field="tools")
    return tool_grammars.reply_grammar(syntax, tokenizer, use.tools, required=use.choice in (REQUIRED, FUNCTION),
                                       forced=use.forced, single=use.choice == FUNCTION, fmt=fmt)


class ToolCallReader:
    """Finds the tool calls in a reply's text as it streams. `feed` and `finish` return what
    to send, in order: text (str) and pieces of calls (ToolCallDelta: a call's index, id and name
    first, then its arguments' text in pieces).

    In a format whose arguments are JSON (`syntax`) a call is named as soon as its head (in the
    Hermes/Qwen format `{"name": …, "arguments": `, in Mistral's `name[ARGS]`) is read, and its
    arguments object streams as it arrives: the pieces are the JSON text of the arguments as the
    model wrote it, so together they are the call's arguments; the calls that follow in the same
    span are read the same way. In other formats (or a span whose head reads otherwise) the calls
    are read whole, by mlx-lm's parser, once the end marker (or the reply's end) closes them."""

    def __init__(self, start: str, end: str, parser: Callable[[str, Any], Any], tools: Any = None,
                 prefix: str = "", syntax: tool_grammars.Syntax | None = None) -> None:
        self.start, self.end, self.parser, self.tools = start, end, parser, tools
        if syntax is None and getattr(parser, "__module__", "").rpartition(".")[2] == tool_grammars.HERMES.parser:
            syntax = tool_grammars.HERMES
        self.heads = syntax.reads if syntax is not None else None
        self.buffer = ""
        self.inside = prefix.startswith(start) if prefix else False
        if self.inside:
            self.buffer = prefix[len(start):]  # the forced part of the call, already in the prompt
        self.calls = 0
        self._open: _OpenCall | None = None  # the call being streamed
        self._at = 0  # where the next call's head may begin in the span being read
        self._named = 0  # calls named in the span being read

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, use: ToolUse) -> ToolCallReader:
        return cls(tokenizer.tool_call_start, tokenizer.tool_call_end or "", tokenizer.tool_parser,
                   [dict(t) for t in use.tools], forced_prefix(tokenizer, use), tool_grammars.syntax_of(tokenizer))

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
        """The new pieces of the calls in the span so far (each one's name once its head is in, then
        its arguments as they arrive)."""
        out: list[ToolCallDelta] = []
        while self.heads is not None:
            if self._open is None:
                head = self.heads.match(span, self._at)
                if head is None:
                    return out  # not (yet) a head: a span read otherwise is read whole when closed
                name = json.loads(head["json"]) if "json" in self.heads.groupindex else head["raw"]
                self._open = _OpenCall(self.calls, new_call_id(), name, head.end())
                self.calls, self._named = self.calls + 1, self._named + 1
                out.append(ToolCallDelta(self._open.index, self._open.id, self._open.name))
            if not self._open.streams(span):
                return out
            piece = self._open.more(span)
            if piece:
                out.append(ToolCallDelta(self._open.index, arguments=piece))
            if not self._open.done:
                return out
            self._at, self._open = self._open.scanned, None  # its object closed: another call may follow
        return out

    def _close(self, span: str, closing: str) -> list[str | ToolCallDelta]:
        """The rest of one marked span: the rest of the calls being streamed, or the calls it holds;
        a span that is no call (it does not parse, or names no function) stays text, markers and
        all, rather than being dropped."""
        out: list[str | ToolCallDelta] = self._stream(span)
        call, named = self._open, self._named
        self._open, self._at, self._named = None, 0, 0
        if call is not None and not call.streams(span):  # arguments that are no object (a JSON string of one)
            out.append(ToolCallDelta(call.index, arguments=_arguments_text(self.parser, span, self.tools)))
        if named:
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
    call = call[-1] if isinstance(call, list) and call else call  # the span's last call is the one still open
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
