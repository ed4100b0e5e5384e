"""One error shape for every failure the gateway answers: a `google.rpc.Status` as JSON.

Upstream errors keep the status (and details) the service sent; the gateway's
own failures (bad input, unknown route, oversized body, ...) are built the same
way, so clients parse a single shape. The HTTP status comes from the gRPC code
exactly as grpc-gateway's `HTTPStatusFromCode` maps it.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2  # noqa: F401  (registers detail types for Any rendering)
from starlette.responses import Response

from mlxhub.errors import HubError, status_of

HTTP_STATUS_FROM_CODE: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}
_CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


def http_status_from_code(code: grpc.StatusCode | int) -> int:
    if isinstance(code, int):
        code = _CODE_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN)
    return HTTP_STATUS_FROM_CODE.get(code, 500)


class GatewayError(HubError):
    """A failure the gateway detects itself; `http_status` overrides the code's mapping
    where HTTP has a more precise answer (405, 413)."""

    def __init__(
        self, code: grpc.StatusCode, message: str, *, field: str | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(message, field=field, reason=code.name)
        self.code = code
        self.http_status = http_status or http_status_from_code(code)


def invalid_argument(message: str, field: str | None = None) -> GatewayError:
    return GatewayError(grpc.StatusCode.INVALID_ARGUMENT, message, field=field)


def _detail_json(detail) -> dict[str, Any]:
    try:
        return json_format.MessageToDict(detail)
    except (TypeError, KeyError, json_format.Error):  # a detail type this process does not know
        return {"@type": detail.type_url, "value": base64.b64encode(detail.value).decode()}


def status_json(status: status_pb2.Status) -> dict[str, Any]:
    return {"code": status.code, "message": status.message, "details": [_detail_json(d) for d in status.details]}


def status_from_exception(error: BaseException) -> tuple[status_pb2.Status, int]:
    """The Status and HTTP status for an upstream `grpc.RpcError` or a `HubError` (a `GatewayError` among them)."""
    if isinstance(error, GatewayError):
        return error.to_status(), error.http_status
    if isinstance(error, HubError):
        return error.to_status(), http_status_from_code(error.code)
    if isinstance(error, grpc.RpcError):
        try:
            status = status_of(error)
        except ValueError:  # details disagree with the call's code; trust the code
            status = status_pb2.Status(code=error.code().value[0], message=error.details() or "")
        return status, http_status_from_code(status.code)
    raise TypeError(f"not an RPC or gateway error: {error!r}")


def error_response(error: BaseException, headers: dict[str, str] | None = None) -> Response:
    status, http_status = status_from_exception(error)
    return Response(
        json.dumps(status_json(status)), status_code=http_status, headers=headers, media_type="application/json"
    )
