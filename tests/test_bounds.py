"""mlxhub.bounds: the checks every service runs on each request, read from the proto options."""

from __future__ import annotations

import pytest

from mlxhub import bounds
from mlxhub.v1 import inference_pb2, registry_pb2, trainer_pb2


def problem(message):
    found = bounds.problem(message)
    return (found.field, found.message) if found else None


def test_zero_values_are_unset_and_not_checked():
    assert problem(trainer_pb2.CreateTrainingJobRequest(model="m", dataset="d", config={})) is None
    assert problem(trainer_pb2.CreateTrainingJobRequest(model="m", dataset="d", config={"rank": 0})) is None


@pytest.mark.parametrize(
    ("message", "field", "words"),
    [
        (registry_pb2.GetModelRequest(), "name", "name is required; give 1-64 characters"),
        (registry_pb2.GetModelRequest(name="demo\n"), "name", "is not valid"),
        (trainer_pb2.CreateTrainingJobRequest(model="m", dataset="d", config={"rank": 5000}), "config.rank",
         "config.rank must be in [1, 1024] (0 or unset: the default), got 5000"),
        (trainer_pb2.CreateTrainingJobRequest(model="m", dataset="d", config={"dropout": float("nan")}),
         "config.dropout", "must be in [0, 1), got nan"),
        (trainer_pb2.CreateTrainingJobRequest(model="m@", dataset="d"), "model", "model reference 'm@' is not valid"),
        (registry_pb2.CreateModelRequest(name="m", tags={"": "v"}), "tags[]", "key '' of tags must not be empty"),
        (registry_pb2.CreateModelRequest(name="m", tags={"k": "v" * 257}), "tags[k]", "the limit is 256"),
        (registry_pb2.CreateModelRequest(name="m", tags={f"k{i}": "" for i in range(65)}), "tags",
         "65 entries; the limit is 64"),
        (inference_pb2.GenerateRequest(model="m", sampling={"stop": ["a", ""]}), "sampling.stop",
         "sampling.stop[1] must not be empty"),
        (inference_pb2.GenerateRequest(model="m", messages=[{"role": "user"}, {"role": "robot"}]), "messages[1].role",
         "messages[1].role must be one of system, user, assistant, tool, got 'robot'"),
        (trainer_pb2.GetTrainingJobRequest(id="nope"), "id", "id 'nope' is not a UUID"),
        (registry_pb2.ListModelsRequest(page_size=-1), "page_size", "page_size must be >= 0, got -1"),
    ],
)
def test_a_value_outside_its_bounds_names_the_field_and_the_limit(message, field, words):
    found = problem(message)
    assert found is not None and found[0] == field and words in found[1], found


def test_output_only_fields_are_not_checked():
    # latest_version is output only: a client may send back what it read, and it is ignored
    request = registry_pb2.UpdateModelRequest(name="m", model={"latest_version": -5, "description": "d"})
    assert problem(request) is None


def test_limits_read_as_numbers():
    assert bounds.of(registry_pb2.CreateModelRequest, "description").max_length == 4096
    assert bounds.of(trainer_pb2.TrainingConfig, "epochs").maximum == 1000
    assert bounds.range_text(bounds.of(trainer_pb2.TrainingConfig, "learning_rate")) == "in (0, 1]"
