"""gRPC adapter: validate the request, resolve the model reference through the registry
(with the caller's credentials), hand a job to the engine, and turn its events into
responses. Token events that pile up while a slow client reads are sent as one group."""

from __future__ import annotations

import queue

import grpc

from inference_svc.cache import ModelSpec
from inference_svc.engine import CANCELLED, LENGTH, STOP, Chunk, Done, Engine, Failed, Job
from inference_svc.genai import generation_span
from inference_svc.integrity import RecordedFile
from inference_svc.sampling import from_proto
from mlxhub import bounds
from mlxhub.errors import InvalidArgument, UpstreamError, handlers
from mlxhub.names import parse_reference, version_name
from mlxhub.v1 import inference_pb2 as pb
from mlxhub.v1 import inference_pb2_grpc, registry_pb2, registry_pb2_grpc

FORWARDED_METADATA = ("authorization", "x-request-id")  # trace context: by the channel's interceptor
ROLES = tuple(bounds.of(pb.ChatMessage, "role").allowed)  # declared in inference.proto
MAX_GROUP = 64  # most tokens one stream message carries
POLL_S = 0.25  # how often a waiting handler checks that its client is still there
RESOLVE_TIMEOUT_S = 10.0
FINISH = {STOP: pb.FINISH_REASON_STOP, LENGTH: pb.FINISH_REASON_LENGTH, CANCELLED: pb.FINISH_REASON_CANCELLED}


rpc, rpc_stream = handlers("inference")


def recorded(version: registry_pb2.ModelVersion) -> tuple[RecordedFile, ...]:
    """The files of a version with the sha256 the registry recorded, for checking before it loads."""
    return tuple(RecordedFile(f.path, f.sha256) for f in version.files)


def usage(done: Done) -> pb.Usage:
    return pb.Usage(prompt_tokens=done.prompt_tokens, completion_tokens=done.completion_tokens,
                    time_to_first_token_ms=done.ttft_ms, tokens_per_second=done.tokens_per_second,
                    cached_prompt_tokens=done.cached_tokens)


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, engine: Engine, registry: registry_pb2_grpc.RegistryServiceStub, info: pb.GetServerInfoResponse) -> None:
        self.engine = engine
        self.registry = registry
        self.info = info

    # -- request -> job --------------------------------------------------------------------
    def resolve(self, reference: str, context) -> ModelSpec:
        try:
            parse_reference(reference)
        except ValueError as exc:
            raise InvalidArgument(str(exc), field="model") from None
        metadata = [(k, v) for k, v in context.invocation_metadata() or () if k in FORWARDED_METADATA]
        try:
            resolved = self.registry.ResolveModelReference(
                registry_pb2.ResolveModelReferenceRequest(reference=reference), metadata=metadata,
                timeout=RESOLVE_TIMEOUT_S,
            )
        except grpc.RpcError as error:
            raise UpstreamError(error) from None
        version = resolved.version
        name = version_name(version.model, version.version)
        if version.kind == registry_pb2.MODEL_VERSION_KIND_ADAPTER:
            base = resolved.base_version
            return ModelSpec(name, base.artifact_path, version.artifact_path, version_name(base.model, base.version),
                             files=recorded(base), adapter_files=recorded(version))
        return ModelSpec(name, version.artifact_path, files=recorded(version))

    def job(self, request, context, streaming: bool = True) -> Job:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        for i, message in enumerate(messages):
            if message["role"] not in ROLES:
                raise InvalidArgument(f"messages[{i}].role must be one of {', '.join(ROLES)}, got {message['role']!r}",
                                      field=f"messages[{i}].role")
        if messages and request.prompt:
            raise InvalidArgument("send either messages or prompt, not both", field="prompt")
        if not messages and not request.prompt:
            raise InvalidArgument("send messages (chat) or a prompt", field="messages")
        sampling = from_proto(request.sampling, request.HasField("sampling"))
        job = Job(self.resolve(request.model, context), sampling, messages or None, request.prompt, streaming=streaming)
        context.add_callback(job.cancel)  # the RPC ended (finished, cancelled, deadline): stop decoding
        return self.engine.submit(job)  # tokenizes the prompt here, in this handler's thread

    @staticmethod
    def _next(job: Job, context):
        while True:
            try:
                return job.events.get(timeout=POLL_S)
            except queue.Empty:
                if not context.is_active():
                    job.cancel()
                    return None

    def events(self, job: Job, context):
        """The job's events, token chunks grouped; ends quietly when the client goes away."""
        held = None
        while True:
            event, held = held or self._next(job, context), None
            if event is None:
                return
            if isinstance(event, Failed):
                raise event.error
            if not isinstance(event, Chunk):
                yield event
                return
            text, ids = [event.text], list(event.token_ids)
            while len(ids) < MAX_GROUP:
                try:
                    more = job.events.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(more, Chunk):
                    held = more
                    break
                text.append(more.text)
                ids.extend(more.token_ids)
            yield Chunk("".join(text), ids)

    # -- RPCs ------------------------------------------------------------------------------
    @rpc
    def Generate(self, request, context):
        job = self.job(request, context, streaming=False)
        with generation_span(job, request.model) as outcome:
            for event in self.events(job, context):  # only the Done: the text collects in the job
                outcome.done = event
                return pb.GenerateResponse(text="".join(job.collected), finish_reason=FINISH[event.finish_reason],
                                           usage=usage(event), model_version=job.spec.version)
        return pb.GenerateResponse(finish_reason=pb.FINISH_REASON_CANCELLED, model_version=job.spec.version)

    @rpc_stream
    def GenerateStream(self, request, context):
        job = self.job(request, context)
        context.send_initial_metadata(())  # tells the client the request was accepted (queued or running)
        version = job.spec.version
        with generation_span(job, request.model) as outcome:
            for event in self.events(job, context):
                if isinstance(event, Chunk):
                    yield pb.GenerateStreamResponse(text=event.text, token_ids=event.token_ids, model_version=version)
                else:
                    outcome.done = event
                    yield pb.GenerateStreamResponse(finish_reason=FINISH[event.finish_reason], usage=usage(event),
                                                    model_version=version)

    @rpc
    def GetServerInfo(self, request, context):
        return self.info

    @rpc
    def ListLoadedModels(self, request, context):
        return pb.ListLoadedModelsResponse(models=[
            pb.LoadedModel(model_version=e.spec.version if not e.spec.adapter_path else e.spec.base_version,
                           adapter_version=e.spec.version if e.spec.adapter_path else "",
                           memory_gb=e.loaded.nbytes / 1024**3 if e.loaded else 0.0,
                           active_streams=self.engine.active_streams(e.spec.version))
            for e in self.engine.cache.snapshot()
        ])
