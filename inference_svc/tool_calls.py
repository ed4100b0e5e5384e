"""Tool calls: the request's tools and choice as a chat template takes them, the text a reply
must start with when a call is forced, and the reader that finds the calls in the model's text.

The call format is the model's own: mlx-lm's tokenizer wrapper knows, from the chat template,
the markers around a call (`tool_call_start`/`tool_call_end`, `<tool_call>`…`</tool_call>` for
the Hermes/Qwen family) and the parser for what is between them. A model whose template has no
tool format cannot be asked for tools. The reader works on the detokenized text as it streams:
text outside the markers goes on as text, a call is sent once its end marker (or the end of the
generation) closes it, parsed into a name and its arguments as JSON text.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

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


class ToolCallReader:
    """Finds the tool calls in a reply's text as it streams. `feed` and `finish` return what
    to send: text (str) and complete calls (ToolCall), in order."""

    def __init__(self, start: str, end: str, parser: Callable[[str, Any], Any], tools: Any = None,
                 prefix: str = "") -> None:
        self.start, self.end, self.parser, self.tools = start, end, parser, tools
        self.buffer = ""
        self.inside = prefix.startswith(start) if prefix else False
        if self.inside:
            self.buffer = prefix[len(start):]  # the forced part of the call, already in the prompt
        self.calls = 0

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, use: ToolUse) -> ToolCallReader:
        return cls(tokenizer.tool_call_start, tokenizer.tool_call_end or "", tokenizer.tool_parser,
                   [dict(t) for t in use.tools], forced_prefix(tokenizer, use))

    def feed(self, text: str) -> list[str | ToolCall]:
        self.buffer += text
        out: list[str | ToolCall] = []
        while True:
            if self.inside:
                if not self.end:
                    return out  # a format whose calls run to the end of the reply
                at = self.buffer.find(self.end)
                if at < 0:
                    return out
                out += self._parse(self.buffer[:at], self.end)
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

    def finish(self) -> list[str | ToolCall]:
        """What is left when the reply ends: a call its end marker never closed is parsed as it is
        (some formats end a call with the end of the reply); one that does not parse is text."""
        rest, self.buffer = self.buffer, ""
        if not self.inside:
            return [rest] if rest else []
        self.inside = False
        return self._parse(rest, "")

    def _parse(self, text: str, closing: str) -> list[str | ToolCall]:
        """The calls in one marked span; a span that is no call (it does not parse, or names no
        function) stays text, markers and all, rather than being dropped."""
        try:
            parsed = self.parser(text, self.tools)
        except Exception:  # noqa: BLE001  (each family's parser raises its own kinds)
            return [self.start + text + closing]
        parsed = parsed if isinstance(parsed, list) else [parsed]
        if not all(isinstance(call, dict) and isinstance(call.get("name"), str) for call in parsed):
            return [self.start + text + closing]
        calls: list[str | ToolCall] = []
        for call in parsed:
            arguments = call.get("arguments", {})
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False)
            calls.append(ToolCall(call.get("id") or new_call_id(), call["name"], arguments))
        self.calls += len(calls)
        return calls


def _partial_marker(text: str, marker: str) -> int:
    """How many characters at the end of `text` could be the beginning of `marker`."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:size]):
            return size
    return 0


def read_all(reader: ToolCallReader, text: str) -> tuple[str, list[ToolCall]]:
    """A whole reply's text and calls (a unary answer)."""
    items = reader.feed(text) + reader.finish()
    return "".join(i for i in items if isinstance(i, str)), [i for i in items if isinstance(i, ToolCall)]
