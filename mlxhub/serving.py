"""The gRPC server every hub service runs, built one way: a thread pool, the shared
interceptors (tracing, metrics, auth), a budget of streaming calls below the pool size, the
request size limit, then health and reflection, and SERVING only once it listens."""

from __future__ import annotations

import threading
import weakref
from concurrent import futures

import grpc
from google.protobuf import descriptor, descriptor_pool
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import server_interceptor

from mlxhub.audit import AuditContext
from mlxhub.bounds import RequestBounds
from mlxhub.config import ConfigError, Settings
from mlxhub.health import set_serving
from mlxhub.interceptors import ApiKeyInterceptor, MetricsInterceptor, StreamBudget
from mlxhub.memory import limit_arenas

# Threads of every pool that streams can never take: unary calls and health checks run on them.
UNARY_THREADS = 16
# Each server's thread pool, shut down with it (grpc leaves its executor to the caller)
_pools: weakref.WeakKeyDictionary[grpc.Server, futures.ThreadPoolExecutor] = weakref.WeakKeyDictionary()


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


def stream_limit(service: str, settings: Settings, max_workers: int, max_streams: int | None) -> int:
    """The streams `service` admits: MLXHUB_<SERVICE>_MAX_STREAMS, else the service's own default,
    else all but UNARY_THREADS of its pool; never so many that no thread is left for unary calls."""
    limit = settings.max_streams.get(service) or max_streams or max_workers - UNARY_THREADS
    most = max_workers - UNARY_THREADS
    if not 1 <= limit <= most:
        raise ConfigError(f"MLXHUB_{service.upper()}_MAX_STREAMS={limit} does not fit the {service}'s "
                          f"{max_workers} threads; use 1 to {most}, so that {UNARY_THREADS} stay for unary calls")
    return limit


def interceptors(service: str, settings: Settings, stream_limit: int) -> list[grpc.ServerInterceptor]:
    """What every call of `service` passes through, outermost first; one line per interceptor."""
    return [
        server_interceptor(),  # tracing: a span per call, joined to the caller's trace
        MetricsInterceptor(service),  # rate, errors and duration per RPC
        ApiKeyInterceptor(settings.api_keys),  # auth: a refused call goes no further
        AuditContext(settings.api_keys),  # who and why of the call, for the events it records
        RequestBounds(),  # every request checked against the bounds its proto declares
        StreamBudget(service, stream_limit),  # after auth: refused streams never take a slot
    ]


def started_pool(max_workers: int, thread_name_prefix: str, timeout: float = 30.0) -> futures.ThreadPoolExecutor:
    """A thread pool whose threads are all started now. A pool starts a thread only when a call finds
    none idle, so a server's pool grows for as long as bursts keep finding new highs, and with it the
    service's memory (each thread's stack): started up front, the memory a service starts with is
    the memory it serves with. Each thread takes one task that waits until all are running."""
    pool = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
    all_running = threading.Barrier(max_workers + 1, timeout=timeout)
    for _ in range(max_workers):
        pool.submit(all_running.wait)
    all_running.wait()
    return pool


def new_server(service: str, settings: Settings, max_workers: int, max_streams: int | None = None) -> grpc.Server:
    """An unstarted server for `service` ("registry", "trainer", "inference"); add its servicer next.
    `max_streams`: how many streaming calls it serves at once (default: all but UNARY_THREADS threads)."""
    limit = stream_limit(service, settings, max_workers, max_streams)
    limit_arenas()  # before the pool's threads exist; a service's main() had better call it first (mlxhub.memory)
    pool = started_pool(max_workers, f"{service}-rpc")
    server = grpc.server(
        pool,
        interceptors=interceptors(service, settings, limit),
        # so_reuseport 0: a second copy on the same port fails to bind instead of sharing it silently
        options=[("grpc.max_receive_message_length", settings.max_request_bytes), ("grpc.so_reuseport", 0)],
    )
    _pools[server] = pool
    return server


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
    set_serving(health_servicer, ("", full_name), True)
    return listen


def stop_serving(server: grpc.Server | None, health_servicer: health.HealthServicer, grace: float) -> None:
    """NOT_SERVING first (load balancers stop sending), then let in-flight calls finish within `grace`."""
    health_servicer.enter_graceful_shutdown()
    if server is not None:
        server.stop(grace).wait()
        pool = _pools.pop(server, None)
        if pool is not None:
            pool.shutdown(wait=False)  # its idle threads end now, not when the pool is collected
