"""Page tokens shared by every list RPC.

A token is an opaque cursor: a small JSON object (e.g. the last row's sort key) in URL-safe
base64, so that it can travel in a query string. Clients only echo it back; a token that does
not decode is the caller's mistake and is answered the same way by every service.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from mlxhub.errors import InvalidArgument

INVALID_MESSAGE = "page_token is not valid; pass the next_page_token of a previous response"


def invalid_token() -> InvalidArgument:
    """The error for a token that this service did not make (or that was altered)."""
    return InvalidArgument(INVALID_MESSAGE, field="page_token")


def page_size(requested: int, default: int, maximum: int) -> int:
    """The page size to use: the default for 0, never more than the maximum; negative is an error."""
    if requested < 0:
        raise InvalidArgument(f"page_size must be >= 0, got {requested}", field="page_size")
    return min(requested or default, maximum)


def encode_token(cursor: dict[str, Any]) -> str:
    """A page token holding `cursor` (a JSON-serializable object)."""
    return base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode()


def decode_token(token: str, required: Iterable[str] = ()) -> dict[str, Any]:
    """The cursor of a token that `encode_token` made; raises `invalid_token()` when the token does
    not decode to a JSON object or lacks one of the `required` keys."""
    try:
        cursor = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):  # bad base64, bad UTF-8 and bad JSON are all ValueErrors
        raise invalid_token() from None
    if not isinstance(cursor, dict) or any(key not in cursor for key in required):
        raise invalid_token()
    return cursor


def fingerprint(selection: Any) -> str:
    """A short digest of a list's filters and order, kept in its tokens so that a token is only
    accepted by a request for the same list."""
    return hashlib.sha256(json.dumps(selection, sort_keys=True).encode()).hexdigest()[:16]
