"""A request header read straight from the ASGI scope: the first value, or None.

Starlette's `Headers` answers a missing key by raising and catching KeyError, and a body-less
GET misses most of the headers the gateway looks for on every request."""

from __future__ import annotations

from starlette.types import Scope


def first_header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case, as ASGI servers give names), as latin-1 text."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None
