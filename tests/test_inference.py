"""The inference service over gRPC, against a real registry: the real demo model answers,
responses name the exact version, references and sampling are validated, an alias move
affects only new requests, a full queue answers RESOURCE_EXHAUSTED and a cancelled
stream stops decoding."""

from __future__ import annotations

import time

import grpc
import pytest
from inference_util import chat, field_violations, register

from inference_svc import metrics
from inference_svc.server import InferenceOptions
from mlxhub.v1 import inference_pb2 as pb
from mlxhub.v1 import registry_pb2 as rpb

QUESTION = "What is the capital of France?"


def test_smollm2_streams_and_answers_paris(inference_stub, registry_stub, smollm2):
    register(registry_stub, "smollm2", smollm2, alias="default")
    messages = list(inference_stub.GenerateStream(chat("smollm2@default", QUESTION, max_tokens=12)))
    *tokens, final = messages
    assert "Paris" in "".join(m.text for m in tokens)
    assert all(m.token_ids for m in tokens) and {m.model_version for m in messages} == {"smollm2/versions/1"}
    assert final.finish_reason in (pb.FINISH_REASON_STOP, pb.FINISH_REASON_LENGTH)
    assert final.usage.prompt_tokens > 10 and final.usage.completion_tokens == sum(len(m.token_ids) for m in tokens) + (
        final.finish_reason == pb.FINISH_REASON_STOP)
    assert final.usage.time_to_first_token_ms > 0

    request = pb.GenerateRequest(model="smollm2", messages=[pb.ChatMessage(role="user", content=QUESTION)],
                                 sampling=pb.SamplingParams(max_tokens=12, stop=["Paris"]))
    unary = inference_stub.Generate(request)
    assert unary.model_version == "smollm2/versions/1" and unary.finish_reason == pb.FINISH_REASON_STOP
    assert "Paris" not in unary.text and unary.text.strip().endswith("is")

    info = inference_stub.GetServerInfo(pb.GetServerInfoRequest())
    assert info.backend == "cpu" and info.weight_format == "float32" and info.mlx_version
    loaded = inference_stub.ListLoadedModels(pb.ListLoadedModelsRequest()).models
    assert [m.model_version for m in loaded] == ["smollm2/versions/1"] and loaded[0].memory_gb > 0.1


def test_unknown_model_is_not_found_and_bad_reference_names_the_field(inference_stub):
    with pytest.raises(grpc.RpcError) as caught:
        inference_stub.Generate(pb.GenerateRequest(model="nobody@prod", prompt="hi"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        inference_stub.Generate(pb.GenerateRequest(model="Bad Name", prompt="hi"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violations(caught.value) == ["model"]


@pytest.mark.parametrize(("sampling", "field"), [
    ({"temperature": -0.5}, "sampling.temperature"),
    ({"top_p": 1.5}, "sampling.top_p"),
    ({"top_k": -1}, "sampling.top_k"),
    ({"min_p": 1.0}, "sampling.min_p"),
    ({"repetition_penalty": -1.0}, "sampling.repetition_penalty"),
    ({"max_tokens": -3}, "sampling.max_tokens"),
    ({"max_tokens": 100_000}, "sampling.max_tokens"),
    ({"stop": [""]}, "sampling.stop"),
])
def test_sampling_errors_name_the_field(inference_stub, registry_stub, tiny_model, sampling, field):
    register(registry_stub, "tiny", tiny_model)
    with pytest.raises(grpc.RpcError) as caught:
        list(inference_stub.GenerateStream(chat("tiny", "hi", **sampling)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == [field]


def test_messages_or_prompt_are_required_and_roles_checked(inference_stub, registry_stub, tiny_model):
    register(registry_stub, "tiny", tiny_model)
    for request, field in [
        (pb.GenerateRequest(model="tiny"), "messages"),
        (pb.GenerateRequest(model="tiny", prompt="x", messages=[pb.ChatMessage(role="user", content="y")]), "prompt"),
        (pb.GenerateRequest(model="tiny", messages=[pb.ChatMessage(role="robot", content="y")]), "messages[0].role"),
    ]:
        with pytest.raises(grpc.RpcError) as caught:
            inference_stub.Generate(request)
        assert field_violations(caught.value) == [field]


def test_alias_move_mid_stream(inference_stub, registry_stub, tiny_model):
    register(registry_stub, "tiny", tiny_model, alias="prod")
    register(registry_stub, "tiny", tiny_model)
    stream = inference_stub.GenerateStream(chat("tiny@prod", "hi", max_tokens=400))
    first = next(stream)
    registry_stub.SetAlias(rpb.SetAliasRequest(name="tiny", alias="prod", version=2))
    moved = inference_stub.Generate(pb.GenerateRequest(model="tiny@prod", prompt="hi",
                                                       sampling=pb.SamplingParams(max_tokens=3)))
    assert moved.model_version == "tiny/versions/2"
    rest = list(stream)
    assert {m.model_version for m in [first, *rest]} == {"tiny/versions/1"}
    assert rest[-1].finish_reason == pb.FINISH_REASON_LENGTH and rest[-1].usage.completion_tokens == 400


@pytest.fixture
def inference_options():
    return InferenceOptions(memory_gb=1.0, keep_alive_s=60.0, max_running=1, max_queued=1, weights="float32")


def test_full_queue_is_resource_exhausted_and_cancel_stops_decoding(inference_stub, registry_stub, tiny_model):
    register(registry_stub, "tiny", tiny_model)
    cancelled = metrics.REQUESTS.labels("tiny/versions/1", "cancelled")
    before = cancelled._value.get()
    running = inference_stub.GenerateStream(chat("tiny", "hi", max_tokens=4000))
    next(running)  # in the batch now
    waiting = inference_stub.GenerateStream(chat("tiny", "hi", max_tokens=4000))
    waiting.initial_metadata()  # accepted: it sits in the queue
    with pytest.raises(grpc.RpcError) as caught:
        inference_stub.Generate(pb.GenerateRequest(model="tiny", prompt="hi"))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    running.cancel()
    got = []
    for message in waiting:  # the queued request now runs: the first one left the batch
        got.append(message)
        if len(got) == 3:
            waiting.cancel()
            break
    assert len(got) == 3
    deadline = time.monotonic() + 30
    while cancelled._value.get() < before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cancelled._value.get() == before + 2
    assert inference_stub.ListLoadedModels(pb.ListLoadedModelsRequest()).models[0].active_streams == 0
