"""Schemathesis against the gateway's own /openapi.json, on the real registry, trainer and
inference services: every operation, a few dozen generated requests each, none may get a 5xx,
and every response must match the document (status, content type, schema).

Bounded so it runs in about a minute on two cores: generation is capped to a few tokens on the
tiny random model, the trainer has no workers (jobs are created and queued, never trained), and
streams that would never end (`follow`) are turned off.
"""

from __future__ import annotations

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from inference_util import register as register_model
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, status_code_conformance
from schemathesis.specs.openapi.checks import response_schema_conformance

from gateway.server import running
from mlxhub.v1 import registry_pb2

EXAMPLES_PER_OPERATION = 25
MAX_TOKENS = 3
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Requests the document does not allow: the answer is a 4xx in the document's error form, never a 5xx.
NEGATIVE_EXAMPLES_PER_OPERATION = 15
NEGATIVE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance]


@pytest.fixture
def trainer_workers() -> int:
    return 0  # jobs are created and queued, never trained


@pytest.fixture
def base_url(registry_stub, trainer, inference, tiny_model, training_chats, settings):
    register_model(registry_stub, "tiny", tiny_model, alias="prod")
    registry_stub.RegisterDataset(registry_pb2.RegisterDatasetRequest(name="chats", path=str(training_chats)))
    with running(settings) as url:
        yield url


def bounded(case) -> None:
    """Keep a generated case within the run's budget, and aim half of the generation and training
    requests at the registered model and dataset so they reach the engine and the intake."""
    body = case.body if isinstance(case.body, dict) else None
    if case.operation.path.startswith("/v1/generate") and body is not None:
        sampling = body.setdefault("sampling", {})
        if isinstance(sampling, dict):  # (a negative case may send something else; it is refused)
            tokens = sampling.get("maxTokens")
            sampling["maxTokens"] = min(tokens, MAX_TOKENS) if isinstance(tokens, int) and tokens > 0 else MAX_TOKENS
        if len(str(body.get("model", ""))) % 2 == 0:  # a request needs messages or a prompt, not both
            body.update(model="tiny@prod", prompt=body.get("prompt") or "hi")
            body.pop("messages", None)
    training = case.operation.path == "/v1/training/jobs" and case.method == "POST"
    if training and body is not None and len(str(body.get("model", ""))) % 2 == 0:
        body.update(model="tiny", dataset="chats")
        body.pop("outputModel", None)
        if isinstance(body.get("config"), dict):
            body["config"].pop("validationDataset", None)
    if case.query and "follow" in case.query:  # a followed log never ends
        case.query["follow"] = False


def exercise(operation, mode: GenerationMode, examples: int, checks: list, base_url: str, session) -> None:
    """`examples` generated requests to one operation, each response validated with `checks`."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def run(case):
        bounded(case)
        response = case.call(base_url=base_url, session=session, timeout=60)
        case.validate_response(response, checks=checks)

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # nothing about this operation's request can be made invalid (e.g. one free-text path parameter)


def test_every_operation_answers_within_its_contract(base_url):
    document = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    session = requests.Session()
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(methods) for methods in document["paths"].values())

    for operation in operations:
        for mode, examples, checks in ((GenerationMode.POSITIVE, EXAMPLES_PER_OPERATION, CHECKS),
                                       (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES_PER_OPERATION, NEGATIVE_CHECKS)):
            try:
                exercise(operation, mode, examples, checks, base_url, session)
            except (Exception, BaseExceptionGroup) as failure:  # noqa: BLE001  (collected: every operation is tried)
                failures[f"{operation.label} ({mode.value})"] = str(failure)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
