"""OpenAI-compatible endpoints under `/openai/v1` (chat/completions, completions, models),
so the official `openai` client and tools built on it work against the hub.

Requests become InferenceService / RegistryService calls on the gateway's upstream
channels (same auth, request id and trace headers as every route); answers and
errors take OpenAI's shapes. `model` in responses is the exact version that
produced the text (`name/versions/N`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.errors import GatewayError, invalid_argument, status_from_exception, status_json
from mlxhub.v1 import inference_pb2 as pb
from mlxhub.v1 import inference_pb2_grpc, registry_pb2, registry_pb2_grpc

FINISH = {pb.FINISH_REASON_STOP: "stop", pb.FINISH_REASON_LENGTH: "length", pb.FINISH_REASON_CANCELLED: "stop"}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 409: "conflict_error", 429: "rate_limit_error"}


def error_response(error: BaseException) -> Response:
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""
    status, http_status = status_from_exception(error)
    param = getattr(error, "field", None)
    for detail in status_json(status)["details"] if param is None else ():
        for violation in detail.get("fieldViolations", []):
            param = violation.get("field")
    code = next((c.name for c in grpc.StatusCode if c.value[0] == status.code), "UNKNOWN").lower()
    body = {"message": status.message, "type": ERROR_TYPES.get(http_status, "api_error"), "param": param, "code": code}
    return JSONResponse({"error": body}, status_code=http_status)


def _field(body: dict[str, Any], name: str, kinds: tuple[type, ...], default: Any = None) -> Any:
    value = body.get(name, default)
    if value is not None and (not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds):
        raise invalid_argument(f"{name} must be {' or '.join(k.__name__ for k in kinds)}", field=name)
    return value


def sampling(body: dict[str, Any]) -> pb.SamplingParams:
    number = (int, float)
    params = pb.SamplingParams(
        temperature=_field(body, "temperature", number, 1.0),
        top_p=_field(body, "top_p", number, 0.0) or 0.0,
        max_tokens=_field(body, "max_completion_tokens", (int,)) or _field(body, "max_tokens", (int,)) or 0,
        top_k=_field(body, "top_k", (int,), 0) or 0,
        min_p=_field(body, "min_p", number, 0.0) or 0.0,
        repetition_penalty=_field(body, "repetition_penalty", number, 0.0) or 0.0,
    )
    seed = _field(body, "seed", (int,))
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


class OpenAI:
    def __init__(self, gateway) -> None:
        self.gateway = gateway

    def _inference(self):
        return inference_pb2_grpc.InferenceServiceStub(self.gateway.upstreams.channel("inference"))

    async def _body(self, request: Request) -> dict[str, Any]:
        from gateway.app import _read_body

        raw = await _read_body(request, self.gateway.settings.max_request_bytes)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            raise invalid_argument("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise invalid_argument("the body must be a JSON object")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise invalid_argument("model is required", field="model")
        return body

    async def chat_completions(self, request: Request) -> Response:
        body = await self._body(request)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise invalid_argument("messages must be a non-empty list", field="messages")
        chat = []
        for i, message in enumerate(messages):
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list):  # content parts: keep the text ones
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
            if not isinstance(content, str):
                raise invalid_argument(f"messages[{i}].content must be a string", field=f"messages[{i}].content")
            role = "system" if message.get("role") == "developer" else str(message.get("role", ""))
            chat.append(pb.ChatMessage(role=role, content=content))
        generate = pb.GenerateStreamRequest(model=body["model"], messages=chat, sampling=sampling(body))
        return await self._answer(request, body, generate, "chat.completion")

    async def completions(self, request: Request) -> Response:
        body = await self._body(request)
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str) or not prompt:
            raise invalid_argument("prompt must be a non-empty string", field="prompt")
        generate = pb.GenerateStreamRequest(model=body["model"], prompt=prompt, sampling=sampling(body))
        return await self._answer(request, body, generate, "text_completion")

    async def _answer(self, request: Request, body: dict[str, Any], generate, kind: str) -> Response:
        from gateway.app import DisconnectWatch, _metadata

        call = self._inference().GenerateStream(generate, metadata=_metadata(request))
        watch = DisconnectWatch(request, call)
        try:
            first = await call.read()
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
        from gateway.app import _metadata

        stub = registry_pb2_grpc.RegistryServiceStub(self.gateway.upstreams.channel("registry"))
        data, token = [], ""
        while True:
            page = await stub.ListModels(registry_pb2.ListModelsRequest(page_size=1000, page_token=token),
                                         metadata=_metadata(request))
            for model in page.models:
                entry = {"object": "model", "created": model.create_time.seconds, "owned_by": model.created_by or "mlx-hub"}
                data.append({"id": model.name, **entry})
                data += [{"id": f"{model.name}@{alias}", **entry} for alias in sorted(model.aliases)]
            token = page.next_page_token
            if not token:
                return JSONResponse({"object": "list", "data": data})


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


def _openai_errors(endpoint: Callable[[Request], Awaitable[Response]]):
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except (GatewayError, grpc.RpcError) as error:
            return error_response(error)

    return guarded


def routes(gateway) -> list[Route]:
    api = OpenAI(gateway)

    def wrap(endpoint):
        return _openai_errors(gateway.authenticated(endpoint))

    return [
        Route("/chat/completions", wrap(api.chat_completions), methods=["POST"]),
        Route("/completions", wrap(api.completions), methods=["POST"]),
        Route("/models", wrap(api.models), methods=["GET"]),
    ]
