"""Two trainer replicas on one database (a rolling update runs two): both answer calls,
only the one holding the leadership lock runs the projection, the NATS publisher and
the reaper, and the other takes them over when it stops."""

from __future__ import annotations

import time

import grpc
from trainer_util import create, register

from mlxhub.config import load_settings
from mlxhub.embedded import free_port
from mlxhub.v1 import trainer_pb2, trainer_pb2_grpc
from trainer_svc.server import TrainerServer


def stub_for(server: TrainerServer) -> trainer_pb2_grpc.TrainerServiceStub:
    return trainer_pb2_grpc.TrainerServiceStub(grpc.insecure_channel(server.settings.address("trainer")))


def listed(stub) -> set[str]:
    return {job.id for job in stub.ListTrainingJobs(trainer_pb2.ListTrainingJobsRequest()).jobs}


def test_two_trainers_share_one_projection_publisher_and_reaper(registry_stub, hub_env, tiny_model, training_chats,
                                                                 trainer_options):
    register(registry_stub, tiny_model, training_chats)
    first = TrainerServer(load_settings(hub_env), workers=0, options=trainer_options).start()
    second = TrainerServer(load_settings({**hub_env, "MLXHUB_TRAINER_ADDR": f"127.0.0.1:{free_port()}"}),
                           workers=0, options=trainer_options).start()
    try:
        assert first.leadership.leading.is_set() and not second.leadership.leading.is_set()
        assert (first.projection, first.publisher, first.reaper) != (None, None, None)
        assert (second.projection, second.publisher, second.reaper) == (None, None, None)

        one = create(stub_for(first), key="one")
        two = create(stub_for(second), key="two")  # the follower replica writes, and reads its own write
        assert listed(stub_for(second)) == {one.id, two.id}
        assert listed(stub_for(first)) == {one.id, two.id}

        first.stop(grace=1)
        deadline = time.monotonic() + 20
        while not second.leadership.leading.is_set():
            assert time.monotonic() < deadline, "the second trainer never took over"
            time.sleep(0.1)
        assert second.projection is not None and second.reaper is not None
        three = create(stub_for(second), key="three")
        assert listed(stub_for(second)) == {one.id, two.id, three.id}
    finally:
        first.stop(grace=1)
        second.stop(grace=1)


def test_a_non_finite_loss_in_an_event_does_not_stop_the_publisher():
    """An event recorded with a NaN validation loss (as an older worker could) is still described for NATS."""
    import json
    import math
    import uuid
    from datetime import UTC, datetime

    from trainer_svc.domain import TrainingJob
    from trainer_svc.server import describe

    now = datetime.now(UTC)
    event = TrainingJob.CheckpointSaved(
        originator_id=uuid.uuid4(), originator_version=3, timestamp=now, step=5, path="/ckpt", sha256="0" * 64,
        validation_loss=math.nan, loss=math.inf, save_time=now, meta={},
    )
    subject, payload = describe(event, 7)
    assert subject == "mlxhub.events.training_job.CheckpointSaved"
    data = json.loads(payload)["data"]
    assert (data["validation_loss"], data["loss"]) == ("NaN", "Infinity")
