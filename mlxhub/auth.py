"""API keys: who a call is, and who it may act for.

When `MLXHUB_API_KEYS` is set, every RPC except health checks and reflection
needs `authorization: Bearer <key>` (enforced by `mlxhub.interceptors.ApiKeyInterceptor`);
the key's principal is recorded in the metadata of every event the call causes (`mlxhub.audit`).

The hub's services call each other with their own credential (`MLXHUB_SERVICE_KEY`,
principal `mlxhub-service`). Work a service does for a user later, on its own (a
trainer worker registering the version a user's job trained), says so with
`x-on-behalf-of: <principal>`: the call is then recorded as that user's. Only the
service credential may send that header; a user's key sending it is refused, so no
one can pass as someone else through metadata.
"""

from __future__ import annotations

from mlxhub.config import SERVICE_PRINCIPAL
from mlxhub.errors import HubError, InvalidArgument, PermissionDenied

OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
ANONYMOUS = "anonymous"
ON_BEHALF_OF = "x-on-behalf-of"


def bearer_key(metadata) -> str:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.lower().startswith("bearer "):
            return value[7:].strip()
    return ""


def on_behalf_of(metadata) -> str | None:
    """The first `x-on-behalf-of` value, or None when the call has none."""
    return next((value for key, value in metadata or () if key == ON_BEHALF_OF), None)


def service_metadata(service_key: str, principal: str = "") -> list[tuple[str, str]]:
    """Metadata for a call by this service with the service credential, for `principal` when given."""
    if not service_key:
        return []
    metadata = [("authorization", f"Bearer {service_key}")]
    return metadata + [(ON_BEHALF_OF, principal)] if principal else metadata


def delegation_error(metadata, caller: str) -> HubError | None:
    """Why the call may not act on behalf of someone (None when it may, or does not ask to)."""
    principal = on_behalf_of(metadata)
    if principal is None:
        return None
    if caller != SERVICE_PRINCIPAL:
        return PermissionDenied(f"{ON_BEHALF_OF} is accepted only from the hub's own services "
                                "(MLXHUB_SERVICE_KEY); send the request without it", field=ON_BEHALF_OF)
    if not isinstance(principal, str) or not principal or not principal.isprintable():
        return InvalidArgument(f"{ON_BEHALF_OF} must name a principal (printable text)", field=ON_BEHALF_OF)
    return None


def principal_of(metadata, api_keys: dict[str, str]) -> str:
    """Who a call is recorded as: its key's principal, or the user a service acts for."""
    if not api_keys:
        return ANONYMOUS
    caller = api_keys.get(bearer_key(metadata), ANONYMOUS)
    if caller == SERVICE_PRINCIPAL and delegation_error(metadata, caller) is None:
        return on_behalf_of(metadata) or caller
    return caller
