"""Wire the inference service together: fast BLAS (already loaded by the package), the
engine with its model cache, a registry channel for resolving references (and for following
alias moves, to preload the versions aliases point to), and the gRPC server with health,
reflection, auth and metrics like every hub service."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health

from inference_svc import footprint, integrity, loader, metrics, prompts
from inference_svc.cache import ModelSpec
from inference_svc.decode.engine import Engine
from inference_svc.preload import Preloader
from inference_svc.servicer import InferenceServicer
from mlxhub import blas
from mlxhub.auth import service_metadata
from mlxhub.config import Settings
from mlxhub.health import set_serving
from mlxhub.serving import listen_and_serve, new_server, stop_serving
from mlxhub.telemetry import traced_channel
from mlxhub.v1 import inference_pb2, inference_pb2_grpc, registry_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = inference_pb2.DESCRIPTOR.services_by_name["InferenceService"].full_name


@dataclass(frozen=True)
class InferenceOptions:
    memory_gb: float = 8.0
    keep_alive_s: float = 300.0
    max_running: int = 8
    max_queued: int = 32
    prompt_cache_gb: float = 1.0  # per loaded version; 0 turns prompt reuse off
    weights: str = ""  # "" = loader.weight_format()'s choice for this backend
    preload_aliases: tuple[str, ...] = ()  # aliases whose versions are kept loaded ("*": all); none by default here

    @classmethod
    def from_settings(cls, settings: Settings) -> InferenceOptions:
        """The options `settings.inference` (the MLXHUB_INFERENCE_* variables) asks for."""
        given = settings.inference
        return cls(memory_gb=given.memory_gb, keep_alive_s=given.keep_alive_s, max_running=given.max_batch,
                   max_queued=given.max_queue, prompt_cache_gb=given.prompt_cache_gb,
                   weights=loader.weight_format(given.weights), preload_aliases=given.preloaded_aliases)


def server_info(options: InferenceOptions) -> inference_pb2.GetServerInfoResponse:
    return inference_pb2.GetServerInfoResponse(
        backend=loader.backend(), blas=blas.state().name, weight_format=options.weights,
        mlx_version=importlib.metadata.version("mlx"), mlx_lm_version=importlib.metadata.version("mlx-lm"),
        memory_budget_gb=options.memory_gb, keep_alive_seconds=options.keep_alive_s,
    )


class InferenceServer:
    def __init__(self, settings: Settings, options: InferenceOptions | None = None) -> None:
        self.settings = settings
        options = options or InferenceOptions.from_settings(settings)
        self.options = options if options.weights else dataclasses.replace(
            options, weights=loader.weight_format(settings.inference.weights))
        self.health = health.HealthServicer()
        self.server: grpc.Server | None = None
        self.engine: Engine | None = None
        self.registry_channel: grpc.Channel | None = None
        self.preloader: Preloader | None = None

    def start(self) -> InferenceServer:
        options = self.options
        info = server_info(options)
        metrics.BACKEND.info({"backend": info.backend, "blas": info.blas, "weight_format": info.weight_format,
                              "mlx": info.mlx_version, "mlx_lm": info.mlx_lm_version})
        log.info("backend %s, BLAS %s, weights %s", info.backend, info.blas, info.weight_format)
        if not blas.state().active and blas.state().reason:
            log.warning("fast BLAS not active: %s", blas.state().reason)
        tokenizers, verifier = prompts.Tokenizers(), integrity.Verifier()

        def load(spec: ModelSpec) -> loader.Loaded:
            """A version's weights, once its files are checked against their recorded sha256."""
            verifier.verify(spec.version, spec.path, spec.files)
            verifier.verify(spec.version, spec.adapter_path, spec.adapter_files)
            return loader.load(spec.path, spec.adapter_path, options.weights, tokenizer=tokenizers.get(spec.path))

        self.engine = Engine(
            load, int(options.memory_gb * 1024**3), options.keep_alive_s, options.max_running, options.max_queued,
            int(options.prompt_cache_gb * 1024**3), tokenizer=lambda spec: tokenizers.get(spec.path),
            estimate=lambda spec: footprint.served_bytes(spec.path, spec.adapter_path, options.weights),
            on_health=self._engine_health,
        ).start()
        self.registry_channel = traced_channel(self.settings.address("registry"))
        # room for every running and queued request plus health checks and info calls
        self.server = new_server("inference", self.settings, max_workers=options.max_running + options.max_queued + 16)
        registry = registry_pb2_grpc.RegistryServiceStub(self.registry_channel)
        servicer = InferenceServicer(self.engine, registry, info)
        inference_pb2_grpc.add_InferenceServiceServicer_to_server(servicer, self.server)
        listen = listen_and_serve(self.server, self.health, "inference", SERVICE_NAME, self.settings)
        log.info("inference listening on %s", listen)
        if options.preload_aliases:  # in the background: a registry that is down does not hold the start
            self.preloader = Preloader(registry, self.engine, options.preload_aliases,
                                       service_metadata(self.settings.service_key)).start()
        return self

    def _engine_health(self, serving: bool) -> None:
        """NOT_SERVING while a dead engine thread waits for its replacement."""
        set_serving(self.health, ("", SERVICE_NAME), serving)

    def wait(self) -> None:
        assert self.server is not None
        self.server.wait_for_termination()

    def stop(self, grace: float = 5.0) -> None:
        if self.preloader is not None:
            self.preloader.stop()
        stop_serving(self.server, self.health, grace)
        if self.engine is not None:
            self.engine.stop()
        if self.registry_channel is not None:
            self.registry_channel.close()  # ends the preloader's follow stream
        if self.preloader is not None:
            self.preloader.join()
