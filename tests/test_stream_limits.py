"""Long-lived streams never starve a service: more following ReadEvents or WatchTrainingJob streams than
the server has threads, and health checks and unary calls still answer at once, while the streams past
the service's budget (mlxhub/serving.py) are refused with RESOURCE_EXHAUSTED."""

from __future__ import annotations

import time
from concurrent import futures

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from trainer_util import register

from gateway.server import running
from mlxhub.config import ConfigError, load_settings
from mlxhub.errors import status_of
from mlxhub.v1 import registry_pb2, registry_pb2_grpc, trainer_pb2, trainer_pb2_grpc

ACCEPTED = "accepted"


@pytest.fixture
def trainer_workers() -> int:
    """No workers: the watched job stays queued, so its watchers stay open."""
    return 0


def first_answers(calls: list) -> list[object]:
    """For each open stream: ACCEPTED once its first message arrives, else the status code it ended with."""

    def first(call):
        try:
            next(call)
            return ACCEPTED
        except grpc.RpcError as error:
            return error.code()

    with futures.ThreadPoolExecutor(len(calls)) as pool:
        pending = [pool.submit(first, call) for call in calls]
        not_done = futures.wait(pending, timeout=30).not_done
        if not_done:  # the server has no thread left for them
            for call in calls:
                call.cancel()
        assert not not_done, f"{len(not_done)} of {len(calls)} streams got no answer in 30 s"
        return [outcome.result() for outcome in pending]


def healthy_within_a_second(channel: grpc.Channel) -> None:
    started = time.monotonic()
    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING and time.monotonic() - started < 1


def test_registry_follow_streams_beyond_the_pool_leave_health_and_reads_alone(registry, settings):
    channel = grpc.insecure_channel(settings.address("registry"))
    stub = registry_pb2_grpc.RegistryServiceStub(channel)
    stub.CreateModel(registry_pb2.CreateModelRequest(name="demo"))
    calls = [stub.ReadEvents(registry_pb2.ReadEventsRequest(follow=True), timeout=120) for _ in range(70)]  # pool: 64
    try:
        answers = first_answers(calls)
        assert answers.count(ACCEPTED) == 16  # the registry's budget
        assert answers.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 70 - 16
        healthy_within_a_second(channel)
        assert stub.GetModel(registry_pb2.GetModelRequest(name="demo"), timeout=1).model.name == "demo"
        stub.CreateModel(registry_pb2.CreateModelRequest(name="other"), timeout=10)  # writes get connections too
    finally:
        for call in calls:
            call.cancel()
    channel.close()


def test_refused_stream_says_why_and_a_closed_stream_frees_its_slot(settings):
    from registry_svc.server import RegistryServer

    server = RegistryServer(settings.model_copy(update={"max_streams": {"registry": 2}})).start()
    channel = grpc.insecure_channel(settings.address("registry"))
    stub = registry_pb2_grpc.RegistryServiceStub(channel)
    follow = registry_pb2.ReadEventsRequest(follow=True)
    try:
        stub.CreateModel(registry_pb2.CreateModelRequest(name="demo"))
        open_streams = [stub.ReadEvents(follow, timeout=60) for _ in range(2)]
        assert [next(call).event.type for call in open_streams] == ["ModelRegistered"] * 2
        with pytest.raises(grpc.RpcError) as caught:
            next(stub.ReadEvents(follow, timeout=60))
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        message = status_of(caught.value).message
        assert "2 streams" in message and "MLXHUB_REGISTRY_MAX_STREAMS" in message

        open_streams[0].cancel()
        deadline = time.monotonic() + 20
        while True:  # the server notices the cancel and gives the slot back
            again = stub.ReadEvents(follow, timeout=60)
            try:
                assert next(again).event.type == "ModelRegistered"
                break
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline
                time.sleep(0.2)
        again.cancel()
        open_streams[1].cancel()
    finally:
        channel.close()
        server.stop(grace=1)


def test_trainer_watch_streams_beyond_the_pool_leave_health_and_reads_alone(trainer, registry_stub, settings,
                                                                           tiny_model, training_chats):
    register(registry_stub, tiny_model, training_chats)
    channel = grpc.insecure_channel(settings.address("trainer"))
    stub = trainer_pb2_grpc.TrainerServiceStub(channel)
    job = stub.CreateTrainingJob(trainer_pb2.CreateTrainingJobRequest(
        model="tiny", dataset="chats", config=trainer_pb2.TrainingConfig(iters=4, batch_size=1)), timeout=60).job
    calls = [stub.WatchTrainingJob(trainer_pb2.WatchTrainingJobRequest(id=job.id), timeout=120)
             for _ in range(34)]  # pool: 32
    try:
        answers = first_answers(calls)
        assert answers.count(ACCEPTED) == 16  # the trainer's budget
        assert answers.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 34 - 16
        healthy_within_a_second(channel)
        got = stub.GetTrainingJob(trainer_pb2.GetTrainingJobRequest(id=job.id), timeout=1).job
        assert got.state == trainer_pb2.TRAINING_JOB_STATE_QUEUED
    finally:
        for call in calls:
            call.cancel()
    channel.close()


def test_watching_over_http_beyond_the_pool_gets_429_for_the_excess(trainer, registry_stub, settings, tiny_model,
                                                                     training_chats):
    """The report: 32 `curl -N .../jobs/ID:watch` hung the trainer. Now the gateway answers the excess 429."""
    register(registry_stub, tiny_model, training_chats)
    with running(settings) as url, httpx.Client(base_url=url, timeout=30,
                                                limits=httpx.Limits(max_connections=64)) as http:
        body = {"model": "tiny", "dataset": "chats", "config": {"iters": 4, "batchSize": 1}}
        job = http.post("/v1/training/jobs", json=body).json()["job"]

        def watch(_):
            return http.send(http.build_request("GET", f"/v1/training/jobs/{job['id']}:watch"), stream=True)

        with futures.ThreadPoolExecutor(34) as pool:
            responses = list(pool.map(watch, range(34)))  # pool: 32
        try:
            statuses = sorted(response.status_code for response in responses)
            assert statuses == [200] * 16 + [429] * 18
            refused = next(response for response in responses if response.status_code == 429)
            assert "MLXHUB_TRAINER_MAX_STREAMS" in refused.read().decode()
            assert http.get(f"/v1/training/jobs/{job['id']}", timeout=1).status_code == 200
        finally:
            for response in responses:
                response.close()


@pytest.mark.parametrize("value", ["0", "-3", "many", "1.5"])
def test_a_stream_limit_must_be_a_positive_whole_number(value):
    with pytest.raises(ConfigError, match=f"MLXHUB_TRAINER_MAX_STREAMS='{value}'"):
        load_settings({"MLXHUB_TRAINER_MAX_STREAMS": value})


def test_a_stream_limit_must_leave_threads_for_unary_calls(settings):
    from mlxhub.serving import new_server

    with pytest.raises(ConfigError, match="MLXHUB_TRAINER_MAX_STREAMS=20 .* use 1 to 16"):
        new_server("trainer", settings.model_copy(update={"max_streams": {"trainer": 20}}), max_workers=32)
    assert new_server("trainer", settings.model_copy(update={"max_streams": {"trainer": 16}}), max_workers=32)


def test_a_servers_pool_starts_all_its_threads_before_the_first_call():
    """The pool's threads exist from the start (mlxhub.serving.started_pool): a burst of calls finds them
    waiting, and the service's memory does not step up each time a burst reaches a new high."""
    import threading

    from mlxhub.serving import started_pool

    def pool_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("pool-test")]

    pool = started_pool(12, "pool-test")
    try:
        started = pool_threads()
        assert len(started) == 12 and all(t.is_alive() for t in started)
        done = [pool.submit(time.sleep, 0.01) for _ in range(40)]
        assert all(call.result(timeout=10) is None for call in done)
        assert pool_threads() == started  # the burst ran on them: no thread added, none lost
    finally:
        pool.shutdown(wait=True)


def test_a_stopped_server_ends_its_pools_threads(settings):
    import threading

    from grpc_health.v1 import health

    from mlxhub.serving import new_server, stop_serving

    def pool_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("pool-stop-rpc")]

    server = new_server("pool-stop", settings, max_workers=20, max_streams=4)
    server.add_insecure_port("127.0.0.1:0")
    server.start()
    assert len(pool_threads()) == 20
    stop_serving(server, health.HealthServicer(), grace=None)
    deadline = time.monotonic() + 10
    while pool_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool_threads() == []  # ended with the server, though `server` is still referenced here
