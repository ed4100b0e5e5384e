"""OpenAI-compatible endpoints under `/openai/v1` (chat/completions, completions, models,
models/{id}), so the official `openai` client and tools built on it work against the hub.

Requests become InferenceService / RegistryService calls on the gateway's upstream
channels (same auth, request id and trace headers as every route). Requests are
checked and answers built as the typed shapes of `gateway.openai_models`; this module
translates between them and the hub's protos. `model` in responses is the exact
version that produced the text (`name/versions/N`).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import grpc
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.body import parse_json_object, read_body
from gateway.errors import GatewayError, invalid_argument, status_from_exception, status_json
from gateway.openai_models import (
    AssistantMessage,
    CalledFunction,
    ChatCompletion,
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionChunkChoice,
    ChatCompletionRequest,
    ChatCompletionUsageChunk,
    ChatMessage,
    ChoiceDelta,
    ChoiceLogprobs,
    Completion,
    CompletionChoice,
    CompletionChunk,
    CompletionLogprobs,
    CompletionRequest,
    CompletionUsage,
    ErrorObject,
    ErrorResponse,
    FirstChoiceDelta,
    FirstToolCallsDelta,
    FunctionArguments,
    Model,
    ModelList,
    NamedToolChoice,
    PromptTokensDetails,
    SamplingRequest,
    TokenLogprob,
    ToolCall,
    ToolCallArguments,
    ToolCallsDelta,
    ToolCallStart,
    TopLogprob,
    first_violation,
)
from gateway.upstream import DisconnectWatch, upstream_metadata
from mlxhub.errors import NotFound
from mlxhub.names import parse_reference
from mlxhub.v1 import inference_pb2 as pb
from mlxhub.v1 import inference_pb2_grpc, registry_pb2, registry_pb2_grpc

PREFIX = "/openai/v1"
# The inference service's response format fields, as OpenAI's requests name them.
FORMAT_PARAMS = {"response_format.json_schema": "response_format.json_schema.schema",
                 "response_format.json_object": "response_format"}
TOOL_PARAMETERS = re.compile(r"tools\[(\d+)\]\.parameters")  # the service's name for a function's schema
FINISH = {pb.FINISH_REASON_STOP: "stop", pb.FINISH_REASON_LENGTH: "length", pb.FINISH_REASON_CANCELLED: "stop",
          pb.FINISH_REASON_TOOL_CALLS: "tool_calls"}
TOOL_CHOICE = {None: pb.TOOL_CHOICE_MODE_UNSPECIFIED, "auto": pb.TOOL_CHOICE_MODE_AUTO,
               "none": pb.TOOL_CHOICE_MODE_NONE, "required": pb.TOOL_CHOICE_MODE_REQUIRED}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
Parsed = TypeVar("Parsed", bound=SamplingRequest)


def serves(path: str) -> bool:
    """Whether `path` is one of these routes, so its errors take OpenAI's shape."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def request_param(field: str | None, asked: SamplingRequest) -> str | None:
    """The request field an upstream field violation is about: `sampling.temperature` -> `temperature`."""
    if field in FORMAT_PARAMS:
        return FORMAT_PARAMS[field]
    if field is not None and (tool := TOOL_PARAMETERS.fullmatch(field)):
        return f"tools[{tool.group(1)}].function.parameters"
    if field is None or not field.startswith("sampling."):
        return field
    name = field.removeprefix("sampling.")
    if name == "max_tokens" and asked.max_completion_tokens is not None:
        return "max_completion_tokens"
    return name


def json_response(shape: BaseModel, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(to_json(shape), status_code=status_code, headers=headers, media_type="application/json")


def error_response(
    error: BaseException, headers: dict[str, str] | None = None, asked: SamplingRequest | None = None
) -> Response:
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}; with the request
    (`asked`), an upstream violation's field is named as the request named it."""
    status, http_status = status_from_exception(error)
    param = getattr(error, "field", None)
    for detail in status_json(status)["details"] if param is None else ():
        for violation in detail.get("fieldViolations", []):
            param = violation.get("field")
    message = status.message
    if asked is not None and param is not None:
        renamed = request_param(param, asked)
        message, param = message.replace(param, renamed), renamed
    code = next((c.name for c in grpc.StatusCode if c.value[0] == status.code), "UNKNOWN").lower()
    kind = ERROR_TYPES.get(http_status, "api_error")
    error_object = ErrorObject(message=message, type=kind, param=param, code=code)
    return json_response(ErrorResponse(error=error_object), http_status, headers)


def parse(shape: type[Parsed], body: dict[str, Any]) -> Parsed:
    """The request as `shape`, or INVALID_ARGUMENT naming the first field that is wrong."""
    try:
        return shape.model_validate(body)
    except ValidationError as error:
        field, message = first_violation(error)
        raise invalid_argument(message, field=field) from None


def sampling(request: SamplingRequest) -> pb.SamplingParams:
    """The request's sampling as the inference service takes it (0 is "the service's default")."""
    params = pb.SamplingParams(
        temperature=1.0 if request.temperature is None else request.temperature,
        top_p=request.top_p or 0.0,
        max_tokens=request.token_limit or 0,
        top_k=request.top_k or 0,
        min_p=request.min_p or 0.0,
        repetition_penalty=request.repetition_penalty or 0.0,
        stop=request.stop or (),
    )
    if request.seed is not None:
        params.seed, params.has_seed = request.seed, True
    return params


def sse(shape: BaseModel, exclude: dict[str, Any] | None = None) -> bytes:
    """One server-sent event carrying `shape` as JSON (once per token: pydantic-core's `to_json`
    writes the bytes directly, without `model_dump_json`'s str round trip)."""
    return b"data: " + to_json(shape, exclude=exclude) + b"\n\n"


def format_fields(asked: SamplingRequest) -> dict[str, Any]:
    """The request's `response_format` as the inference service's (none for plain text)."""
    wanted = asked.response_format
    if wanted is None or wanted.type == "text":
        return {}
    if wanted.type == "json_object" or wanted.json_schema.schema_ is None:
        return {"response_format": pb.ResponseFormat(json_object=True)}
    return {"response_format": pb.ResponseFormat(json_schema=json.dumps(wanted.json_schema.schema_))}


def keep_alive_fields(asked: SamplingRequest) -> dict[str, Any]:
    """The request's `keep_alive` (Ollama's) as the inference service's; unset leaves the server's default."""
    return {} if asked.keep_alive is None else {"keep_alive_seconds": asked.keep_alive}


def logprob_fields(asked: SamplingRequest) -> dict[str, Any]:
    """The request's `logprobs` / `top_logprobs` as the inference service's request fields."""
    alternatives = asked.logprob_alternatives
    return {} if alternatives is None else {"logprobs": True, "top_logprobs": alternatives}


def _top(entry: pb.TopLogprob | pb.TokenLogprob) -> TopLogprob:
    return TopLogprob(token=entry.token, logprob=entry.logprob, bytes=list(entry.token_bytes))


def chat_logprobs(entries) -> ChoiceLogprobs:
    """A chat choice's `logprobs` from the inference service's per-token log-probabilities."""
    return ChoiceLogprobs(content=[
        TokenLogprob(token=e.token, logprob=e.logprob, bytes=list(e.token_bytes),
                     top_logprobs=[_top(t) for t in e.top_logprobs])
        for e in entries
    ])


def completion_logprobs(entries, offset: int) -> CompletionLogprobs:
    """A text completion choice's `logprobs`; `offset`: characters of prompt and text before these tokens."""
    offsets = []
    for e in entries:
        offsets.append(offset)
        offset += len(e.token)
    return CompletionLogprobs(
        tokens=[e.token for e in entries], token_logprobs=[e.logprob for e in entries],
        top_logprobs=[{t.token: t.logprob for t in e.top_logprobs} for e in entries], text_offset=offsets,
    )


def chat_message(message: ChatMessage) -> pb.ChatMessage:
    calls = [pb.ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments) for c in message.tool_calls or ()]
    return pb.ChatMessage(role=message.hub_role, content=message.text, tool_calls=calls,
                          tool_call_id=message.tool_call_id or "")


def tool_fields(chat: ChatCompletionRequest) -> dict[str, Any]:
    """The request's `tools` and `tool_choice` as the inference service's request fields."""
    if chat.tools is None and chat.tool_choice is None:
        return {}
    tools = [pb.Tool(name=t.function.name, description=t.function.description or "",
                     parameters=json.dumps(t.function.parameters) if t.function.parameters is not None else "")
             for t in chat.tools or ()]
    if isinstance(chat.tool_choice, NamedToolChoice):
        choice = pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_FUNCTION, function=chat.tool_choice.function.name)
    else:
        choice = pb.ToolChoice(mode=TOOL_CHOICE[chat.tool_choice])
    return {"tools": tools, "tool_choice": choice}


def tool_calls(deltas) -> list[ToolCall] | None:
    """The whole calls from a stream's tool-call deltas (id and name first, then arguments, per index)."""
    calls: dict[int, dict[str, str]] = {}
    for delta in deltas:
        call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
        call["id"], call["name"] = call["id"] or delta.id, call["name"] or delta.name
        call["arguments"] += delta.arguments
    return [ToolCall(id=c["id"], function=CalledFunction(name=c["name"], arguments=c["arguments"]))
            for _, c in sorted(calls.items())] or None


def _usage(usage: pb.Usage) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=usage.cached_prompt_tokens),
    )


class ChatAnswers:
    """Chat completions' answers from the inference service's stream messages."""

    id_prefix = "chatcmpl"

    @staticmethod
    def whole(ident: str, created: int, final: pb.GenerateStreamResponse, text: str, logprobs=None,
              offset: int = 0, calls: list[ToolCall] | None = None) -> ChatCompletion:
        message = AssistantMessage(content=text or None, tool_calls=calls) if calls else AssistantMessage(content=text)
        choice = ChatCompletionChoice(message=message, finish_reason=FINISH[final.finish_reason],
                                      logprobs=None if logprobs is None else chat_logprobs(logprobs))
        return ChatCompletion(
            id=ident, created=created, model=final.model_version, choices=[choice], usage=_usage(final.usage)
        )

    @staticmethod
    def chunk(
        ident: str, created: int, message: pb.GenerateStreamResponse, finish: str | None, first: bool,
        logprobs: bool = False, offset: int = 0,
    ) -> ChatCompletionChunk:
        delta = FirstChoiceDelta(content=message.text) if first else ChoiceDelta(content=message.text)
        entries = chat_logprobs(message.logprobs) if logprobs else None
        return ChatCompletionChunk(
            id=ident,
            created=created,
            model=message.model_version,
            choices=[ChatCompletionChunkChoice(delta=delta, finish_reason=finish, logprobs=entries)],
        )

    @staticmethod
    def tool_chunks(
        ident: str, created: int, message: pb.GenerateStreamResponse, first: bool
    ) -> list[ChatCompletionChunk]:
        """A message's tool-call deltas as OpenAI streams them: a call's first with its id and name
        (arguments ""), then its arguments in pieces."""
        deltas: list[ToolCallsDelta] = []
        for call in message.tool_calls:
            if call.id or call.name:
                start = ToolCallStart(index=call.index, id=call.id,
                                      function=CalledFunction(name=call.name, arguments=""))
                deltas.append(FirstToolCallsDelta(tool_calls=[start]) if first and not deltas
                              else ToolCallsDelta(tool_calls=[start]))
            if call.arguments:
                more = ToolCallArguments(index=call.index, function=FunctionArguments(arguments=call.arguments))
                deltas.append(ToolCallsDelta(tool_calls=[more]))
        return [ChatCompletionChunk(id=ident, created=created, model=message.model_version,
                                    choices=[ChatCompletionChunkChoice(delta=delta, finish_reason=None)])
                for delta in deltas]

    @staticmethod
    def usage_chunk(ident: str, created: int, final: pb.GenerateStreamResponse) -> ChatCompletionUsageChunk:
        return ChatCompletionUsageChunk(
            id=ident, created=created, model=final.model_version, choices=[], usage=_usage(final.usage)
        )


class TextAnswers:
    """Completions' answers from the inference service's stream messages."""

    id_prefix = "cmpl"

    @staticmethod
    def whole(ident: str, created: int, final: pb.GenerateStreamResponse, text: str, logprobs=None,
              offset: int = 0, calls: list[ToolCall] | None = None) -> Completion:  # (no tools without chat)
        choice = CompletionChoice(text=text, finish_reason=FINISH[final.finish_reason],
                                  logprobs=None if logprobs is None else completion_logprobs(logprobs, offset))
        return Completion(
            id=ident, created=created, model=final.model_version, choices=[choice], usage=_usage(final.usage)
        )

    @staticmethod
    def chunk(
        ident: str, created: int, message: pb.GenerateStreamResponse, finish: str | None, first: bool,
        logprobs: bool = False, offset: int = 0,
    ) -> CompletionChunk:
        entries = completion_logprobs(message.logprobs, offset) if logprobs else None
        return CompletionChunk(
            id=ident,
            created=created,
            model=message.model_version,
            choices=[CompletionChoice(text=message.text, finish_reason=finish, logprobs=entries)],
        )

    @staticmethod
    def usage_chunk(ident: str, created: int, final: pb.GenerateStreamResponse) -> Completion:
        return Completion(id=ident, created=created, model=final.model_version, choices=[], usage=_usage(final.usage))


Answers = type[ChatAnswers] | type[TextAnswers]


class OpenAI:
    def __init__(self, gateway) -> None:
        self.gateway = gateway

    def _inference(self):
        return inference_pb2_grpc.InferenceServiceStub(self.gateway.upstreams.channel("inference"))

    def _registry(self):
        return registry_pb2_grpc.RegistryServiceStub(self.gateway.upstreams.channel("registry"))

    async def _read(self, request: Request, shape: type[Parsed]) -> Parsed:
        body = parse_json_object(await read_body(request, self.gateway.settings.max_request_bytes))
        return parse(shape, body)

    async def chat_completions(self, request: Request) -> Response:
        chat = await self._read(request, ChatCompletionRequest)
        messages = [chat_message(message) for message in chat.messages]
        generate = pb.GenerateStreamRequest(model=chat.model, messages=messages, sampling=sampling(chat),
                                            **logprob_fields(chat), **format_fields(chat), **tool_fields(chat),
                                            **keep_alive_fields(chat))
        return await self._answer(request, chat, generate, ChatAnswers)

    async def completions(self, request: Request) -> Response:
        completion = await self._read(request, CompletionRequest)
        generate = pb.GenerateStreamRequest(
            model=completion.model, prompt=completion.prompt, sampling=sampling(completion),
            **logprob_fields(completion), **format_fields(completion), **keep_alive_fields(completion),
        )
        return await self._answer(request, completion, generate, TextAnswers)

    async def _answer(
        self, request: Request, asked: SamplingRequest, generate: pb.GenerateStreamRequest, answers: Answers
    ) -> Response:
        call = self._inference().GenerateStream(generate, metadata=upstream_metadata(request))
        watch = DisconnectWatch(request, call)
        try:
            first = await call.read()
        except grpc.RpcError as error:
            watch.stop()
            call.cancel()
            return error_response(error, asked=asked)  # its field named as the request names it
        except BaseException:
            watch.stop()
            call.cancel()
            raise
        ident = f"{answers.id_prefix}-{uuid.uuid4().hex}"
        created = int(time.time())
        wants_logprobs = asked.logprob_alternatives is not None
        offset = len(getattr(asked, "prompt", ""))  # a completion's text offsets count the prompt's characters
        if not asked.stream:
            parts, logprobs, calls, message = [], [], [], first
            try:
                while message is not grpc.aio.EOF and not message.HasField("usage"):
                    parts.append(message.text)
                    calls.extend(message.tool_calls)
                    logprobs.extend(message.logprobs)
                    message = await call.read()
            finally:
                watch.stop()
            if message is grpc.aio.EOF:
                raise GatewayError(grpc.StatusCode.CANCELLED, "generation ended without a result")
            kept = logprobs if wants_logprobs else None
            whole = answers.whole(ident, created, message, "".join(parts), kept, offset, tool_calls(calls))
            return json_response(whole)
        chunks = self._chunks(answers, ident, created, call, first, watch, asked.include_usage, wants_logprobs,
                              offset)
        return StreamingResponse(chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def _chunks(
        self, answers: Answers, ident: str, created: int, call, first, watch: DisconnectWatch, include_usage: bool,
        logprobs: bool = False, offset: int = 0,
    ) -> AsyncIterator[bytes]:
        message, is_first = first, True
        try:
            while message is not grpc.aio.EOF:
                finish = FINISH[message.finish_reason] if message.HasField("usage") else None
                if message.tool_calls:  # its text (if any), then each call: its name, then its arguments
                    if message.text:
                        yield sse(answers.chunk(ident, created, message, finish, is_first, logprobs, offset))
                        is_first = False
                    for chunk in ChatAnswers.tool_chunks(ident, created, message, is_first):
                        yield sse(chunk)
                else:
                    yield sse(answers.chunk(ident, created, message, finish, is_first, logprobs, offset))
                offset += sum(len(e.token) for e in message.logprobs)
                is_first = False
                if finish is not None and include_usage:
                    yield sse(answers.usage_chunk(ident, created, message))
                message = await call.read()
            yield b"data: [DONE]\n\n"
        except grpc.RpcError as error:
            status, _ = status_from_exception(error)
            failure = ErrorObject(message=status.message, type="api_error", code=error.code().name.lower())
            yield sse(ErrorResponse(error=failure), exclude={"error": {"param"}})  # a stream's error names no field
        finally:
            watch.stop()
            call.cancel()

    async def models(self, request: Request) -> Response:
        data, token = [], ""
        while True:
            page = await self._registry().ListModels(
                registry_pb2.ListModelsRequest(page_size=1000, page_token=token), metadata=upstream_metadata(request)
            )
            for model in page.models:
                data.append(_model_entry(model.name, model))
                data += [_model_entry(f"{model.name}@{alias}", model) for alias in sorted(model.aliases)]
            token = page.next_page_token
            if not token:
                return json_response(ModelList(data=data))

    async def model(self, request: Request) -> Response:
        """One model by an id that `models` lists (`name`, `name@alias`) or that answers name (`name/versions/N`)."""
        ident = request.path_params["model"]
        missing = NotFound(f"the model {ident!r} does not exist", resource_type="Model", resource_name=ident)
        try:
            reference = parse_reference(ident)
        except ValueError:
            raise missing from None
        metadata = upstream_metadata(request)
        model = (
            await self._registry().GetModel(registry_pb2.GetModelRequest(name=reference.name), metadata=metadata)
        ).model
        if reference.alias and reference.alias not in model.aliases:
            raise missing
        if reference.version:
            version = (
                await self._registry().GetModelVersion(
                    registry_pb2.GetModelVersionRequest(name=reference.name, version=reference.version),
                    metadata=metadata,
                )
            ).version
            return json_response(_model_entry(ident, model, created=version.create_time.seconds))
        return json_response(_model_entry(ident, model))


def _model_entry(ident: str, model: registry_pb2.Model, created: int | None = None) -> Model:
    return Model(
        id=ident,
        created=model.create_time.seconds if created is None else created,
        owned_by=model.created_by or "mlx-hub",
    )


def routes(gateway) -> list[Route]:
    """The routes under PREFIX; their errors (and 404 / 405 within PREFIX) take OpenAI's shape in the app."""
    api = OpenAI(gateway)
    return [
        Route("/chat/completions", gateway.authenticated(api.chat_completions), methods=["POST"]),
        Route("/completions", gateway.authenticated(api.completions), methods=["POST"]),
        Route("/models", gateway.authenticated(api.models), methods=["GET"]),
        Route("/models/{model:path}", gateway.authenticated(api.model), methods=["GET"]),
    ]
