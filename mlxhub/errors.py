"""Errors the hub raises, and their mapping to gRPC status with google.rpc details.

Domain and application code raise `HubError` subclasses; the gRPC layer turns
them into a `google.rpc.Status` (code, message, BadRequest / ResourceInfo /
ErrorInfo details) so that every client, and the gateway, can say what was
wrong and how to fix it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "mlx-hub"


class HubError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    reason: str = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        resource_type: str | None = None,
        resource_name: str | None = None,
        reason: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.resource_type = resource_type
        self.resource_name = resource_name
        self.reason = reason or self.reason
        self.metadata = metadata or {}

    def to_status(self) -> status_pb2.Status:
        details = []
        if self.field:
            details.append(
                error_details_pb2.BadRequest(
                    field_violations=[error_details_pb2.BadRequest.FieldViolation(field=self.field, description=self.message)]
                )
            )
        if self.resource_type:
            details.append(
                error_details_pb2.ResourceInfo(
                    resource_type=self.resource_type, resource_name=self.resource_name or "", description=self.message
                )
            )
        details.append(error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata))
        packed = []
        for detail in details:
            any_detail = any_pb2.Any()
            any_detail.Pack(detail)
            packed.append(any_detail)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)


class InvalidArgument(HubError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"


class NotFound(HubError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(HubError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class FailedPrecondition(HubError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class Aborted(HubError):
    code = grpc.StatusCode.ABORTED
    reason = "CONCURRENT_MODIFICATION"


class ResourceExhausted(HubError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"


class Unauthenticated(HubError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class Unavailable(HubError):
    """A dependency (the database) cannot be reached right now; the same call may succeed on retry."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


def database_failures() -> tuple[type[BaseException], ...]:
    """Connection-level failures of PostgreSQL, raw (psycopg, its pool's timeout) or as the event
    store wraps them; constraint violations (IntegrityError) and SQL errors are not among them.
    Imported here, when a server asks, so clients (the CLI) never load the database driver."""
    import eventsourcing.persistence
    import psycopg

    return (
        psycopg.OperationalError,
        psycopg.InterfaceError,
        eventsourcing.persistence.OperationalError,
        eventsourcing.persistence.InterfaceError,
    )


def database_unavailable(error: BaseException) -> Unavailable:
    """UNAVAILABLE with the database's own words for what went wrong."""
    cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return Unavailable(
        f"the database is unavailable ({cause}); retry shortly (a create with the same idempotency key"
        " is safe to repeat)",
        reason="DATABASE_UNAVAILABLE",
        resource_type="database",
        resource_name="postgresql",
    )


class PermissionDenied(HubError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class UpstreamError(HubError):
    """A hub service this one called refused or failed; its status is passed on unchanged."""

    def __init__(self, error: grpc.RpcError) -> None:
        self.status = status_of(error)
        super().__init__(self.status.message)
        self.code = next((c for c in grpc.StatusCode if c.value[0] == self.status.code), grpc.StatusCode.UNKNOWN)

    def to_status(self) -> status_pb2.Status:
        return self.status


def abort(context: grpc.ServicerContext, error: HubError) -> None:
    """Abort the call with the error's rich status (raises)."""
    context.abort_with_status(rpc_status.to_status(error.to_status()))


def status_of(error: grpc.RpcError) -> status_pb2.Status:
    """The google.rpc.Status of a failed call, with details when the server sent them."""
    status = rpc_status.from_call(error) if hasattr(error, "trailing_metadata") else None
    if status is None:
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        status = status_pb2.Status(code=code.value[0], message=(error.details() if hasattr(error, "details") else str(error)) or "")
    return status


def handlers(service: str) -> tuple[Callable[[Callable], Callable], Callable[[Callable], Callable]]:
    """Decorators for a servicer's unary and server-streaming methods: HubErrors become rich
    statuses; an unreachable database UNAVAILABLE (retryable) with its cause; anything else
    INTERNAL, logged, with a message that names `service`'s log."""
    database_unavailable_errors = database_failures()

    def unavailable(context: grpc.ServicerContext, method: Callable, error: BaseException) -> None:
        logging.getLogger(method.__module__).warning("%s: database unavailable (%s)", method.__name__, error)
        abort(context, database_unavailable(error))

    def internal(context: grpc.ServicerContext, method: Callable) -> None:
        logging.getLogger(method.__module__).exception("%s failed", method.__name__)
        context.abort(grpc.StatusCode.INTERNAL, f"{method.__name__} failed unexpectedly; see the {service} log")

    def rpc(method: Callable) -> Callable:
        @functools.wraps(method)
        def wrapper(self, request, context):
            try:
                return method(self, request, context)
            except HubError as error:
                abort(context, error)
            except database_unavailable_errors as error:
                unavailable(context, method, error)
            except Exception:  # noqa: BLE001  (logged by internal())
                internal(context, method)

        return wrapper

    def rpc_stream(method: Callable) -> Callable:
        @functools.wraps(method)
        def wrapper(self, request, context):
            try:
                yield from method(self, request, context)
            except HubError as error:
                abort(context, error)
            except database_unavailable_errors as error:
                unavailable(context, method, error)
            except Exception:  # noqa: BLE001  (logged by internal())
                if context.is_active():  # a client that went away is no failure of ours
                    internal(context, method)

        return wrapper

    return rpc, rpc_stream
