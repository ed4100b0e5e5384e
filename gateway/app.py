"""The Starlette app: authenticate, match a binding, transcode, call upstream, answer.

One catch-all route dispatches through the route table built from the proto
descriptors; upstream methods are called generically by their gRPC path, so
the app knows no RPC by name. Every failure goes through `errors.error_response`
(`openai.error_response` under /openai/v1, 404 and 405 included).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import orjson
from google.protobuf import message as proto
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, request_response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import openai
from gateway.body import read_body
from gateway.errors import GatewayError, error_response, status_from_exception, status_json
from gateway.headers import first_header
from gateway.health import deep_health
from gateway.openapi import openapi_document
from gateway.request_telemetry import RequestTelemetryMiddleware
from gateway.routes import Binding, Packing, RouteError, RouteTable, load_bindings
from gateway.static import api_prefixes, dashboard_app, under
from gateway.transcode import build_request, response_json
from gateway.upstream import DisconnectWatch, Upstreams, upstream_metadata
from mlxhub.auth import bearer_key
from mlxhub.config import Settings
from mlxhub.errors import HubError
from mlxhub.health import check_async
from mlxhub.memory import RELEASE_EVERY_S, release_free_memory
from mlxhub.proto_json import message_to_dict

log = logging.getLogger(__name__)

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
OWN_PATHS = ("/healthz", "/metrics", "/health/deep", "/readyz", "/openapi.json")  # the gateway's own routes
_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
READY_TIMEOUT_S = 2.0
# How long a stream may stay silent before the gateway answers 200 anyway: long enough for a
# request the service refuses to get its own HTTP status, short enough that a client following
# a quiet stream (ReadEvents follow=true on an idle hub) learns at once that it is connected.
STREAM_HEAD_WAIT_S = 0.5
# Items per upstream message when the gateway reads a packable stream packed (gateway.routes.Packing):
# enough that a long catch-up read costs one upstream read and one HTTP write per few hundred items.
PACKED_ITEMS = 256


class RequestIdMiddleware:
    """Give every request an id (the client's `X-Request-Id` when sane) and echo it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*(h for h in message.get("headers", ()) if h[0].lower() != header[0]), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


def _response_headers(metadata: grpc.aio.Metadata | None) -> dict[str, str]:
    """Upstream initial metadata as `Grpc-Metadata-<key>` headers."""
    headers = {}
    for key, value in metadata or ():
        text = base64.b64encode(value).decode() if isinstance(value, bytes) else value
        headers[f"Grpc-Metadata-{key}"] = text
    return headers


def _ndjson(kind: str, payload: object) -> bytes:
    return orjson.dumps({kind: payload}, option=orjson.OPT_APPEND_NEWLINE)


def _sse(kind: str, payload: object) -> bytes:
    return (b"event: error\ndata: " if kind == "error" else b"data: ") + orjson.dumps(payload) + b"\n\n"


class Gateway:
    """The transcoding endpoint and the operational endpoints around it."""

    def __init__(self, settings: Settings, bindings: list[Binding] | None = None) -> None:
        self.settings = settings
        self.bindings = load_bindings() if bindings is None else bindings
        self.routes = RouteTable(self.bindings)
        self.upstreams = Upstreams(settings)
        self.services = {b.method.containing_service.full_name: b.upstream for b in self.bindings}
        self.api_prefixes = api_prefixes(b.template.pattern for b in self.bindings)  # the rest is the dashboard's
        self.route_label = functools.lru_cache(maxsize=RouteTable.CACHED_MATCHES)(self._route_label)
        self.serves_dashboard = functools.lru_cache(maxsize=RouteTable.CACHED_MATCHES)(self._serves_dashboard)

    def _serves_dashboard(self, method: str, path: str) -> bool:
        """Whether the dashboard answers the request (`serves_dashboard`, remembered)."""
        return method in ("GET", "HEAD") and not under(path, self.api_prefixes)

    def authenticated(self, endpoint: Callable[[Request], Awaitable[Response]]):
        """Reject early what the services would reject: no key, or a key not in MLXHUB_API_KEYS."""

        async def guarded(request: Request) -> Response:
            key = bearer_key([("authorization", first_header(request.scope, b"authorization") or "")])
            if self.settings.auth_enabled and key not in self.settings.api_keys:
                raise GatewayError(
                    grpc.StatusCode.UNAUTHENTICATED,
                    f"{'wrong' if key else 'missing'} API key; send the header "
                    "'Authorization: Bearer <key>' with a key from MLXHUB_API_KEYS",
                )
            return await endpoint(request)

        return guarded

    async def transcode(self, request: Request) -> Response:
        raw_path = request.scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path is not None else request.url.path
        try:
            binding, params = self.routes.match(request.method, path)
        except RouteError as error:
            if error.allowed:
                raise GatewayError(
                    grpc.StatusCode.UNIMPLEMENTED,
                    f"{request.method} is not allowed on {request.url.path}; use {', '.join(error.allowed)}",
                    http_status=405,
                ) from None
            raise GatewayError(grpc.StatusCode.NOT_FOUND, f"no route for {request.method} {request.url.path}") from None
        body = await read_body(request, self.settings.max_request_bytes)
        query = request.query_params.multi_items() if request.scope.get("query_string") else ()
        message = build_request(binding, params, query, body)
        packing = binding.packing
        if packing is not None and not getattr(message, packing.size_field):
            setattr(message, packing.size_field, PACKED_ITEMS)  # one item per line all the same
        else:
            packing = None
        call = self.upstreams.method(binding)(message, metadata=upstream_metadata(request))
        watch = DisconnectWatch(request, call)
        try:  # a unary call, or a stream up to its first message: a failure is a plain error response
            if binding.server_streaming:
                pending = asyncio.ensure_future(call.read())
                done, _ = await asyncio.wait({pending}, timeout=STREAM_HEAD_WAIT_S)
                if not done:  # a quiet stream: answer now; its first message follows when it comes
                    return self._stream(request, binding, packing, call, pending, watch, {})
                first = pending.result()
            else:
                first = await call
        except BaseException:
            watch.stop()
            call.cancel()
            if watch.disconnected.is_set():
                return Response(status_code=499)  # nobody is listening any more
            raise
        headers = _response_headers(await call.initial_metadata())
        if not binding.server_streaming:
            watch.stop()
            return Response(orjson.dumps(response_json(binding, first)), headers=headers, media_type="application/json")
        return self._stream(request, binding, packing, call, first, watch, headers)

    def _stream(
        self,
        request: Request,
        binding: Binding,
        packing: Packing | None,
        call: grpc.aio.UnaryStreamCall,
        first: object,
        watch: DisconnectWatch,
        headers: dict[str, str],
    ) -> Response:
        """NDJSON lines `{"result": ...}` (or SSE events), ending with an error if the stream fails;
        a packed message (`packing`) becomes the lines of its items, written together."""
        sse = "text/event-stream" in request.headers.get("accept", "")
        encode, media_type = (_sse, "text/event-stream") if sse else (_ndjson, "application/x-ndjson")

        def encoded(message: proto.Message) -> bytes:
            if packing is None or message.HasField(packing.item_field):
                return encode("result", response_json(binding, message))
            name = packing.item_json_name
            return b"".join([encode("result", {name: message_to_dict(item)})
                             for item in getattr(message, packing.items_field)])

        async def lines() -> AsyncIterator[bytes]:
            try:
                message = await first if isinstance(first, asyncio.Future) else first
                while message is not grpc.aio.EOF:
                    if chunk := encoded(message):
                        yield chunk
                    message = await call.read()
            except grpc.RpcError as error:
                yield encode("error", status_json(status_from_exception(error)[0]))
            except asyncio.CancelledError:
                if not watch.disconnected.is_set():
                    raise
            finally:
                watch.stop()
                call.cancel()

        return StreamingResponse(lines(), media_type=media_type, headers={"Cache-Control": "no-cache", **headers})

    def _route_label(self, method: str, path: str) -> str:
        """The RPC a request maps to (or the fixed path), for metric labels (`route_label`, remembered)."""
        path = path.split("?", 1)[0]
        if path.startswith("/openai/"):
            return "/openai"
        if self.serves_dashboard(method, path):
            return "dashboard"
        try:
            return self.routes.match(method, path)[0].grpc_path
        except RouteError:
            return path if path in OWN_PATHS else "unmatched"

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(self.bindings, auth_enabled=self.settings.auth_enabled))

    async def ready(self, request: Request) -> Response:
        """200 when every upstream service reports SERVING, else 503 naming those that do not."""

        async def check(service: str, upstream: str) -> str:
            return str(await check_async(self.upstreams.channel(upstream), service, READY_TIMEOUT_S))

        names = sorted(self.services)
        states = dict(zip(names, await asyncio.gather(*(check(n, self.services[n]) for n in names)), strict=True))
        not_ready = [name for name, state in states.items() if state != "SERVING"]
        body = {"status": "unavailable" if not_ready else "ok", "services": states, "notReady": not_ready}
        return JSONResponse(body, status_code=503 if not_ready else 200)


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _deep_health(request: Request) -> Response:
    healthy, body = await deep_health(request.app.state.gateway.settings)
    return JSONResponse(body, status_code=200 if healthy else 503)


async def _metrics(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _error_response(request: Request, error: BaseException, headers: dict[str, str] | None = None) -> Response:
    """The one error shape of the route: OpenAI's under /openai/v1, else a google.rpc.Status."""
    if openai.serves(request.url.path):
        return openai.error_response(error, headers)
    return error_response(error, headers)


async def _handle_error(request: Request, error: Exception) -> Response:
    headers = (
        {"WWW-Authenticate": "Bearer"} if getattr(error, "code", None) == grpc.StatusCode.UNAUTHENTICATED else None
    )
    return _error_response(request, error, headers)


async def _handle_unexpected(request: Request, error: Exception) -> Response:
    """A gateway bug still answers in the route's error shape (uvicorn logs the traceback)."""
    failure = GatewayError(grpc.StatusCode.INTERNAL, "internal gateway error; see the gateway log")
    return _error_response(request, failure)


async def _handle_http_exception(request: Request, error: HTTPException) -> Response:
    """Starlette's own 404 / 405 (within the /openai/v1 mount), said as the transcoding routes say them."""
    path, allowed = request.url.path, (error.headers or {}).get("Allow")
    if error.status_code == 405 and allowed:
        failure = GatewayError(grpc.StatusCode.UNIMPLEMENTED,
                               f"{request.method} is not allowed on {path}; use {allowed}", http_status=405)
    elif error.status_code == 404:
        failure = GatewayError(grpc.StatusCode.NOT_FOUND, f"no route for {request.method} {path}")
    else:
        failure = GatewayError(grpc.StatusCode.UNIMPLEMENTED, error.detail, http_status=error.status_code)
    return _error_response(request, failure, error.headers)


class _DashboardOrApi:
    """The catch-all route: GET/HEAD outside the API paths is the dashboard (no key needed);
    everything else is the transcoding endpoint, as before there was a dashboard."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.dashboard = dashboard_app()
        self.api = request_response(gateway.authenticated(gateway.transcode))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.gateway.serves_dashboard(scope["method"], scope["path"]):
            await self.dashboard(scope, receive, send)
        else:
            await self.api(scope, receive, send)


async def _release_memory_periodically() -> None:
    """What the services' idle main thread does (mlxhub.memory), in the gateway's loop: a trim takes
    well under a millisecond here."""
    while True:
        await asyncio.sleep(RELEASE_EVERY_S)
        release_free_memory()


class _ApiFastPath:
    """Middleware, innermost: a request for the transcoding endpoint goes to it at once, past
    Starlette's exception middleware, router, route and request-response wrappers, which took
    about a quarter of the gateway's time per unary call over a bare pass-through. A failure the
    endpoint raises gets the handler those layers would have picked from `handlers` (by the
    exception's class, most specific first); any other goes up, to the app's catch-all handler.
    Every other request (own routes, /openai, the dashboard, a root path) goes on to `app`."""

    def __init__(self, app: ASGIApp, gateway: Gateway, endpoint: Callable[[Request], Awaitable[Response]],
                 handlers: dict[type[BaseException], Callable[[Request, Exception], Awaitable[Response]]]) -> None:
        self.app = app
        self.gateway = gateway
        self.endpoint = endpoint
        self.handlers = handlers
        self.methods = frozenset(ALL_METHODS)

    def takes(self, scope: Scope) -> bool:
        path, method = scope["path"], scope["method"]
        return (method in self.methods and not scope.get("root_path") and path not in OWN_PATHS
                and not path.startswith("/openai") and not self.gateway.serves_dashboard(method, path))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.takes(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await self.endpoint(request)
        except Exception as error:
            handler = next((self.handlers[kind] for kind in type(error).__mro__ if kind in self.handlers), None)
            if handler is None:
                raise
            response = await handler(request, error)
        await response(scope, receive, send)


def create_app(settings: Settings) -> Starlette:
    """The gateway as an ASGI app; upstream channels close when the app shuts down."""
    gateway = Gateway(settings)
    handlers = {HubError: _handle_error, grpc.RpcError: _handle_error, HTTPException: _handle_http_exception}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        trimming = asyncio.create_task(_release_memory_periodically())
        yield
        trimming.cancel()
        await gateway.upstreams.close()

    app = Starlette(
        routes=[
            Route("/healthz", _healthz, methods=["GET"]),
            Route("/metrics", gateway.authenticated(_metrics), methods=["GET"]),
            Route("/health/deep", gateway.authenticated(_deep_health), methods=["GET"]),
            Route("/readyz", gateway.authenticated(gateway.ready), methods=["GET"]),
            Route("/openapi.json", gateway.authenticated(gateway.openapi), methods=["GET"]),
            Mount(openai.PREFIX, routes=openai.routes(gateway)),
            Route("/{path:path}", _DashboardOrApi(gateway), methods=ALL_METHODS),
        ],
        exception_handlers={**handlers, Exception: _handle_unexpected},
        lifespan=lifespan,
    )
    # Innermost: the API's requests skip the layers below it; the request id and telemetry see every request.
    app.add_middleware(_ApiFastPath, gateway=gateway, endpoint=gateway.authenticated(gateway.transcode),
                       handlers=handlers)
    app.add_middleware(RequestIdMiddleware)
    # Outside the request id, so its access line can name the id the request was given.
    app.add_middleware(RequestTelemetryMiddleware, route_label=gateway.route_label)
    app.state.gateway = gateway
    return app
