"""A packable stream (ReadEvents) read through the gateway: the gateway reads it packed from the
real registry, and the client still gets exactly the lines of the unpacked stream, in order;
a client that asks for packed messages itself gets them as they are."""

from __future__ import annotations

import json

import httpx
import pytest
from google.protobuf import json_format

from gateway.app import PACKED_ITEMS
from gateway.routes import Packing, load_bindings
from gateway.server import running
from mlxhub.v1 import registry_pb2

MODELS = 7


@pytest.fixture
def client(registry, registry_stub, settings):
    for i in range(MODELS):
        registry_stub.CreateModel(registry_pb2.CreateModelRequest(name=f"packed-{i}", base_model="b", tags={"i": str(i)}))
    with running(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def lines(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def direct(stub, **request) -> list[dict]:
    return [{"result": json_format.MessageToDict(r)} for r in stub.ReadEvents(registry_pb2.ReadEventsRequest(**request))]


def test_only_read_events_is_packable():
    packable = {b.grpc_path: b.packing for b in load_bindings() if b.packing}
    assert packable == {"/mlxhub.v1.RegistryService/ReadEvents": Packing("batch_size", "event", "event", "events")}
    assert 1 < PACKED_ITEMS <= 1000  # within the request field's bounds


def test_lines_are_those_of_the_unpacked_stream(client, registry_stub):
    expected = direct(registry_stub)
    assert len(expected) == MODELS and all(set(line["result"]) == {"event"} for line in expected)
    assert lines(client.get("/v1/events")) == expected
    assert lines(client.get("/v1/events", params={"limit": 3})) == expected[:3]
    after = expected[2]["result"]["event"]["position"]
    assert lines(client.get("/v1/events", params={"afterPosition": after, "aggregate": "model/packed-5"})) == \
        direct(registry_stub, after_position=int(after), aggregate="model/packed-5")
    sse = client.get("/v1/events", headers={"Accept": "text/event-stream"})
    assert [json.loads(e.removeprefix("data: ")) for e in sse.text.split("\n\n") if e] == \
        [line["result"] for line in expected]


def test_a_client_asking_for_packed_messages_gets_them_packed(client, registry_stub):
    packed = lines(client.get("/v1/events", params={"batchSize": 3}))
    assert packed == direct(registry_stub, batch_size=3)
    sizes = [len(line["result"]["events"]) for line in packed]
    assert sum(sizes) == MODELS and max(sizes) == 3
