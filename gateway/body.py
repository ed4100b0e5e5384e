"""Request bodies: read within the size limit, parsed as JSON within a nesting limit.

The transcoded routes and the OpenAI routes both read their bodies here, so a body
that is too large, not JSON, nested too deep or not an object gets the same answer
on every route: 413 or INVALID_ARGUMENT saying what was wrong.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
from starlette.requests import Request

from gateway.errors import GatewayError, invalid_argument
from gateway.headers import first_header

# Deeper than any request message of the hub (protobuf's own JSON parser stops at 100);
# checked before anything walks the body, so deep nesting is a 400, never a RecursionError.
MAX_JSON_DEPTH = 32


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or RESOURCE_EXHAUSTED (413) as soon as it exceeds `limit` bytes."""
    length = first_header(request.scope, b"content-length")
    if length is None and first_header(request.scope, b"transfer-encoding") is None:
        return b""  # HTTP/1.1 has no body without either header (a GET, a DELETE)
    if int(length or 0) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def _too_large(limit: int) -> GatewayError:
    return GatewayError(
        grpc.StatusCode.RESOURCE_EXHAUSTED, f"request body is larger than {limit} bytes", http_status=413
    )


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words: 'an object', 'a string', 'null', ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _too_deep() -> GatewayError:
    return invalid_argument(f"the body nests objects and arrays more than {MAX_JSON_DEPTH} levels deep")


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than `limit` levels (iteratively: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in children)
    return False


def parse_json(raw: bytes) -> Any:
    """The body as a JSON value; INVALID_ARGUMENT when it is not JSON or nests too deep."""
    try:
        value = json.loads(raw)
    except ValueError as error:  # not UTF-8, not JSON, or an integer longer than Python converts
        raise invalid_argument(f"request body is not valid JSON: {error}") from None
    except RecursionError:  # json's parser gives up near the interpreter's recursion limit
        raise _too_deep() from None
    if _depth_exceeds(value, MAX_JSON_DEPTH):
        raise _too_deep()
    return value


def require_object(value: Any, field: str | None = None) -> dict[str, Any]:
    """`value` itself when it is a JSON object, else INVALID_ARGUMENT naming what it is."""
    if not isinstance(value, dict):
        raise invalid_argument(f"the body must be a JSON object, not {json_kind(value)}", field)
    return value


def parse_json_object(raw: bytes) -> dict[str, Any]:
    return require_object(parse_json(raw))
