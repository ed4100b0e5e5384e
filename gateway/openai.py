"""OpenAI-compatible endpoints under `/openai/v1` (chat/completions, completions, models,
models/{id}), so the official `openai` client and tools built on it work against the hub.

Requests become InferenceService / RegistryService calls on the gateway's upstream
channels (same auth, request id and trace headers as every route); answers and
errors take OpenAI's shapes. `model` in responses is the exact version that
produced the text (`name/versions/N`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.body import json_kind, parse_json_object, read_body
from gateway.errors import GatewayError, invalid_argument, status_from_exception, status_json
from gateway.upstream import DisconnectWatch, upstream_metadata
from mlxhub.errors import NotFound
from mlxhub.names import parse_reference
from mlxhub.v1 import inference_pb2 as pb
from mlxhub.v1 import inference_pb2_grpc, registry_pb2, registry_pb2_grpc

PREFIX = "/openai/v1"
FINISH = {pb.FINISH_REASON_STOP: "stop", pb.FINISH_REASON_LENGTH: "length", pb.FINISH_REASON_CANCELLED: "stop"}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 405: "invalid_request_error", 409: "conflict_error",
               413: "invalid_request_error", 429: "rate_limit_error"}
INT32_MAX, INT64_MIN, INT64_MAX = 2**31 - 1, -(2**63), 2**63 - 1
MAX_TEMPERATURE = 2.0  # OpenAI's range is [0, 2]


def _off(value: Any) -> bool:
    return not value


# Request fields of OpenAI's API that the hub does not implement yet, each with the test that the
# value asks for nothing (clients may send the default). Anything else is a 400 naming the field:
# ignoring it would answer something other than what the client asked for.
NOT_IMPLEMENTED_CHAT: dict[str, Callable[[Any], bool]] = {
    "tools": _off, "tool_choice": lambda v: v in (None, "none"), "functions": _off,
    "function_call": lambda v: v in (None, "none"), "response_format": lambda v: v in (None, {"type": "text"}),
    "logprobs": _off, "top_logprobs": _off, "logit_bias": _off, "audio": _off,
    "modalities": lambda v: v in (None, ["text"]), "prediction": _off,
    "presence_penalty": _off, "frequency_penalty": _off,
}  # fmt: skip
NOT_IMPLEMENTED_COMPLETIONS: dict[str, Callable[[Any], bool]] = {
    "logprobs": _off, "logit_bias": _off, "echo": _off, "suffix": _off, "best_of": lambda v: v in (None, 1),
    "presence_penalty": _off, "frequency_penalty": _off,
}  # fmt: skip


def serves(path: str) -> bool:
    """Whether `path` is one of these routes, so its errors take OpenAI's shape."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def request_param(field: str | None, body: dict[str, Any]) -> str | None:
    """The request field an upstream field violation is about: `sampling.temperature` -> `temperature`."""
    if field is None or not field.startswith("sampling."):
        return field
    name = field.removeprefix("sampling.")
    if name == "max_tokens" and body.get("max_completion_tokens") is not None:
        return "max_completion_tokens"
    return name


def error_response(
    error: BaseException, headers: dict[str, str] | None = None, body: dict[str, Any] | None = None
) -> Response:
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}; with the request's
    `body`, an upstream violation's field is named as the request named it."""
    status, http_status = status_from_exception(error)
    param = getattr(error, "field", None)
    for detail in status_json(status)["details"] if param is None else ():
        for violation in detail.get("fieldViolations", []):
            param = violation.get("field")
    message = status.message
    if body is not None and param is not None:
        renamed = request_param(param, body)
        message, param = message.replace(param, renamed), renamed
    code = next((c.name for c in grpc.StatusCode if c.value[0] == status.code), "UNKNOWN").lower()
    error_body = {"message": message, "type": ERROR_TYPES.get(http_status, "api_error"), "param": param, "code": code}
    return JSONResponse({"error": error_body}, status_code=http_status, headers=headers)


def _field(body: dict[str, Any], name: str, kinds: tuple[type, ...], default: Any = None) -> Any:
    value = body.get(name, default)
    if value is not None and (not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds):
        raise invalid_argument(f"{name} must be {' or '.join(k.__name__ for k in kinds)}", field=name)
    return value


def _bounded(body: dict[str, Any], name: str, kinds: tuple[type, ...], low: float, high: float) -> Any:
    """`body[name]` when it is of `kinds` and within [low, high] (None when absent)."""
    value = _field(body, name, kinds)
    if value is not None and not low <= value <= high:  # NaN fails both comparisons
        raise invalid_argument(f"{name} must be between {low} and {high}, got {value}", field=name)
    return value


def _refuse_not_implemented(body: dict[str, Any], fields: dict[str, Callable[[Any], bool]]) -> None:
    for name, asks_nothing in fields.items():
        if name in body and not asks_nothing(body[name]):
            raise invalid_argument(
                f"{name} is not implemented by MLX Hub yet; leave it out of the request", field=name
            )


def sampling(body: dict[str, Any]) -> pb.SamplingParams:
    number = (int, float)
    max_tokens = _bounded(body, "max_completion_tokens", (int,), 1, INT32_MAX)
    if max_tokens is None:
        max_tokens = _bounded(body, "max_tokens", (int,), 1, INT32_MAX)
    temperature = _bounded(body, "temperature", number, 0, MAX_TEMPERATURE)
    params = pb.SamplingParams(
        temperature=1.0 if temperature is None else temperature,
        top_p=_bounded(body, "top_p", number, 0, 1) or 0.0,
        max_tokens=max_tokens or 0,
        top_k=_bounded(body, "top_k", (int,), 0, INT32_MAX) or 0,
        min_p=_field(body, "min_p", number, 0.0) or 0.0,
        repetition_penalty=_field(body, "repetition_penalty", number, 0.0) or 0.0,
    )
    seed = _bounded(body, "seed", (int,), INT64_MIN, INT64_MAX)
    if seed is not None:
        params.seed, params.has_seed = seed, True
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise invalid_argument("stop must be a string or a list of strings", field="stop")
        params.stop.extend(stops)
    if _field(body, "n", (int,), 1) != 1:
        raise invalid_argument("only n=1 is supported", field="n")
    return params


def _message_text(message: Any, i: int) -> str:
    """A chat message's content: a string, or text content parts (other kinds are not implemented yet)."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind != "text":
                raise invalid_argument(
                    f"messages[{i}].content[{j}] is a {kind!r} part; only 'text' content parts are implemented yet",
                    field=f"messages[{i}].content[{j}].type",
                )
            if not isinstance(part.get("text"), str):
                raise invalid_argument(f"messages[{i}].content[{j}].text must be a string",
                                       field=f"messages[{i}].content[{j}].text")
            texts.append(part["text"])
        content = "".join(texts)
    if not isinstance(content, str):
        raise invalid_argument(f"messages[{i}].content must be a string or a list of text parts, not "
                               f"{json_kind(content)}", field=f"messages[{i}].content")
    return content


class OpenAI:
    def __init__(self, gateway) -> None:
        self.gateway = gateway

    def _inference(self):
        return inference_pb2_grpc.InferenceServiceStub(self.gateway.upstreams.channel("inference"))

    def _registry(self):
        return registry_pb2_grpc.RegistryServiceStub(self.gateway.upstreams.channel("registry"))

    async def _body(self, request: Request) -> dict[str, Any]:
        body = parse_json_object(await read_body(request, self.gateway.settings.max_request_bytes))
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise invalid_argument("model is required", field="model")
        _field(body, "stream", (bool,))
        _field(body, "stream_options", (dict,))
        return body

    async def chat_completions(self, request: Request) -> Response:
        body = await self._body(request)
        _refuse_not_implemented(body, NOT_IMPLEMENTED_CHAT)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise invalid_argument("messages must be a non-empty list", field="messages")
        chat = []
        for i, message in enumerate(messages):
            content = _message_text(message, i)
            role = "system" if message.get("role") == "developer" else str(message.get("role", ""))
            chat.append(pb.ChatMessage(role=role, content=content))
        generate = pb.GenerateStreamRequest(model=body["model"], messages=chat, sampling=sampling(body))
        return await self._answer(request, body, generate, "chat.completion")

    async def completions(self, request: Request) -> Response:
        body = await self._body(request)
        _refuse_not_implemented(body, NOT_IMPLEMENTED_COMPLETIONS)
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str) or not prompt:
            raise invalid_argument("prompt must be a non-empty string", field="prompt")
        generate = pb.GenerateStreamRequest(model=body["model"], prompt=prompt, sampling=sampling(body))
        return await self._answer(request, body, generate, "text_completion")

    async def _answer(self, request: Request, body: dict[str, Any], generate, kind: str) -> Response:
        call = self._inference().GenerateStream(generate, metadata=upstream_metadata(request))
        watch = DisconnectWatch(request, call)
        try:
            first = await call.read()
        except grpc.RpcError as error:
            watch.stop()
            call.cancel()
            return error_response(error, body=body)  # its field named as the request names it
        except BaseException:
            watch.stop()
            call.cancel()
            raise
        ident = f"{'chatcmpl' if kind == 'chat.completion' else 'cmpl'}-{uuid.uuid4().hex}"
        created = int(time.time())
        if not body.get("stream"):
            parts, message = [], first
            try:
                while message is not grpc.aio.EOF and not message.HasField("usage"):
                    parts.append(message.text)
                    message = await call.read()
            finally:
                watch.stop()
            if message is grpc.aio.EOF:
                raise GatewayError(grpc.StatusCode.CANCELLED, "generation ended without a result")
            return JSONResponse(_completion(kind, ident, created, message, "".join(parts)))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(self._chunks(kind, ident, created, call, first, watch, include_usage),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def _chunks(self, kind, ident, created, call, first, watch, include_usage) -> AsyncIterator[bytes]:
        chunk_kind = "chat.completion.chunk" if kind == "chat.completion" else "text_completion"

        def event(payload: dict[str, Any]) -> bytes:
            return f"data: {json.dumps(payload)}\n\n".encode()

        def choice(message, text: str, finish: str | None, role: bool = False) -> dict[str, Any]:
            if kind == "chat.completion":
                delta = {"role": "assistant", "content": text} if role else {"content": text}
                return {"index": 0, "delta": delta, "finish_reason": finish}
            return {"index": 0, "text": text, "finish_reason": finish}

        message, role = first, kind == "chat.completion"
        try:
            while message is not grpc.aio.EOF:
                finish = FINISH[message.finish_reason] if message.HasField("usage") else None
                payload = {"id": ident, "object": chunk_kind, "created": created, "model": message.model_version,
                           "choices": [choice(message, message.text, finish, role)]}
                role = False
                yield event(payload)
                if finish is not None and include_usage:
                    yield event({**payload, "choices": [], "usage": _usage(message.usage)})
                message = await call.read()
            yield b"data: [DONE]\n\n"
        except grpc.RpcError as error:
            status, _ = status_from_exception(error)
            yield event({"error": {"message": status.message, "type": "api_error", "code": error.code().name.lower()}})
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
                return JSONResponse({"object": "list", "data": data})

    async def model(self, request: Request) -> Response:
        """One model by an id that `models` lists (`name`, `name@alias`) or that answers name (`name/versions/N`)."""
        ident = request.path_params["model"]
        missing = NotFound(f"the model {ident!r} does not exist", resource_type="Model", resource_name=ident)
        try:
            reference = parse_reference(ident)
        except ValueError:
            raise missing from None
        metadata = upstream_metadata(request)
        model = (await self._registry().GetModel(registry_pb2.GetModelRequest(name=reference.name),
                                                 metadata=metadata)).model
        if reference.alias and reference.alias not in model.aliases:
            raise missing
        if reference.version:
            version = (await self._registry().GetModelVersion(
                registry_pb2.GetModelVersionRequest(name=reference.name, version=reference.version), metadata=metadata
            )).version
            return JSONResponse({**_model_entry(ident, model), "created": version.create_time.seconds})
        return JSONResponse(_model_entry(ident, model))


def _model_entry(ident: str, model: registry_pb2.Model) -> dict[str, Any]:
    return {"id": ident, "object": "model", "created": model.create_time.seconds,
            "owned_by": model.created_by or "mlx-hub"}


def _usage(usage: pb.Usage) -> dict[str, Any]:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_prompt_tokens}}


def _completion(kind: str, ident: str, created: int, final, text: str) -> dict[str, Any]:
    finish = FINISH[final.finish_reason]
    if kind == "chat.completion":
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish}
    return {"id": ident, "object": kind, "created": created, "model": final.model_version, "choices": [choice],
            "usage": _usage(final.usage)}


def routes(gateway) -> list[Route]:
    """The routes under PREFIX; their errors (and 404 / 405 within PREFIX) take OpenAI's shape in the app."""
    api = OpenAI(gateway)
    return [
        Route("/chat/completions", gateway.authenticated(api.chat_completions), methods=["POST"]),
        Route("/completions", gateway.authenticated(api.completions), methods=["POST"]),
        Route("/models", gateway.authenticated(api.models), methods=["GET"]),
        Route("/models/{model:path}", gateway.authenticated(api.model), methods=["GET"]),
    ]
