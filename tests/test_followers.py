"""One bad event must never stop the registry: values PostgreSQL cannot store are refused
at the edge, and a follower of the log (read-model projection, NATS publisher) that fails
anyway is supervised: reported with its position, counted, restarted, and the service
stays writable, NOT_SERVING until the follower gets past the event."""

from __future__ import annotations

import asyncio
import math
import time

import grpc
import psycopg
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from prometheus_client import REGISTRY
from trainer_util import create, register

from gateway.health import deep_health
from mlxhub.bus import LogPublisher, tracking_recorder
from mlxhub.eventstore import postgres_env
from mlxhub.followers import FollowerWatch
from mlxhub.v1 import common_pb2, trainer_pb2
from mlxhub.v1 import registry_pb2 as pb
from registry_svc.application import RegistryApplication
from registry_svc.domain import Model

SERVICE = "mlxhub.v1.RegistryService"
TRAINER = "mlxhub.v1.TrainerService"


def failures(follower: str) -> float:
    return REGISTRY.get_sample_value("mlxhub_projection_failures_total", {"follower": follower}) or 0.0


def health_of(settings, service: str = SERVICE, server: str = "registry") -> int:
    with grpc.insecure_channel(settings.address(server)) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def eventually(condition, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout}s"
        time.sleep(0.1)
    return result


def followers_check(settings) -> dict:
    _healthy, body = asyncio.run(deep_health(settings))
    return next(check for check in body["checks"] if check["name"] == "followers")


def save_bypassing_validation(settings, **fields) -> int:
    """Record a ModelRegistered as an old release (or a row from before the edge checks) would have."""
    app = RegistryApplication(postgres_env(settings))
    try:
        model = Model(**{"base_model": "", "description": "", "tags": {}, "idempotency_key": "", "meta": {}, **fields})
        return app.save(model)[0].notification.id
    finally:
        app.close()


def test_an_event_the_projection_cannot_apply_leaves_the_registry_writable_and_not_ready(registry_stub, settings):
    registry_stub.CreateModel(pb.CreateModelRequest(name="before"))
    assert health_of(settings) == health_pb2.HealthCheckResponse.SERVING
    assert followers_check(settings)["ok"]
    counted = failures("registry_read_model")

    position = save_bypassing_validation(settings, name="poison", description="nul \x00 inside")

    eventually(lambda: health_of(settings) == health_pb2.HealthCheckResponse.NOT_SERVING, what="NOT_SERVING")
    assert health_of(settings, "") == health_pb2.HealthCheckResponse.SERVING  # alive: liveness must not restart it
    assert failures("registry_read_model") > counted
    check = followers_check(settings)
    assert not check["ok"]
    assert f"registry_read_model is stuck at position {position} (ModelRegistered)" in check["detail"]

    started = time.monotonic()
    created = registry_stub.CreateModel(pb.CreateModelRequest(name="after", description="still written"), timeout=30)
    assert time.monotonic() - started < 5.0  # no 10 s wait for a read model that cannot move
    assert created.model.name == "after" and created.model.description == "still written"
    updated = registry_stub.UpdateModel(pb.UpdateModelRequest(
        name="after", model=pb.Model(description="changed"), update_mask={"paths": ["description"]}), timeout=30)
    assert updated.model.description == "changed"
    assert registry_stub.GetModel(pb.GetModelRequest(name="after")).model.description == "changed"
    # restarted with backoff, failing on the same event each time, still counted
    eventually(lambda: failures("registry_read_model") >= counted + 2, what="a restart")
    assert health_of(settings) == health_pb2.HealthCheckResponse.NOT_SERVING


def test_a_follower_that_gets_past_its_failure_reports_serving_again(registry, registry_stub, settings):
    with psycopg.connect(settings.database_url, autocommit=True,
                         options=f"-c search_path={settings.database_schema}") as conn:
        registry_stub.CreateModel(pb.CreateModelRequest(name="first"))
        conn.execute("ALTER TABLE registry_models RENAME TO registry_models_away")
        counted = failures("registry_read_model")
        started = time.monotonic()
        registry_stub.CreateModel(pb.CreateModelRequest(name="second"), timeout=30)
        assert time.monotonic() - started < 5.0
        eventually(lambda: health_of(settings) == health_pb2.HealthCheckResponse.NOT_SERVING, what="NOT_SERVING")
        assert failures("registry_read_model") > counted
        assert registry.readiness.problems and "(ModelRegistered)" in registry.readiness.problems[0]
        conn.execute("ALTER TABLE registry_models_away RENAME TO registry_models")
    eventually(lambda: health_of(settings) == health_pb2.HealthCheckResponse.SERVING, timeout=30, what="SERVING")
    assert followers_check(settings)["ok"]
    names = [m.name for m in registry_stub.ListModels(pb.ListModelsRequest()).models]
    assert names == ["first", "second"]


@pytest.fixture
def trainer_workers() -> int:
    return 0  # the trainer test below needs its projection, not training


def test_the_trainer_projection_is_supervised_too(trainer, trainer_stub, registry_stub, tiny_model, training_chats,
                                                  settings):
    register(registry_stub, tiny_model, training_chats)
    with psycopg.connect(settings.database_url, autocommit=True,
                         options=f"-c search_path={settings.database_schema}") as conn:
        conn.execute("ALTER TABLE trainer_jobs RENAME TO trainer_jobs_away")
        counted = failures("trainer_read_model")
        started = time.monotonic()
        job = create(trainer_stub, key="while-stuck")
        assert time.monotonic() - started < 5.0
        eventually(lambda: health_of(settings, TRAINER, "trainer") == health_pb2.HealthCheckResponse.NOT_SERVING,
                   what="NOT_SERVING")
        assert failures("trainer_read_model") > counted
        assert "trainer_read_model is stuck at position" in followers_check(settings)["detail"]
        conn.execute("ALTER TABLE trainer_jobs_away RENAME TO trainer_jobs")
    eventually(lambda: health_of(settings, TRAINER, "trainer") == health_pb2.HealthCheckResponse.SERVING,
               timeout=30, what="SERVING")
    listed = trainer_stub.ListTrainingJobs(trainer_pb2.ListTrainingJobsRequest()).jobs
    assert [j.id for j in listed] == [job.id]


def test_a_publisher_stopped_by_an_event_is_reported_and_resumes(settings, nats_url):
    env = postgres_env(settings)
    app = RegistryApplication(env)
    for name in ("a", "b", "c"):
        app.save(Model(name=name, base_model="", description="", tags={}, idempotency_key="", meta={}))
    refuse = {2}

    def describe(domain_event, position):
        if position in refuse:
            raise ValueError("cannot describe this one")
        return "mlxhub.events.test.x", b"{}"

    watch = FollowerWatch(settings, "registry", "test_nats")
    counted = failures("test_nats")
    publisher = LogPublisher(app, tracking_recorder("test_nats", env), nats_url, describe, watch)
    publisher.start()
    try:
        eventually(lambda: watch.failure is not None, what="a reported failure")
        assert (watch.failure.position, watch.failure.event_type) == (2, "ModelRegistered")
        assert failures("test_nats") > counted
        assert publisher.position == 1
        refuse.clear()
        eventually(lambda: publisher.position == 3, what="publishing past the event")
        eventually(lambda: not watch.failing.is_set(), what="recovery")
    finally:
        publisher.stop()
        publisher.tracking.datastore.close()
        app.close()


# ----- the edge ---------------------------------------------------------------------------

def field_of(error: grpc.RpcError) -> str:
    for detail in rpc_status.from_call(error).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            return request.field_violations[0].field
    return ""


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.CreateModelRequest(name="m", description="a\x00b"), "description"),
        (pb.CreateModelRequest(name="m", base_model="org/\x00model"), "base_model"),
        (pb.CreateModelRequest(name="m", base_model="two\nlines"), "base_model"),
        (pb.CreateModelRequest(name="m", tags={"team": "ml\x00"}), "tags[team]"),
        (pb.CreateModelRequest(name="m", description="bell \x07"), "description"),
        (pb.CreateModelRequest(name="m", description="c1 \x85"), "description"),
    ],
)
def test_control_characters_are_refused_naming_the_field(registry_stub, request_, field):
    with pytest.raises(grpc.RpcError) as caught:
        registry_stub.CreateModel(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_of(caught.value) == field
    assert "control character" in caught.value.details()


def test_free_text_keeps_tabs_and_line_breaks(registry_stub):
    text = "line one\n\tindented\r\nline three"
    assert registry_stub.CreateModel(pb.CreateModelRequest(name="m", description=text)).model.description == text
    with pytest.raises(grpc.RpcError) as caught:
        registry_stub.UpdateModel(pb.UpdateModelRequest(
            name="m", model=pb.Model(description="x\x00"), update_mask={"paths": ["description"]}))
    assert (caught.value.code(), field_of(caught.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "model.description")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_metrics_are_refused(registry_stub, model_dir, value):
    registry_stub.CreateModel(pb.CreateModelRequest(name="m"))
    with pytest.raises(grpc.RpcError) as caught:
        registry_stub.CreateModelVersion(pb.CreateModelVersionRequest(
            name="m", artifact_path=str(model_dir), metrics={"loss": value}))
    assert (caught.value.code(), field_of(caught.value)) == (grpc.StatusCode.INVALID_ARGUMENT, "metrics[loss]")
    assert "finite" in caught.value.details()
    lineage = common_pb2.Lineage()
    lineage.parameters["lr"] = value
    with pytest.raises(grpc.RpcError) as caught:
        registry_stub.CreateModelVersion(pb.CreateModelVersionRequest(
            name="m", artifact_path=str(model_dir), lineage=lineage))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field_of(caught.value).startswith("lineage")
    version = registry_stub.CreateModelVersion(pb.CreateModelVersionRequest(
        name="m", artifact_path=str(model_dir), metrics={"loss": 0.5})).version
    assert version.metrics["loss"] == 0.5
