"""The gRPC health protocol (grpc.health.v1), both sides, written once.

`check` / `check_async` ask a service on a channel whether it is SERVING and answer with a small
`Health` value instead of raising; `probe` opens a channel to an address for one check (the stack
waiting for its services, the `status` command, the container health check). `set_serving` is
what a server says about itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
DEFAULT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Health:
    """One health check's outcome. `status` is the ServingStatus name when the health service
    answered (SERVING, NOT_SERVING, SERVICE_UNKNOWN, ...), else the gRPC status code's name of the
    failed call (UNAVAILABLE, DEADLINE_EXCEEDED, NOT_FOUND for an unknown service, ...)."""

    status: str
    answered: bool
    details: str = ""

    @property
    def serving(self) -> bool:
        return self.answered and self.status == "SERVING"

    def __str__(self) -> str:
        return self.status if self.answered else f"{self.status}: {self.details}"


def bearer(key: str) -> list[tuple[str, str]]:
    """Call metadata carrying an API key, or none when there is no key."""
    return [("authorization", f"Bearer {key}")] if key else []


def _answer(reply: health_pb2.HealthCheckResponse) -> Health:
    return Health(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status), answered=True)


def _failure(error: grpc.RpcError) -> Health:
    return Health(error.code().name, answered=False, details=error.details() or "")


def check(channel: grpc.Channel, service: str = "", timeout: float = DEFAULT_TIMEOUT_S,
          metadata: Sequence[tuple[str, str]] = ()) -> Health:
    """Check `service` ("" for the whole server) over a blocking channel."""
    request = health_pb2.HealthCheckRequest(service=service)
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=timeout, metadata=list(metadata))
    except grpc.RpcError as error:
        return _failure(error)
    return _answer(reply)


async def check_async(channel: grpc.aio.Channel, service: str = "", timeout: float = DEFAULT_TIMEOUT_S,
                      metadata: Sequence[tuple[str, str]] = ()) -> Health:
    """`check` over an asyncio channel."""
    request = health_pb2.HealthCheckRequest(service=service)
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(request, timeout=timeout, metadata=list(metadata))
    except grpc.RpcError as error:
        return _failure(error)
    return _answer(reply)


def probe(address: str, service: str = "", timeout: float = DEFAULT_TIMEOUT_S,
          metadata: Sequence[tuple[str, str]] = ()) -> Health:
    """Open a channel to `address`, check `service` once, close the channel."""
    with grpc.insecure_channel(address) as channel:
        return check(channel, service, timeout, metadata)


def set_serving(servicer: health.HealthServicer, names: Sequence[str], serving: bool) -> None:
    """Report each of `names` ("" is the whole server) as SERVING or NOT_SERVING."""
    for name in names:
        servicer.set(name, SERVING if serving else NOT_SERVING)
