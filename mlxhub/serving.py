"""The gRPC server every hub service runs, built one way: a thread pool, the shared
interceptors (tracing, metrics, auth), a budget of streaming calls below the pool size, the
request size limit, then health and reflection, and SERVING only once it listens."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
from google.protobuf import descriptor, descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mlxhub.bounds import RequestBounds
from mlxhub.config import ConfigError, Settings
from mlxhub.errors import ResourceExhausted, abort
from mlxhub.telemetry import RPC_STREAMS_OPEN, server_interceptors

# Threads of every pool that streams can never take: unary calls and health checks run on them.
UNARY_THREADS = 16


class ReflectionPool:
    """The default descriptor pool as the reflection service sees it, which also finds the file of a
    method by its full name (`pkg.Service.Method`, what `grpcurl describe` asks for): protobuf's
    default (upb) pool resolves messages, fields, enums and services there but not methods."""

    def __init__(self, pool: descriptor_pool.DescriptorPool | None = None) -> None:
        self.pool = pool or descriptor_pool.Default()

    def FindFileContainingSymbol(self, symbol: str) -> descriptor.FileDescriptor:
        try:
            return self.pool.FindFileContainingSymbol(symbol)
        except KeyError:
            return self.pool.FindMethodByName(symbol).containing_service.file  # KeyError: reflection's NOT_FOUND

    def __getattr__(self, name: str):
        """Every other lookup (files by name, messages, extensions) is the pool's own."""
        return getattr(self.pool, name)


class StreamBudget(grpc.ServerInterceptor):
    """At most `limit` streaming calls at a time. Each holds a pool thread for its whole life (a
    followed event log or a watched job: hours), so unbounded they take every thread and unary calls
    and health checks queue behind them; the stream past the limit is answered RESOURCE_EXHAUSTED at
    once. Streams that auth refused never count (this interceptor comes after auth)."""

    def __init__(self, service: str, limit: int) -> None:
        self.service, self.limit = service, limit
        self.slots = threading.BoundedSemaphore(limit)

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or not handler.response_streaming:
            return handler
        if handler.request_streaming:
            return grpc.stream_stream_rpc_method_handler(self.admitted(handler.stream_stream),
                                                         handler.request_deserializer, handler.response_serializer)
        return grpc.unary_stream_rpc_method_handler(self.admitted(handler.unary_stream),
                                                    handler.request_deserializer, handler.response_serializer)

    def admitted(self, behavior):
        """`behavior` run within the budget: a slot taken before it starts, given back when it ends."""

        def stream(request, context):
            if not self.slots.acquire(blocking=False):
                abort(context, ResourceExhausted(
                    f"the {self.service} service already serves {self.limit} streams, its limit; close one or "
                    f"retry later (MLXHUB_{self.service.upper()}_MAX_STREAMS sets the limit)",
                    reason="TOO_MANY_STREAMS", metadata={"max_streams": str(self.limit)},
                ))
            RPC_STREAMS_OPEN.labels(self.service).inc()
            try:
                yield from behavior(request, context)
            finally:
                RPC_STREAMS_OPEN.labels(self.service).dec()
                self.slots.release()

        return stream


def stream_limit(service: str, settings: Settings, max_workers: int, max_streams: int | None) -> int:
    """The streams `service` admits: MLXHUB_<SERVICE>_MAX_STREAMS, else the service's own default,
    else all but UNARY_THREADS of its pool; never so many that no thread is left for unary calls."""
    limit = settings.max_streams.get(service) or max_streams or max_workers - UNARY_THREADS
    most = max_workers - UNARY_THREADS
    if not 1 <= limit <= most:
        raise ConfigError(f"MLXHUB_{service.upper()}_MAX_STREAMS={limit} does not fit the {service}'s "
                          f"{max_workers} threads; use 1 to {most}, so that {UNARY_THREADS} stay for unary calls")
    return limit


def new_server(service: str, settings: Settings, max_workers: int, max_streams: int | None = None) -> grpc.Server:
    """An unstarted server for `service` ("registry", "trainer", "inference"); add its servicer next.
    `max_streams`: how many streaming calls it serves at once (default: all but UNARY_THREADS threads)."""
    limit = stream_limit(service, settings, max_workers, max_streams)
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=f"{service}-rpc"),
        # RequestBounds: every request is checked against the bounds its proto declares before a servicer sees it
        interceptors=[*server_interceptors(service, settings.api_keys), RequestBounds(), StreamBudget(service, limit)],
        # so_reuseport 0: a second copy on the same port fails to bind instead of sharing it silently
        options=[("grpc.max_receive_message_length", settings.max_request_bytes), ("grpc.so_reuseport", 0)],
    )


def listen_and_serve(server: grpc.Server, health_servicer: health.HealthServicer, service: str, full_name: str,
                     settings: Settings) -> str:
    """Add health and reflection, listen on the service's address, start, report SERVING; the address."""
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((full_name, reflection.SERVICE_NAME, health.SERVICE_NAME), server,
                                        pool=ReflectionPool())
    listen = settings.listen_address(service)
    if server.add_insecure_port(listen) == 0:
        raise OSError(f"cannot listen on {listen}; is another {service} service running? "
                      f"set MLXHUB_{service.upper()}_ADDR")
    server.start()
    for name in ("", full_name):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return listen


def stop_serving(server: grpc.Server | None, health_servicer: health.HealthServicer, grace: float) -> None:
    """NOT_SERVING first (load balancers stop sending), then let in-flight calls finish within `grace`."""
    health_servicer.enter_graceful_shutdown()
    if server is not None:
        server.stop(grace).wait()
