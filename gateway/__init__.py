"""JSON/HTTP -> gRPC gateway for the mlxhub.v1 services, generated from their `google.api.http` options."""

from gateway.app import create_app

__all__ = ["create_app"]
