"""gRPC adapter: validate the request, resolve the model reference through the registry
(with the caller's credentials), hand the request to the engine, and turn its events into
responses. Token events that pile up while a slow client reads are sent as one group.
UnloadModel and ListLoadedModels show and act on the engine's model cache."""

from __future__ import annotations

import math
import queue
import time

import grpc

from inference_svc.cache import ModelSpec
from inference_svc.decode import constraints
from inference_svc.decode.engine import Engine
from inference_svc.decode.generation import CANCELLED, LENGTH, STOP, Chunk, Done, Failed, Generation, Request
from inference_svc.decode.sampling import TokenLogprob, from_proto
from inference_svc.decode.vocabulary import token_bytes
from inference_svc.genai import generation_span
from inference_svc.integrity import RecordedFile
from inference_svc.stats import BUCKET_S, Recorder, percentile
from inference_svc.tool_calls import ToolCallDelta, ToolCallReader, read_all, template_message, tool_use
from inference_svc.tool_calls import constraint as constraint_of
from mlxhub import bounds
from mlxhub.errors import InvalidArgument, NotFound, UpstreamError, handlers
from mlxhub.names import parse_reference, version_name
from mlxhub.v1 import inference_pb2 as pb
from mlxhub.v1 import inference_pb2_grpc, registry_pb2, registry_pb2_grpc

FORWARDED_METADATA = ("authorization", "x-request-id")  # trace context: by the channel's interceptor
ROLES = tuple(bounds.of(pb.ChatMessage, "role").allowed)  # declared in inference.proto
MAX_GROUP = 64  # most tokens one stream message carries
POLL_S = 0.25  # how often a waiting handler checks that its client is still there
RESOLVE_TIMEOUT_S = 10.0
GB = 1024**3
FINISH = {STOP: pb.FINISH_REASON_STOP, LENGTH: pb.FINISH_REASON_LENGTH, CANCELLED: pb.FINISH_REASON_CANCELLED}


rpc, rpc_stream = handlers("inference")


def recorded(version: registry_pb2.ModelVersion) -> tuple[RecordedFile, ...]:
    """The files of a version with the sha256 the registry recorded, for checking before it loads."""
    return tuple(RecordedFile(f.path, f.sha256) for f in version.files)


def spec_of(resolved: registry_pb2.ResolveModelReferenceResponse) -> ModelSpec:
    """What to load for a version the registry resolved (an adapter: on its base)."""
    version = resolved.version
    name = version_name(version.model, version.version)
    if version.kind == registry_pb2.MODEL_VERSION_KIND_ADAPTER:
        base = resolved.base_version
        return ModelSpec(name, base.artifact_path, version.artifact_path, version_name(base.model, base.version),
                         files=recorded(base), adapter_files=recorded(version))
    return ModelSpec(name, version.artifact_path, files=recorded(version))


LAST_TIMESTAMP_S = 253402300799  # 9999-12-31T23:59:59Z, google.protobuf.Timestamp's upper bound


def keep_alive_of(request) -> float | None:
    """The request's keep_alive_seconds (None when unset); any negative value pins."""
    if not request.HasField("keep_alive_seconds"):
        return None
    seconds = request.keep_alive_seconds
    if not math.isfinite(seconds):
        raise InvalidArgument(f"keep_alive_seconds must be a number of seconds, got {seconds}; send -1 to keep the "
                              "version loaded until UnloadModel, 0 to unload it after this answer",
                              field="keep_alive_seconds")
    return -1.0 if seconds < 0 else seconds


def logprobs_of(tokenizer, records: list[TokenLogprob] | None) -> list[pb.TokenLogprob]:
    """The tokens' log-probabilities as the contract has them, each token named by its text and bytes."""
    def named(token: int) -> dict:
        raw = token_bytes(tokenizer, token)
        return {"token_id": token, "token": raw.decode("utf-8", errors="replace"), "token_bytes": raw}

    return [pb.TokenLogprob(**named(r.token), logprob=r.logprob,
                            top_logprobs=[pb.TopLogprob(**named(t), logprob=lp) for t, lp in r.top])
            for r in records or ()]


def format_of(request) -> constraints.Format | None:
    """The request's `response_format` (None when it asks for none)."""
    kind = request.response_format.WhichOneof("format") if request.HasField("response_format") else None
    if kind is None or (kind == constraints.JSON_OBJECT and not request.response_format.json_object):
        return None
    source = "" if kind == constraints.JSON_OBJECT else getattr(request.response_format, kind)
    return constraints.Format(kind, source, field=f"response_format.{kind}")


def usage(done: Done) -> pb.Usage:
    return pb.Usage(prompt_tokens=done.prompt_tokens, completion_tokens=done.completion_tokens,
                    time_to_first_token_ms=done.ttft_ms, tokens_per_second=done.tokens_per_second,
                    cached_prompt_tokens=done.cached_tokens)


def finish_reason(done: Done, called: bool) -> int:
    """A reply that called tools and stopped by itself finished to have them run."""
    return pb.FINISH_REASON_TOOL_CALLS if called and done.finish_reason == STOP else FINISH[done.finish_reason]


def tool_deltas(items: list[str | ToolCallDelta]) -> tuple[str, list[pb.ToolCallDelta]]:
    """A tool-call reader's output as a stream message's text and call deltas (a call's name first,
    then its arguments in pieces, each numbered by the reader with its call's index)."""
    calls = [item for item in items if isinstance(item, ToolCallDelta)]
    deltas = [pb.ToolCallDelta(index=c.index, id=c.id, name=c.name, arguments=c.arguments) for c in calls]
    return "".join(item for item in items if isinstance(item, str)), deltas


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    def __init__(self, engine: Engine, registry: registry_pb2_grpc.RegistryServiceStub, info: pb.GetServerInfoResponse) -> None:
        self.engine = engine
        self.registry = registry
        self.info = info

    # -- request -> generation -----------------------------------------------------------------
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
        return spec_of(resolved)

    def submit(self, request, context, streaming: bool = True) -> Generation:
        for i, message in enumerate(request.messages):
            if message.role not in ROLES:
                raise InvalidArgument(f"messages[{i}].role must be one of {', '.join(ROLES)}, got {message.role!r}",
                                      field=f"messages[{i}].role")
        messages = [template_message(m, i) for i, m in enumerate(request.messages)]
        tools = tool_use(request.tools, request.tool_choice, chat=bool(messages))
        if messages and request.prompt:
            raise InvalidArgument("send either messages or prompt, not both", field="prompt")
        if not messages and not request.prompt:
            raise InvalidArgument("send messages (chat) or a prompt", field="messages")
        sampling = from_proto(request.sampling, request.HasField("sampling"))
        if request.top_logprobs and not request.logprobs:
            raise InvalidArgument("top_logprobs needs logprobs: true", field="top_logprobs")
        keep_alive = keep_alive_of(request)
        spec, fmt = self.resolve(request.model, context), format_of(request)
        constraint = constraint_of(fmt, tools, self.engine.tokenizer(spec))  # tool calls decode under their schemas
        asked = Request(spec, sampling, messages or None, request.prompt, streaming=streaming, tools=tools,
                        logprobs=request.top_logprobs if request.logprobs else None, constraint=constraint,
                        keep_alive_s=keep_alive)
        generation = self.engine.submit(asked)  # tokenizes the prompt here, in this handler's thread
        if not context.add_callback(generation.cancel):  # the RPC ended (finished, cancelled, deadline): stop decoding
            generation.cancel()  # it ended while the prompt was tokenized
        return generation

    @staticmethod
    def _next(generation: Generation, context):
        while True:
            try:
                return generation.events.get(timeout=POLL_S)
            except queue.Empty:
                if not context.is_active():
                    generation.cancel()
                    return None

    def events(self, generation: Generation, context):
        """The generation's events, token chunks grouped; ends quietly when the client goes away."""
        held = None
        while True:
            event, held = held or self._next(generation, context), None
            if event is None:
                return
            if isinstance(event, Failed):
                raise event.error
            if not isinstance(event, Chunk):
                yield event
                return
            text, ids, logprobs = [event.text], list(event.token_ids), event.logprobs
            while len(ids) < MAX_GROUP:
                try:
                    more = generation.events.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(more, Chunk):
                    held = more
                    break
                text.append(more.text)
                ids.extend(more.token_ids)
                if logprobs is not None:
                    logprobs = logprobs + (more.logprobs or [])
            yield Chunk("".join(text), ids, logprobs)

    # -- RPCs ------------------------------------------------------------------------------
    @rpc
    def Generate(self, request, context):
        try:
            return self._generate(request, context)
        except Exception:
            self.engine.stats.error()
            raise

    def _generate(self, request, context):
        generation = self.submit(request, context, streaming=False)
        with generation_span(generation.request, request.model) as outcome:
            for event in self.events(generation, context):  # only the Done: the text collects in the generation
                outcome.done = event
                text, calls = "".join(generation.collected), []
                if generation.request.tools is not None:
                    text, calls = read_all(self._reader(generation), text)
                return pb.GenerateResponse(text=text, finish_reason=finish_reason(event, bool(calls)), usage=usage(event),
                                           tool_calls=[pb.ToolCall(id=c.id, name=c.name, arguments=c.arguments)
                                                       for c in calls],
                                           model_version=generation.spec.version,
                                           logprobs=logprobs_of(self.engine.tokenizer(generation.spec),
                                                                generation.collected_logprobs))
        return pb.GenerateResponse(finish_reason=pb.FINISH_REASON_CANCELLED, model_version=generation.spec.version)

    @rpc_stream
    def GenerateStream(self, request, context):
        try:
            yield from self._generate_stream(request, context)
        except Exception:
            self.engine.stats.error()
            raise

    def _generate_stream(self, request, context):
        generation = self.submit(request, context)
        context.send_initial_metadata(())  # tells the client the request was accepted (queued or running)
        version, tokenizer = generation.spec.version, self.engine.tokenizer(generation.spec)
        with generation_span(generation.request, request.model) as outcome:
            reader = self._reader(generation) if generation.request.tools is not None else None
            calls = 0  # tool-call deltas sent so far
            for event in self.events(generation, context):
                if isinstance(event, Chunk):
                    text, deltas = event.text, []
                    if reader is not None:
                        text, deltas = tool_deltas(reader.feed(event.text))
                        calls += len(deltas)
                    yield pb.GenerateStreamResponse(text=text, token_ids=event.token_ids, model_version=version,
                                                    logprobs=logprobs_of(tokenizer, event.logprobs), tool_calls=deltas)
                else:
                    outcome.done = event
                    if reader is not None:
                        text, deltas = tool_deltas(reader.finish())
                        calls += len(deltas)
                        if text or deltas:
                            yield pb.GenerateStreamResponse(text=text, tool_calls=deltas, model_version=version)
                    yield pb.GenerateStreamResponse(finish_reason=finish_reason(event, calls > 0), usage=usage(event),
                                                    model_version=version)

    def _reader(self, generation: Generation) -> ToolCallReader:
        return ToolCallReader.for_tokenizer(self.engine.tokenizer(generation.spec), generation.request.tools)

    @rpc
    def GetServerInfo(self, request, context):
        info = pb.GetServerInfoResponse()
        info.CopyFrom(self.info)
        used = sum(e.loaded.nbytes for e in self.engine.cache.snapshot() if e.loaded) / GB
        info.memory_used_gb, info.memory_free_gb = used, max(0.0, info.memory_budget_gb - used)
        return info

    @rpc
    def ListLoadedModels(self, request, context):
        entries = self.engine.cache.snapshot()
        return pb.ListLoadedModelsResponse(models=[self._loaded(e, entries) for e in entries])

    @rpc
    def UnloadModel(self, request, context):
        try:
            reference = parse_reference(request.model)
        except ValueError as exc:
            raise InvalidArgument(str(exc), field="model") from None
        if reference.version and not reference.alias:  # an exact version: no need to ask the registry
            version = version_name(reference.name, reference.version)
        else:
            version = self.resolve(request.model, context).version
        try:
            done = self.engine.unload(version)
        except NotFound as error:
            if version != request.model:  # say what the reference resolved to
                raise NotFound(f"{request.model} points to {version}: {error.message}", resource_type=error.resource_type,
                               resource_name=error.resource_name) from None
            raise
        return pb.UnloadModelResponse(unloaded_versions=done.unloaded, unloading_versions=done.unloading,
                                      running_requests=done.running)

    def _loaded(self, entry, entries) -> pb.LoadedModel:
        spec, stats = entry.spec, self.engine.stats
        wall, mono = time.time(), time.monotonic()
        active = self.engine.active_streams(spec.version)
        requests, tokens, minutes = stats.recent(spec.version)
        nbytes = entry.loaded.nbytes if entry.loaded else 0
        model = pb.LoadedModel(
            model_version=spec.version if not spec.adapter_path else spec.base_version,
            adapter_version=spec.version if spec.adapter_path else "",
            kind=pb.LOADED_MODEL_KIND_ADAPTER if spec.adapter_path else pb.LOADED_MODEL_KIND_BASE,
            bytes=nbytes, pinned=entry.pinned, preloaded="; ".join(entry.preloaded) or "; ".join(
                f"base of {a.spec.version}, {reason}" for a in self.engine.cache.adapters_of(entry, entries)
                for reason in a.preloaded),
            memory_gb=nbytes / GB, active_streams=active,
            request_count=requests, generated_tokens=tokens,
            recent=[pb.MinuteStat(request_count=m.requests, generated_tokens=m.tokens,
                                  time_to_first_token_p50_ms=percentile(m.ttft, 0.5),
                                  tokens_per_second=m.rate_sum / m.requests if m.requests else 0.0)
                    for m in minutes],
        )
        for stat, m in zip(model.recent, minutes, strict=True):
            stat.start_time.FromSeconds(m.start)
        last_used = entry.last_used
        model.last_used_time.FromNanoseconds(int((wall - (mono - last_used)) * 1e9))
        expires = self.engine.cache.expires(entry, entries)
        if active == 0 and entry.active == 0 and expires is not None:
            unload = wall + (expires - mono)
            # a keep-alive of centuries is said as the last time a Timestamp can hold (the end of year 9999)
            if unload >= LAST_TIMESTAMP_S:
                model.unload_time.FromSeconds(LAST_TIMESTAMP_S)
            else:
                model.unload_time.FromNanoseconds(int(max(unload, wall) * 1e9))
        return model

    @rpc
    def GetMetricsSummary(self, request, context):
        stats: Recorder = self.engine.stats
        now = stats.clock()
        response = pb.GetMetricsSummaryResponse(bucket_seconds=BUCKET_S)
        for b in stats.summary(request.window_minutes or 15):
            bucket = response.buckets.add(
                request_count=b.requests, error_count=b.errors, generated_tokens=b.tokens,
                time_to_first_token_p50_ms=percentile(b.ttft, 0.5), time_to_first_token_p95_ms=percentile(b.ttft, 0.95),
                inter_token_latency_p50_ms=percentile(b.itl, 0.5), inter_token_latency_p95_ms=percentile(b.itl, 0.95),
                tokens_per_second=b.tokens / Recorder.elapsed(b, BUCKET_S, now), queue_depth_max=b.queue_max,
                queue_depth_avg=b.queue_sum / b.queue_samples if b.queue_samples else 0.0,
            )
            bucket.start_time.FromSeconds(b.start)
        return response
