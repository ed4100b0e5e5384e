"""A request alone on its version decodes on mlx-lm's plain path (`inference_svc.decode.solo`) and
moves into the batch when a second request arrives: it goes on exactly where it was, so its
greedy and seeded outputs are those it gets alone, as are the newcomer's (real SmolLM2)."""

from __future__ import annotations

import pytest

from inference_svc.cache import ModelSpec
from inference_svc.decode.engine import Engine
from inference_svc.decode.generation import Chunk, Done, Generation, Request
from inference_svc.decode.sampling import Sampling
from inference_svc.loader import FLOAT32, load

GB = 1024**3
FIRST = [{"role": "user", "content": "Write a short story about a robot who learns to paint."}]
SECOND = [{"role": "user", "content": "Explain how a bicycle works to a ten year old."}]


@pytest.fixture(scope="module")
def engine(smollm2):
    loaded = load(str(smollm2), "", FLOAT32)
    engine = Engine(lambda spec: loaded, 4 * GB, 60.0, max_running=4, max_queued=8,
                    tokenizer=lambda spec: loaded.tokenizer).start()
    yield engine
    engine.stop()


def submit(engine: Engine, chat, sampling: Sampling) -> Generation:
    return engine.submit(Request(ModelSpec("smollm2/versions/1", "unused"), sampling, chat))


def read(generation: Generation, chunks: int | None = None) -> tuple[str, Done | None]:
    """The text of the next `chunks` chunks (all, with the Done, when None)."""
    text = []
    while chunks is None or len(text) < chunks:
        event = generation.events.get(timeout=120)
        if not isinstance(event, Chunk):
            assert isinstance(event, Done), event
            return "".join(text), event
        text.append(event.text)
    return "".join(text), None


@pytest.mark.parametrize("sampling", [Sampling(max_tokens=40), Sampling(temperature=0.9, seed=11, max_tokens=40)],
                         ids=["greedy", "seeded"])
def test_a_request_joined_mid_stream_goes_on_as_if_alone(engine, sampling):
    first_alone, done = read(submit(engine, FIRST, sampling))
    second_alone, _ = read(submit(engine, SECOND, sampling))
    assert done.completion_tokens == 40

    first = submit(engine, FIRST, sampling)
    head, _ = read(first, chunks=6)
    assert first.solo is not None  # alone: decoding on the plain path
    second = submit(engine, SECOND, sampling)
    tail, done = read(first)
    assert first.solo is None  # moved into the batch when the second arrived
    assert head + tail == first_alone and done.completion_tokens == 40
    assert read(second)[0] == second_alone


def test_requests_arriving_together_are_batched_from_the_start(engine):
    sampling = Sampling(max_tokens=12)
    alone = [read(submit(engine, chat, sampling))[0] for chat in (FIRST, SECOND)]
    jobs = [submit(engine, chat, sampling) for chat in (FIRST, SECOND)]
    assert [read(job)[0] for job in jobs] == alone
