"""The upstream side of every route: one channel per service, the metadata a call carries,
and cancelling a call when its HTTP client goes away."""

from __future__ import annotations

import asyncio
import base64

import grpc
from opentelemetry import propagate
from starlette.requests import Request

from gateway.errors import GatewayError
from gateway.routes import Binding
from mlxhub.config import Settings

METADATA_HEADER_PREFIX = "grpc-metadata-"
_METADATA_PREFIX = METADATA_HEADER_PREFIX.encode()
UPSTREAM_MAX_RECONNECT_BACKOFF_MS = 1000


class Upstreams:
    """One grpc.aio channel per upstream address, opened on first use in the serving loop,
    and one callable per bound RPC on it, made once rather than on every request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._methods: dict[Binding, grpc.aio.UnaryUnaryMultiCallable | grpc.aio.UnaryStreamMultiCallable] = {}

    def channel(self, upstream: str) -> grpc.aio.Channel:
        address = self.settings.address(upstream)
        if address not in self._channels:
            # dns:/// + round_robin: with a headless Service, calls spread over every replica.
            # A short reconnect backoff: a restarted upstream is used again within a second
            # (gRPC's default backoff grows to two minutes, answering 503 all that while).
            self._channels[address] = grpc.aio.insecure_channel(
                f"dns:///{address}",
                options=[
                    ("grpc.lb_policy_name", "round_robin"),
                    ("grpc.initial_reconnect_backoff_ms", 100),
                    ("grpc.min_reconnect_backoff_ms", 100),
                    ("grpc.max_reconnect_backoff_ms", UPSTREAM_MAX_RECONNECT_BACKOFF_MS),
                ],
            )
        return self._channels[address]

    def method(self, binding: Binding) -> grpc.aio.UnaryUnaryMultiCallable | grpc.aio.UnaryStreamMultiCallable:
        """The RPC of `binding` on its upstream's channel, called generically by its gRPC path."""
        found = self._methods.get(binding)
        if found is None:
            channel = self.channel(binding.upstream)
            kind = channel.unary_stream if binding.server_streaming else channel.unary_unary
            found = self._methods[binding] = kind(
                binding.grpc_path,
                request_serializer=binding.request_class.SerializeToString,
                response_deserializer=binding.response_class.FromString,
            )
        return found

    async def close(self) -> None:
        channels, self._channels, self._methods = list(self._channels.values()), {}, {}
        await asyncio.gather(*(channel.close() for channel in channels))


def upstream_metadata(request: Request) -> list[tuple[str, str | bytes]]:
    """gRPC metadata for the upstream call: the request id, Authorization, W3C trace context, Grpc-Metadata-*."""
    metadata: list[tuple[str, str | bytes]] = [("x-request-id", request.state.request_id)]
    authorization: bytes | None = None
    forwarded: list[tuple[str, bytes]] = []
    for name, value in request.scope["headers"]:  # raw: names are lower case, values latin-1
        if name == b"authorization":
            authorization = value if authorization is None else authorization  # the first, as authenticated
        elif name.startswith(_METADATA_PREFIX):
            forwarded.append((name.decode("latin-1"), value))
    if authorization is not None:
        metadata.append(("authorization", authorization.decode("latin-1")))
    trace_context: dict[str, str] = {}
    propagate.inject(trace_context)  # the gateway's span (itself a child of an incoming traceparent)
    metadata += trace_context.items()
    # What the gateway set (checked request id, the Authorization it authenticated, trace context)
    # stays the only value: a service reading the last of repeated keys would take a Grpc-Metadata-* copy.
    own = {key for key, _ in metadata}
    for name, raw in forwarded:
        key, value = name.removeprefix(METADATA_HEADER_PREFIX), raw.decode("latin-1")
        if key in own:
            continue
        try:
            metadata.append((key, base64.b64decode(value, validate=True) if key.endswith("-bin") else value))
        except ValueError:
            raise GatewayError(grpc.StatusCode.INVALID_ARGUMENT, f"header {name} must be base64", field=name) from None
    return metadata


class DisconnectWatch:
    """Cancels the upstream call as soon as the HTTP client goes away."""

    def __init__(self, request: Request, call: grpc.aio.Call) -> None:
        self.disconnected = asyncio.Event()
        self._task = asyncio.create_task(self._watch(request, call))

    async def _watch(self, request: Request, call: grpc.aio.Call) -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        self.disconnected.set()
        call.cancel()

    def stop(self) -> None:
        self._task.cancel()
