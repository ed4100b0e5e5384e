"""Alias preloading: the versions that chosen aliases point to load at start and again when an
alias moves, so no request pays the load (`MLXHUB_INFERENCE_PRELOAD_ALIASES`).

The service learns aliases from the registry over gRPC only, from its event log: the AliasMoved
events from the start of the log give the aliases as they stand (read to the end first, so a
version an alias left long ago is never loaded), then the log is followed for moves. A moved
alias's new target is preloaded and the old one is left to its keep-alive. The loads run off
the engine thread like any other (`Engine.preload`), within the memory budget. A registry that
cannot be reached (down at start, or restarting) is retried in the background with a growing
wait, from the last event read; the service serves requests meanwhile."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import grpc

from inference_svc.decode.engine import Engine
from inference_svc.servicer import spec_of
from mlxhub.errors import HubError
from mlxhub.names import version_name
from mlxhub.v1 import registry_pb2, registry_pb2_grpc

log = logging.getLogger(__name__)

EVERY = "*"
BACKOFF_S = (1.0, 30.0)  # first and longest wait before the registry is asked again
RESOLVE_TIMEOUT_S = 10.0
BATCH = 500  # events per message while catching up


def reason_of(model: str, alias: str) -> str:
    """Why a version is preloaded, as ListLoadedModels and the logs say it."""
    return f"alias {alias} of {model}"


class Preloader:
    """Keeps the targets of the chosen aliases loaded, following the registry's alias moves."""

    def __init__(self, registry: registry_pb2_grpc.RegistryServiceStub, engine: Engine, aliases: Sequence[str],
                 metadata: Sequence[tuple[str, str]] = ()) -> None:
        """`aliases`: the alias names to preload (`*`: every alias); `metadata`: the service's credential."""
        self.registry = registry
        self.engine = engine
        self.aliases = frozenset(aliases)
        self.metadata = list(metadata)
        self.position = 0  # the last event read
        self.targets: dict[tuple[str, str], int] = {}  # (model, alias) -> version number, as the log says
        self.held: dict[tuple[str, str], str] = {}  # (model, alias) -> the version preloaded for it
        self._stopping = threading.Event()
        self._call = None  # the follow stream, cancelled by `stop`
        self._thread = threading.Thread(target=self._run, name="inference-preload", daemon=True)

    def start(self) -> Preloader:
        log.info("preloading the versions of aliases %s", ", ".join(sorted(self.aliases)))
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following (the stream ends at once if it can be cancelled, else when its channel closes)."""
        self._stopping.set()
        cancel = getattr(self._call, "cancel", None)
        if cancel is not None:
            cancel()

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)

    def wanted(self, alias: str) -> bool:
        return EVERY in self.aliases or alias in self.aliases

    def _run(self) -> None:
        delay = BACKOFF_S[0]
        while not self._stopping.is_set():
            try:
                self._follow()
            except grpc.RpcError as error:
                if self._stopping.is_set():
                    return
                code = error.code() if hasattr(error, "code") else None
                log.warning("alias preloading cannot read the registry's events (%s: %s); retrying in %.0f s",
                            getattr(code, "name", code), error.details() if hasattr(error, "details") else error,
                            delay)
            except Exception:  # preloading must never stop the service
                log.exception("alias preloading failed; retrying in %.0f s", delay)
            else:
                delay = BACKOFF_S[0]  # the stream ended on its own (the registry restarted): read on
            self._stopping.wait(delay)
            delay = min(delay * 2, BACKOFF_S[1])

    def _follow(self) -> None:
        """Catch up with the alias moves recorded so far, preload their targets, then follow new moves."""
        caught_up = self.registry.ReadEvents(
            registry_pb2.ReadEventsRequest(after_position=self.position, event_types=["AliasMoved"], batch_size=BATCH),
            metadata=self.metadata)
        for response in caught_up:
            for event in response.events:
                self._record(event)
        self._apply()
        self._call = self.registry.ReadEvents(
            registry_pb2.ReadEventsRequest(after_position=self.position, event_types=["AliasMoved"], follow=True,
                                           batch_size=BATCH), metadata=self.metadata)
        for response in self._call:
            if self._stopping.is_set():
                return
            for event in response.events:
                self._record(event)
            self._apply()

    def _record(self, event) -> None:
        self.position = max(self.position, event.position)
        model = event.aggregate.removeprefix("model/")
        alias, version = event.data["alias"], int(event.data["version"])
        self.targets[(model, alias)] = version

    def _apply(self) -> None:
        """Preload each wanted alias's target that is not held yet; release the one it moved from."""
        for (model, alias), number in list(self.targets.items()):
            if not self.wanted(alias):
                continue
            version, before = version_name(model, number), self.held.get((model, alias))
            if version == before:
                continue
            reason = reason_of(model, alias)
            try:
                if before:
                    log.info("alias %s of %s moved from %s to %s", alias, model, before, version)
                    self.engine.release_preload(before, reason)
                self.held[(model, alias)] = version  # tried once per move, whatever the outcome
                resolved = self.registry.ResolveModelReference(
                    registry_pb2.ResolveModelReferenceRequest(reference=version), metadata=self.metadata,
                    timeout=RESOLVE_TIMEOUT_S)
                self.engine.preload(spec_of(resolved), reason)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    if before:  # try again when the registry is back
                        self.held[(model, alias)] = before
                    else:
                        self.held.pop((model, alias), None)
                    raise
                log.warning("not preloading %s (%s): the registry does not know it", version, reason)
            except HubError as error:
                log.warning("not preloading %s (%s): %s", version, reason, error.message)
