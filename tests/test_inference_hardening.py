"""One request must not hurt the others, and a version is checked before it loads: sampling
parameters the model cannot honour are refused before the request joins a batch, a sampler
that fails mid-batch fails its request alone, a dead engine thread is replaced (health says
NOT_SERVING meanwhile), a multi-MB prompt is tokenized outside the engine thread, a version
too big for the memory budget is refused from its files' headers before anything loads, and
files changed since registration are refused. Real registry, inference service and tiny
random llamas."""

from __future__ import annotations

import json
import os
import shutil
import struct
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from inference_util import chat, field_violations, register
from prometheus_client import REGISTRY

from bench.tiny_model import make_tiny_model
from inference_svc import loader, prompts
from inference_svc.cache import ModelCache, ModelSpec
from inference_svc.decode import sampling
from inference_svc.decode.engine import Engine
from inference_svc.decode.generation import Chunk, Done, Failed, Generation, Request
from inference_svc.footprint import served_bytes
from inference_svc.integrity import RecordedFile, Verifier
from inference_svc.server import InferenceOptions
from mlxhub.digest import sha256_file
from mlxhub.errors import FailedPrecondition, ResourceExhausted
from mlxhub.v1 import inference_pb2 as pb

GB = 1024**3
TINY_BYTES = 362_496  # the tiny llama's weights in float32


def text_of(stream) -> tuple[str, list]:
    messages = list(stream)
    return "".join(m.text for m in messages), messages


def read(generation: Generation) -> tuple[str, Done | Failed]:
    text = []
    while True:
        event = generation.events.get(timeout=120)
        if isinstance(event, Chunk):
            text.append(event.text)
        else:
            return "".join(text), event


# -- A2: one request's sampling cannot fail the others -------------------------------------------
def test_top_k_beyond_the_vocabulary_is_refused_while_a_long_stream_goes_on(inference_stub, registry_stub, tiny_model):
    register(registry_stub, "tiny", tiny_model)
    alone, _ = text_of(inference_stub.GenerateStream(chat("tiny", "hello", max_tokens=300)))

    long = inference_stub.GenerateStream(chat("tiny", "hello", max_tokens=300))
    first = next(long)
    with pytest.raises(grpc.RpcError) as caught:
        list(inference_stub.GenerateStream(chat("tiny", "hi", temperature=1.0, top_k=100_000, max_tokens=20)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == ["sampling.top_k"]
    assert "vocabulary of 259 tokens" in caught.value.details()

    rest, messages = text_of(long)
    assert messages[-1].finish_reason == pb.FINISH_REASON_LENGTH and messages[-1].usage.completion_tokens == 300
    assert first.text + rest == alone  # unharmed: the same greedy text as alone


def test_a_negative_seed_samples_reproducibly(inference_stub, registry_stub, tiny_model):
    register(registry_stub, "tiny", tiny_model)
    texts = set()
    for _ in range(2):
        answer = inference_stub.Generate(pb.GenerateRequest(model="tiny", prompt="hi", sampling=pb.SamplingParams(
            temperature=0.8, seed=-5, has_seed=True, max_tokens=8)))
        assert answer.usage.completion_tokens == 8
        texts.add(answer.text)
    assert len(texts) == 1


class FailsOnCall:
    """A real sampler that raises on its `fail_at`-th call (an error inside a batched step)."""

    def __init__(self, fail_at: int, error: BaseException) -> None:
        self.sampler, self.calls, self.fail_at, self.error = sampling.make_sampler(
            sampling.Sampling(temperature=0.7, seed=1)), 0, fail_at, error
        self.takes_logits = True

    def __call__(self, logits):
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.error
        return self.sampler(logits)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The real engine on a tiny llama, without a server, and the spec of its one version."""
    directory = make_tiny_model(tmp_path_factory.mktemp("engine") / "tiny")
    engine = Engine(lambda spec: loader.load(spec.path), 1 * GB, 60.0, max_running=4, max_queued=8).start()
    yield engine, ModelSpec("tiny/versions/1", str(directory))
    engine.stop()


def test_a_sampler_that_fails_in_a_batched_step_fails_its_request_only(engine):
    engine, spec = engine
    greedy = sampling.Sampling(max_tokens=200)
    alone, done = read(engine.submit(Request(spec, greedy, prompt="hello")))
    assert isinstance(done, Done)

    long = engine.submit(Request(spec, greedy, prompt="hello"))
    first = long.events.get(timeout=120)  # decoding now
    bad = FailsOnCall(fail_at=4, error=ValueError("this sampler broke"))
    failing = engine.submit(Request(spec, sampling.Sampling(max_tokens=100), prompt="hi", sampler=bad))
    seeded = engine.submit(Request(spec, sampling.Sampling(temperature=0.7, seed=3, max_tokens=50), prompt="hi"))

    _, failed = read(failing)
    assert isinstance(failed, Failed) and "this sampler broke" in failed.error.message and bad.calls >= 4
    _, seeded_done = read(seeded)
    assert isinstance(seeded_done, Done) and seeded_done.completion_tokens == 50
    rest, long_done = read(long)
    assert isinstance(long_done, Done) and long_done.completion_tokens == 200
    assert first.text + rest == alone


def test_a_version_loading_does_not_pause_the_streams_of_another(tmp_path_factory, smollm2):
    """A load runs off the engine thread: a stream on one version goes on at its own pace while another
    version loads (files checked, weights read and converted), and two requests for that version share
    one load, then both run."""
    tiny = make_tiny_model(tmp_path_factory.mktemp("loading") / "tiny", max_position_embeddings=65536)
    smollm2_files = tuple(RecordedFile(f.name, sha256_file(f)) for f in sorted(smollm2.iterdir()) if f.is_file())
    verifier, loads = Verifier(), []

    def load(spec: ModelSpec) -> loader.Loaded:
        started = time.perf_counter()
        if spec.version.startswith("smollm2"):
            time.sleep(1.0)  # a slow disk: the load lasts long enough for a stall to show whatever the machine
        verifier.verify(spec.version, spec.path, spec.files)
        loaded = loader.load(spec.path)
        loads.append((spec.version, started, time.perf_counter()))
        return loaded

    engine = Engine(load, 4 * GB, 60.0, max_running=4, max_queued=8).start()
    try:
        stream = engine.submit(Request(ModelSpec("tiny/versions/1", str(tiny)), sampling.Sampling(max_tokens=60_000),
                                       prompt="hello"))
        arrivals: list[float] = []

        def consume() -> None:
            while not isinstance(stream.events.get(timeout=120), Done | Failed):
                arrivals.append(time.perf_counter())

        reader = threading.Thread(target=consume, daemon=True)
        reader.start()
        while len(arrivals) < 20:
            time.sleep(0.01)
        normal = (arrivals[-1] - arrivals[9]) / (len(arrivals) - 10)  # the stream's own token interval
        other = ModelSpec("smollm2/versions/1", str(smollm2), files=smollm2_files)
        both = [engine.submit(Request(other, sampling.Sampling(max_tokens=8), prompt="The capital of France is"))
                for _ in range(2)]
        answers = [read(generation) for generation in both]
        stream.cancel()
        reader.join(30)
    finally:
        engine.stop()

    assert [version for version, _, _ in loads] == ["tiny/versions/1", "smollm2/versions/1"]  # one load for both
    assert all(isinstance(done, Done) and done.completion_tokens == 8 for _, done in answers)
    assert answers[0][0] == answers[1][0]
    _, started, ended = loads[1]
    load_time = ended - started
    during = [t for t in arrivals if started <= t <= ended]
    gaps = [b - a for a, b in zip([started, *during], [*during, ended])]
    assert len(during) > 10, (len(during), load_time)  # the stream went on while the version loaded
    assert max(gaps) < load_time / 2, (max(gaps), load_time, normal)


class EngineDeath(BaseException):
    """Escapes every handler of the engine loop, as a fault of the engine thread itself would."""


def test_a_dead_engine_thread_is_replaced_and_health_says_not_serving_meanwhile(inference, inference_stub,
                                                                                 registry_stub, tiny_model, settings):
    register(registry_stub, "tiny", tiny_model)
    inference_stub.Generate(pb.GenerateRequest(model="tiny", prompt="hi", sampling=pb.SamplingParams(max_tokens=2)))
    engine = inference.engine
    restarts = REGISTRY.get_sample_value("mlxhub_inference_engine_restarts_total")
    channel = grpc.insecure_channel(settings.address("inference"))
    seen: list[int] = []
    watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)

    def follow() -> None:
        for answer in watch:
            seen.append(answer.status)
            if seen.count(health_pb2.HealthCheckResponse.SERVING) >= 2:
                return

    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    while not seen:
        time.sleep(0.01)

    spec = engine.cache.snapshot()[0].spec
    victim = engine.submit(Request(spec, sampling.Sampling(max_tokens=50), prompt="hi",
                               sampler=FailsOnCall(fail_at=3, error=EngineDeath())))
    _, failed = read(victim)
    assert isinstance(failed, Failed) and "restarted" in failed.error.message
    watcher.join(30)
    watch.cancel()
    assert seen == [health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING,
                    health_pb2.HealthCheckResponse.SERVING]
    assert REGISTRY.get_sample_value("mlxhub_inference_engine_restarts_total") == restarts + 1 and engine.alive
    again = inference_stub.Generate(pb.GenerateRequest(model="tiny", prompt="hi", sampling=pb.SamplingParams(max_tokens=5)))
    assert again.usage.completion_tokens == 5
    channel.close()


# -- A3: prompts are tokenized outside the engine thread; chats are bounded -----------------------
def test_a_multi_megabyte_prompt_does_not_stall_a_running_stream(inference_stub, registry_stub, tmp_path):
    long_context = make_tiny_model(tmp_path / "long", max_position_embeddings=65536)
    register(registry_stub, "long", long_context)
    huge = "The quick brown fox jumps over the lazy dog. " * 45_000  # 2 MB: 2M tokens for this byte-level tokenizer
    started = time.perf_counter()
    prompts.encode(prompts.load(str(long_context)), "long", None, huge)
    tokenizing = time.perf_counter() - started  # what the engine thread would pause for

    stream = inference_stub.GenerateStream(chat("long", "hi", max_tokens=60_000))
    arrivals: list[float] = []

    def consume() -> None:
        try:
            for _ in stream:
                arrivals.append(time.perf_counter())
        except grpc.RpcError:
            pass  # cancelled at the end

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    while len(arrivals) < 3:
        time.sleep(0.01)
    sent = time.perf_counter()
    with pytest.raises(grpc.RpcError) as caught:
        inference_stub.Generate(pb.GenerateRequest(model="long", prompt=huge))
    answered = time.perf_counter()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violations(caught.value) == ["prompt"]
    time.sleep(0.2)
    stream.cancel()
    reader.join(30)

    during = [t for t in arrivals if sent <= t <= answered + 0.2]
    gaps = [b - a for a, b in zip([sent, *during], [*during, answered])]
    assert arrivals[-1] > answered, "the stream must still run when the huge prompt is answered"
    assert max(gaps) < max(1.0, tokenizing / 2), (max(gaps), tokenizing)


def test_too_many_chat_messages_are_refused_with_the_limit(inference_stub, registry_stub, tiny_model):
    register(registry_stub, "tiny", tiny_model)
    request = pb.GenerateRequest(model="tiny", messages=[pb.ChatMessage(role="user", content="hi")] *
                                 (prompts.MAX_MESSAGES + 1))
    with pytest.raises(grpc.RpcError) as caught:
        inference_stub.Generate(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violations(caught.value) == ["messages"]
    assert prompts.MAX_MESSAGES == 1024 and "the limit is 1024" in caught.value.details()


# -- A5: the memory budget is checked on an estimate, before anything loads -----------------------
def huge_model(directory: Path, tiny: Path, rows: int) -> Path:
    """A model directory whose safetensors header declares a float32 [rows, 1000] embedding; the data is a
    sparse hole (loading it would allocate rows * 4000 bytes, then fail on the wrong names)."""
    directory.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny / name, directory / name)
    size = rows * 1000 * 4
    header = json.dumps({"huge.weight": {"dtype": "F32", "shape": [rows, 1000], "data_offsets": [0, size]}}).encode()
    header += b" " * (-len(header) % 8)
    with (directory / "model.safetensors").open("wb") as handle:
        handle.write(struct.pack("<Q", len(header)) + header)
        handle.truncate(8 + len(header) + size)
    return directory


@pytest.fixture
def inference_options():
    return InferenceOptions(memory_gb=0.25, keep_alive_s=60.0, max_running=4, max_queued=8, weights="float32")


def test_a_version_beyond_the_budget_is_refused_before_loading(inference_stub, registry_stub, tiny_model, tmp_path):
    big = huge_model(tmp_path / "big", tiny_model, rows=100_000)  # 0.37 GB served, budget 0.25 GB
    assert served_bytes(str(big), "", loader.FLOAT32) == 400_000_000
    register(registry_stub, "big", big)
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        inference_stub.Generate(pb.GenerateRequest(model="big", prompt="hi"))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "needs an estimated 0.37 GB, more than the inference memory budget of 0.25 GB" in caught.value.details()
    assert time.monotonic() - started < 10
    assert not inference_stub.ListLoadedModels(pb.ListLoadedModelsRequest()).models


def test_idle_versions_make_room_before_a_version_loads_and_busy_ones_refuse_with_the_sizes(tiny_model):
    budget = 2 * TINY_BYTES + TINY_BYTES // 2  # two tiny versions fit, not three
    held: list[int] = []

    def load(spec: ModelSpec) -> loader.Loaded:
        held.append(cache.used_bytes)  # what is loaded while this one allocates
        return loader.load(spec.path)

    cache = ModelCache(load, budget, 60.0, estimate=lambda spec: served_bytes(spec.path, "", loader.FLOAT32))
    specs = [ModelSpec(f"tiny/versions/{n}", str(tiny_model)) for n in (1, 2, 3)]
    first, second = cache.get(specs[0]), cache.get(specs[1])
    second.active = 1
    cache.get(specs[2])  # the idle, least recently used version 1 goes first
    assert [e.spec.version for e in cache.snapshot()] == ["tiny/versions/2", "tiny/versions/3"]
    assert held == [0, TINY_BYTES, TINY_BYTES] and max(held) + TINY_BYTES <= budget
    assert first.loaded is None

    cache.snapshot()[1].active = 1  # both in use now
    with pytest.raises(ResourceExhausted) as caught:
        cache.get(specs[0])
    assert caught.value.message == (
        "cannot load tiny/versions/1 (an estimated 0.00 GB): the versions in use hold 0.00 GB of the 0.00 GB budget; "
        "retry when they are idle")
    assert caught.value.metadata == {"needed_bytes": str(TINY_BYTES), "budget_bytes": str(budget),
                                     "used_bytes": str(2 * TINY_BYTES)}
    assert len(held) == 3  # refused without loading


# -- B8: files changed since registration are refused on first load ------------------------------
def test_a_file_changed_after_registration_is_refused_naming_both_hashes(inference_stub, registry_stub, tiny_model,
                                                                         tmp_path):
    directory = shutil.copytree(tiny_model, tmp_path / "tiny")
    register(registry_stub, "tiny", directory)
    config = directory / "config.json"
    recorded, original = sha256_file(config), config.read_text()
    config.write_text(original.replace("1e-05", "1e-06"))
    with pytest.raises(grpc.RpcError) as caught:
        inference_stub.Generate(pb.GenerateRequest(model="tiny", prompt="hi", sampling=pb.SamplingParams(max_tokens=2)))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    message = caught.value.details()
    assert str(config) in message and recorded in message and sha256_file(config) in message

    config.write_text(original)  # restored: it loads
    answer = inference_stub.Generate(pb.GenerateRequest(model="tiny", prompt="hi", sampling=pb.SamplingParams(max_tokens=2)))
    assert answer.usage.completion_tokens == 2


def test_verification_is_kept_while_size_mtime_and_inode_are_unchanged(tmp_path):
    file = tmp_path / "weights.bin"
    file.write_bytes(b"a" * 100)
    record = (RecordedFile("weights.bin", sha256_file(file)),)
    verifier = Verifier()
    verifier.verify("v", str(tmp_path), record)
    verified_at = file.stat().st_mtime_ns
    file.write_bytes(b"b" * 100)
    os.utime(file, ns=(verified_at, verified_at))
    verifier.verify("v", str(tmp_path), record)  # same size, mtime and inode: not hashed again
    os.utime(file, ns=(verified_at + 10**9, verified_at + 10**9))
    with pytest.raises(FailedPrecondition, match="has sha256 .*, but the registry recorded"):
        verifier.verify("v", str(tmp_path), record)  # touched: hashed, and the change is found
    with pytest.raises(FailedPrecondition):
        Verifier().verify("v", str(tmp_path), record)  # a new one remembers nothing: it hashes
