"""Training config bounds: each field has a limit, declared once in trainer.proto, and a value
past it is INVALID_ARGUMENT naming the field and the limit, before any job is queued."""

from __future__ import annotations

import grpc
import pytest
from trainer_util import create, register

from mlxhub import bounds
from mlxhub.errors import InvalidArgument, status_of
from mlxhub.v1 import trainer_pb2
from trainer_svc import config as job_config
from trainer_svc.messages import config_from_proto


@pytest.fixture
def trainer_workers() -> int:
    return 0  # nothing here may train


@pytest.fixture
def hub(trainer_stub, registry_stub, tiny_model, training_chats):
    register(registry_stub, tiny_model, training_chats)
    return trainer_stub


@pytest.mark.parametrize(
    ("overrides", "field", "limit"),
    [
        ({"rank": 1_000_000}, "config.rank", "[1, 1024]"),
        ({"batch_size": 2_000_000}, "config.batch_size", "[1, 1024]"),
        ({"epochs": 5000, "iters": 0}, "config.epochs", "[1, 1000]"),
        ({"max_seq_length": 50_000_000}, "config.max_seq_length", "[1, 131072]"),
        ({"grad_accumulation_steps": 100_000}, "config.grad_accumulation_steps", "[1, 1024]"),
        ({"iters": 10_000_001}, "config.iters", "[1, 10000000]"),
    ],
)
def test_config_beyond_its_bound_names_the_field_and_the_limit(hub, overrides, field, limit):
    with pytest.raises(grpc.RpcError) as caught:
        create(hub, **overrides)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert limit in caught.value.details() and field in caught.value.details()
    violations = [d for d in status_of(caught.value).details if d.type_url.endswith("BadRequest")]
    assert violations and field.encode() in violations[0].value
    jobs = hub.ListTrainingJobs(trainer_pb2.ListTrainingJobsRequest()).jobs
    assert list(jobs) == []


@pytest.mark.parametrize("key", ["retry\x00", "two\nlines", "k" * 257])
def test_an_idempotency_key_that_cannot_be_stored_is_refused(hub, key):
    """The key is recorded in the job's events: a NUL or line break there, or an unbounded key, is refused."""
    with pytest.raises(grpc.RpcError) as caught:
        create(hub, key=key)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "idempotency_key" in caught.value.details()
    assert list(hub.ListTrainingJobs(trainer_pb2.ListTrainingJobsRequest()).jobs) == []


def test_config_at_its_bounds_is_accepted(hub):
    job = create(hub, rank=1024, batch_size=2, epochs=1000, iters=0)
    assert (job.config.rank, job.config.epochs) == (1024, 1000)
    assert job.total_steps <= job_config.MAX_STEPS


def test_the_step_cap_is_the_declared_maximum_of_iters():
    assert job_config.MAX_STEPS == bounds.of(trainer_pb2.TrainingConfig, "iters").maximum == 10_000_000


def test_epochs_that_amount_to_more_steps_than_the_cap_are_refused():
    c = config_from_proto(trainer_pb2.TrainingConfig(epochs=1000, batch_size=1))
    assert job_config.check_total_steps(c, 10_000_000, 10_000) == 10_000_000
    with pytest.raises(InvalidArgument) as caught:
        job_config.check_total_steps(c, 10_001_000, 10_001)
    assert caught.value.field == "config.epochs" and "the limit is 10000000 steps" in caught.value.message
