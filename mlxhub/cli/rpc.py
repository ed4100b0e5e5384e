"""The CLI's one way to reach the hub: load the settings, open a channel to a service with the API
key (`mlxhub.client`), call, and turn a gRPC error into `error: ...` on stderr and exit 1 (one line
per field violation, never a traceback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

import grpc
import typer
from google.protobuf.message import Message

from mlxhub import client
from mlxhub.cli.output import fail
from mlxhub.config import ConfigError, Settings, load_settings

RPC_TIMEOUT = 60.0


def settings() -> Settings:
    """The hub's settings; on a configuration error print `error: ...` and exit 1."""
    try:
        return load_settings()
    except ConfigError as exc:
        raise fail(f"error: {exc}") from None


class Service:
    """One of the hub's gRPC services ("registry", "trainer", "inference") as the CLI calls it."""

    def __init__(self, name: str, settings: Settings) -> None:
        self.name, self.settings = name, settings

    @property
    def address(self) -> str:
        return self.settings.address(self.name)

    @cached_property
    def stub(self):
        return client.connect(self.settings, self.name)

    def failure(self, error: grpc.RpcError) -> typer.Exit:
        """Print what went wrong (naming the address when the service cannot be reached); the exit to raise."""
        return fail(client.format_error(error, self.address))

    @contextmanager
    def errors(self) -> Iterator[None]:
        """A gRPC error inside the block ends the command as `failure` says."""
        try:
            yield
        except grpc.RpcError as exc:
            raise self.failure(exc) from None

    def call(self, method: str, request: Message):
        """A unary call; its response."""
        with self.errors():
            return getattr(self.stub, method)(request, timeout=RPC_TIMEOUT)

    def start(self, method: str, request: Message):
        """A server-streaming call as gRPC returns it (iterate it, cancel it); errors are the caller's."""
        return getattr(self.stub, method)(request)

    def stream(self, method: str, request: Message):
        """The responses of a server-streaming call; an error mid-stream ends the command."""
        responses = self.start(method, request)
        with self.errors():
            yield from responses


def connect(service: str = "registry") -> Service:
    """`service` with the hub's settings (a configuration error ends the command)."""
    return Service(service, settings())


def call(method: str, request: Message, *, service: str = "registry"):
    """Call a unary RPC; on error print `error: ...` and exit 1."""
    return connect(service).call(method, request)


def stream(method: str, request: Message, *, service: str = "registry"):
    """Iterate a server-streaming RPC; on error print `error: ...` and exit 1."""
    return connect(service).stream(method, request)


def call_all(method: str, request: Message, field: str, *, service: str = "registry") -> Message:
    """Follow `next_page_token` to the end; return one response holding every item."""
    merged = None
    while True:
        page = call(method, request, service=service)
        if merged is None:
            merged = page
        else:
            getattr(merged, field).extend(getattr(page, field))
        if not page.next_page_token:
            merged.next_page_token = ""
            return merged
        request.page_token = page.next_page_token
