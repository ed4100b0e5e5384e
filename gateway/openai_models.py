"""The OpenAI routes' wire shapes as typed pydantic models, field for field as OpenAI's API has them:
chat completions and completions (requests, answers, streamed chunks), models, and the error object.

Requests are checked here, field by field, so a bad request is refused naming the field's path
(`messages[0].content[1].type`). Fields of OpenAI's API that the hub does not implement yet are
declared too, so a request that asks for one is refused by name instead of answered as if it had
not asked; fields the API does not have are ignored (clients written for newer API versions send them).
Types are strict (JSON's types, no coercion): `"max_tokens": "5"` or `"stream": 1` is a 400.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.body import json_kind

INT32_MAX, INT64_MIN, INT64_MAX = 2**31 - 1, -(2**63), 2**63 - 1
MAX_TEMPERATURE = 2.0  # OpenAI's range is [0, 2]
MAX_TOP_LOGPROBS = 20  # OpenAI's bound (the inference service declares the same)

FinishReason = Literal["stop", "length", "tool_calls"]


# ---------------------------------------------------------------------------------------------
# Requests


def _asks_nothing(value: Any) -> bool:
    return not value


def not_implemented(asks_nothing: Callable[[Any], bool] = _asks_nothing) -> AfterValidator:
    """A field of OpenAI's API the hub does not implement yet: fine while its value asks for nothing
    (clients may send the default), else refused by name: ignoring it would answer something other
    than what the client asked for."""

    def check(value: Any) -> Any:
        if not asks_nothing(value):
            raise PydanticCustomError(
                "not_implemented", "is not implemented by MLX Hub yet; leave it out of the request"
            )
        return value

    return AfterValidator(check)


NotImplementedField = Annotated[Any, not_implemented()]


def _one_or_more_strings(value: Any) -> Any:
    """OpenAI's `stop`: a string or a list of strings; a single string is a list of one."""
    if isinstance(value, str):
        return [value]
    if value is None or isinstance(value, list):
        return value
    raise PydanticCustomError("string_or_strings", "must be a string or a list of strings")


class Strict(BaseModel):
    """JSON's own types, no coercion; unknown fields ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class StreamOptions(Strict):
    include_usage: bool | None = None


_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _keep_alive_seconds(value: Any) -> Any:
    """Ollama's `keep_alive`: seconds as a number, or a duration such as "5m" or "1h30m"; negative pins."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        sign, body = (-1.0, text[1:]) if text.startswith("-") else (1.0, text.removeprefix("+"))
        parts = _DURATION_PART.findall(body)
        if body == "0" or (parts and "".join(n + u for n, u in parts) == body):
            return sign * sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    raise PydanticCustomError(
        "keep_alive", 'must be seconds (a number) or a duration such as "5m" or "1h30m"; 0 unloads the model '
        "after this answer, a negative value keeps it loaded until it is unloaded")


class SamplingRequest(Strict):
    """What chat completions and completions share: the model, streaming and sampling."""

    model: str = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_completion_tokens: int | None = Field(None, ge=1, le=INT32_MAX)
    max_tokens: int | None = Field(None, ge=1, le=INT32_MAX)
    temperature: float | None = Field(None, ge=0, le=MAX_TEMPERATURE, allow_inf_nan=False)
    top_p: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    top_k: int | None = Field(None, ge=0, le=INT32_MAX)  # not OpenAI's, a common extension (vLLM's too)
    min_p: float | None = None  # not OpenAI's; checked by the inference service
    repetition_penalty: float | None = None  # not OpenAI's; checked by the inference service
    seed: int | None = Field(None, ge=INT64_MIN, le=INT64_MAX)
    stop: Annotated[list[str] | None, BeforeValidator(_one_or_more_strings)] = None
    n: int | None = None
    presence_penalty: NotImplementedField = None
    frequency_penalty: NotImplementedField = None
    logit_bias: NotImplementedField = None
    # not OpenAI's: Ollama's, how long the model stays loaded after this request (seconds; None: the default)
    keep_alive: Annotated[float | None, BeforeValidator(_keep_alive_seconds)] = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int | None) -> int | None:
        if n not in (None, 1):
            raise PydanticCustomError("one_choice", "must be 1: only n=1 is supported")
        return n

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def token_limit(self) -> int | None:
        """`max_completion_tokens` (chat's current name) or else `max_tokens`."""
        return self.max_tokens if self.max_completion_tokens is None else self.max_completion_tokens


class TextContentPart(Strict):
    type: Literal["text"]
    text: str

    @field_validator("type", mode="before")
    @classmethod
    def _text_only(cls, kind: Any) -> Any:
        if kind != "text":
            raise PydanticCustomError(
                "content_part", "is {kind}; only 'text' content parts are implemented yet", {"kind": repr(kind)}
            )
        return kind


def _as_parts(content: Any) -> Any:
    """A message's content: a string (one text part) or a list of content parts."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return content
    raise PydanticCustomError(
        "content", "must be a string or a list of text parts, not {kind}", {"kind": json_kind(content)}
    )


class FunctionCall(Strict):
    name: str
    arguments: str  # a JSON object, as JSON text


class ToolCallParam(Strict):
    """A call an assistant message made, sent back with the conversation."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(Strict):
    role: str  # which roles exist is the inference service's to say (declared in inference.proto)
    content: Annotated[list[TextContentPart], BeforeValidator(_as_parts)] = Field(None, validate_default=True)
    tool_calls: list[ToolCallParam] | None = None  # an assistant's calls
    tool_call_id: str | None = None  # a "tool" message: the call it answers

    @property
    def text(self) -> str:
        return "".join(part.text for part in self.content)

    @model_validator(mode="before")
    @classmethod
    def _calls_without_content(cls, message: Any) -> Any:
        """An assistant message that only called tools has `content` null (or leaves it out)."""
        if isinstance(message, dict) and message.get("tool_calls") and message.get("content") is None:
            return {**message, "content": ""}
        return message

    @property
    def hub_role(self) -> str:
        """OpenAI's `developer` role is what chat templates call `system`."""
        return "system" if self.role == "developer" else self.role


def _non_empty_list(value: Any) -> Any:
    if not isinstance(value, list) or not value:
        raise PydanticCustomError("non_empty_list", "must be a non-empty list")
    return value


FUNCTION_NAME = r"^[a-zA-Z0-9_-]{1,64}$"  # OpenAI's rule for a function's name


class FunctionDefinition(Strict):
    name: str = Field(pattern=FUNCTION_NAME)
    description: str | None = None
    parameters: dict[str, Any] | None = None  # the arguments' JSON Schema
    # Arguments are decoded under `parameters` whether or not `strict` is set (in every tool-call format whose arguments are JSON).
    strict: bool | None = None


class ToolDefinition(Strict):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(Strict):
    name: str


class NamedToolChoice(Strict):
    type: Literal["function"]
    function: NamedFunction


TOOL_CHOICES = ("none", "auto", "required")


def _tool_choice(value: Any) -> Any:
    """OpenAI's `tool_choice`: a mode, or the function the reply must call."""
    if value is None or value in TOOL_CHOICES:
        return value
    function = value.get("function") if isinstance(value, dict) else None
    if isinstance(function, dict) and value.get("type") == "function" and isinstance(function.get("name"), str):
        return NamedToolChoice(type="function", function=NamedFunction(name=function["name"]))
    raise PydanticCustomError(
        "tool_choice", 'must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}'
    )


class JsonSchemaFormat(Strict):
    """`response_format.json_schema`: the schema the answer must match (enforced whether or not `strict`)."""

    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(Strict):
    """`response_format`: plain text, any JSON object, or JSON matching a schema."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise PydanticCustomError("json_schema_missing", "needs json_schema when type is 'json_schema'")
        return self


class ChatCompletionRequest(SamplingRequest):
    """POST /chat/completions."""

    messages: Annotated[list[ChatMessage], BeforeValidator(_non_empty_list)]
    tools: list[ToolDefinition] | None = None
    tool_choice: Annotated[Any, BeforeValidator(_tool_choice)] = None
    functions: NotImplementedField = None
    function_call: Annotated[Any, not_implemented(lambda v: v in (None, "none"))] = None
    response_format: ResponseFormat | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    audio: NotImplementedField = None
    modalities: Annotated[Any, not_implemented(lambda v: v in (None, ["text"]))] = None
    prediction: NotImplementedField = None

    @field_validator("top_logprobs")
    @classmethod
    def _needs_logprobs(cls, top: int | None, info: ValidationInfo) -> int | None:
        if top and not info.data.get("logprobs"):
            raise PydanticCustomError("top_logprobs", "needs logprobs: true")
        return top

    @property
    def logprob_alternatives(self) -> int | None:
        """None: no log-probabilities; n: each token's, with its n most likely alternatives."""
        return (self.top_logprobs or 0) if self.logprobs else None


def _single_prompt(prompt: Any) -> Any:
    """OpenAI's `prompt` may be a list of prompts; the hub answers one, so a list of one is that one."""
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise PydanticCustomError("prompt", "must be a non-empty string")
    return prompt


class CompletionRequest(SamplingRequest):
    """POST /completions."""

    prompt: Annotated[str, BeforeValidator(_single_prompt)]
    response_format: ResponseFormat | None = None  # not OpenAI's on completions; the same as on chat
    # The number of most likely alternatives to return with each token's log-probability (0: none).
    logprobs: int | None = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    echo: NotImplementedField = None
    suffix: NotImplementedField = None
    best_of: Annotated[Any, not_implemented(lambda v: v in (None, 1))] = None

    @property
    def logprob_alternatives(self) -> int | None:
        return self.logprobs


# ---------------------------------------------------------------------------------------------
# Validation errors, said as the hub says them: "<field path> <what is wrong>"

_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be a boolean",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "finite_number": "must be a finite number",
    "greater_than_equal": "must be at least {ge}, got {input}",
    "less_than_equal": "must be at most {le}, got {input}",
}


# Errors raised by the validators above, worded to follow the field's path.
_OWN_ERRORS = {"not_implemented", "string_or_strings", "one_choice", "content_part", "content", "non_empty_list",
               "prompt", "top_logprobs", "json_schema_missing", "tool_choice", "keep_alive"}  # fmt: skip


def field_path(loc: tuple[str | int, ...]) -> str:
    """pydantic's location as the request spells it: ('messages', 0, 'content') -> 'messages[0].content'."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else part
    return path


def first_violation(error: ValidationError) -> tuple[str, str]:
    """(field path, message naming it) for the first thing wrong with a request."""
    problem = error.errors(include_url=False)[0]
    path = field_path(problem["loc"])
    template = _MESSAGES.get(problem["type"])
    if template is None:
        detail = problem["msg"] if problem["type"] in _OWN_ERRORS else f"is not valid: {problem['msg']}"
    else:
        detail = template.format(input=problem.get("input"), **problem.get("ctx", {}))
    return path, f"{path} {detail}"


# ---------------------------------------------------------------------------------------------
# Answers


class Shape(BaseModel):
    model_config = ConfigDict(frozen=True)


class PromptTokensDetails(Shape):
    cached_tokens: int


class CompletionUsage(Shape):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


class CalledFunction(Shape):
    name: str
    arguments: str  # a JSON object, as JSON text


class ToolCall(Shape):
    id: str
    type: Literal["function"] = "function"
    function: CalledFunction


class AssistantMessage(Shape):
    """The reply; one that only called tools has `content` null."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCall] | None = None


class TopLogprob(Shape):
    """One of the most likely tokens at a position: its text, log-probability and UTF-8 bytes."""

    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprob(TopLogprob):
    """A generated token's log-probability, with the most likely tokens at its position."""

    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(Shape):
    """A chat choice's `logprobs`: one entry per generated token of `content`."""

    content: list[TokenLogprob] | None
    refusal: list[TokenLogprob] | None = None


class CompletionLogprobs(Shape):
    """A text completion choice's `logprobs`: per generated token, its text, log-probability, most
    likely alternatives ({token: logprob}) and its character offset in the prompt and text so far."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]] | None
    text_offset: list[int]


class ChatCompletionChoice(Shape):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(Shape):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatCompletionChoice]
    usage: CompletionUsage


class CompletionChoice(Shape):
    index: int = 0
    text: str
    finish_reason: FinishReason | None
    logprobs: CompletionLogprobs | None = None


class CompletionChunk(Shape):
    """A chunk of a streamed text completion: its text so far, `finish_reason` null until the last."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]


class Completion(CompletionChunk):
    """A text completion; streamed, the extra last chunk (`stream_options.include_usage`, no choices)."""

    usage: CompletionUsage


class ChoiceDelta(Shape):
    content: str


class FirstChoiceDelta(Shape):
    """The first chunk's delta also names the role."""

    role: Literal["assistant"] = "assistant"
    content: str


class ToolCallStart(Shape):
    """A streamed tool call's first delta: its id and the function's name."""

    index: int
    id: str
    type: Literal["function"] = "function"
    function: CalledFunction  # arguments "" here; they follow in ToolCallArguments


class FunctionArguments(Shape):
    arguments: str


class ToolCallArguments(Shape):
    """More of a streamed tool call's arguments (JSON text, joined in order)."""

    index: int
    function: FunctionArguments


class ToolCallsDelta(Shape):
    tool_calls: list[ToolCallStart | ToolCallArguments]


class FirstToolCallsDelta(ToolCallsDelta):
    """A stream whose reply starts with a tool call: the first delta names the role, no content."""

    role: Literal["assistant"] = "assistant"
    content: None = None


class ChatCompletionChunkChoice(Shape):
    index: int = 0
    delta: FirstChoiceDelta | ChoiceDelta | FirstToolCallsDelta | ToolCallsDelta
    finish_reason: FinishReason | None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(Shape):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatCompletionChunkChoice]


class ChatCompletionUsageChunk(ChatCompletionChunk):
    """The extra last chunk of a stream with `stream_options.include_usage`: no choices, the usage."""

    usage: CompletionUsage


class Model(Shape):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(Shape):
    object: Literal["list"] = "list"
    data: list[Model]


class ErrorObject(Shape):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(Shape):
    error: ErrorObject
