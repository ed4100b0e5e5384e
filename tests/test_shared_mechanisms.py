"""The mechanisms every service shares (mlxhub's paging, timestamps, health probe, event
envelope, stream set-up, file digest and time-bucket ring), each tested once here."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import socket
import uuid
from concurrent import futures
from datetime import UTC, datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health, health_pb2_grpc

from mlxhub import events, paging, timestamps
from mlxhub import health as hub_health
from mlxhub import ring as ring_module
from mlxhub.errors import InvalidArgument
from mlxhub.v1 import common_pb2, registry_pb2


def test_page_token_round_trip_and_invalid_tokens():
    token = paging.encode_token({"after": ["b", "2026-01-01T00:00:00+00:00"], "q": "x"})
    assert paging.decode_token(token, required=("after",)) == {"after": ["b", "2026-01-01T00:00:00+00:00"], "q": "x"}
    # tokens made before this module keep decoding: same urlsafe base64 of the same JSON
    assert paging.decode_token(base64.urlsafe_b64encode(b'{"before": 7}').decode()) == {"before": 7}
    not_json = base64.urlsafe_b64encode(b"\xff\xfe").decode()
    not_object = base64.urlsafe_b64encode(b"[1]").decode()
    for bad in ("garbage!", not_json, not_object, paging.encode_token({"other": 1})):
        with pytest.raises(InvalidArgument) as raised:
            paging.decode_token(bad, required=("after",))
        assert raised.value.field == "page_token" and raised.value.message == paging.INVALID_MESSAGE


def test_page_size_and_fingerprint():
    assert paging.page_size(0, 50, 1000) == 50 and paging.page_size(5000, 50, 1000) == 1000
    with pytest.raises(InvalidArgument) as raised:
        paging.page_size(-1, 50, 1000)
    assert raised.value.field == "page_size"
    assert paging.fingerprint({"a": 1, "b": 2}) == paging.fingerprint({"b": 2, "a": 1})
    assert paging.fingerprint({"a": 1}) != paging.fingerprint({"a": 2})


def test_timestamps_round_trip_and_rfc3339():
    moment = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    stamp = timestamps.to_timestamp(moment)
    assert (stamp.seconds, stamp.nanos) == (int(moment.timestamp()), 890123000)
    assert timestamps.to_datetime(stamp) == moment and timestamps.to_datetime(stamp).tzinfo is not None
    assert timestamps.to_timestamp(None) is None
    assert timestamps.to_timestamp("2026-03-04T05:06:07.890123+00:00") == stamp
    assert timestamps.rfc3339(moment) == "2026-03-04T05:06:07.890123+00:00"
    assert timestamps.rfc3339(moment.replace(tzinfo=None)) == "2026-03-04T05:06:07.890123+00:00"  # naive is UTC
    east = moment.astimezone(timezone(timedelta(hours=2)))
    assert timestamps.parse_rfc3339(timestamps.rfc3339(east)) == moment
    assert timestamps.as_utc(east).utcoffset() == timedelta(0)
    request = registry_pb2.ReadEventsRequest()
    assert timestamps.field_datetime(request, "start_time") is None
    request.start_time.CopyFrom(stamp)
    assert timestamps.field_datetime(request, "start_time") == moment


@pytest.fixture
def health_server():
    servicer = health.HealthServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(0)


def test_health_probe_sync_and_async(health_server):
    servicer, address = health_server
    hub_health.set_serving(servicer, ("", "mlxhub.v1.RegistryService"), False)
    answer = hub_health.probe(address, "mlxhub.v1.RegistryService", timeout=2)
    assert answer == hub_health.Health("NOT_SERVING", answered=True) and not answer.serving
    hub_health.set_serving(servicer, ("", "mlxhub.v1.RegistryService"), True)
    assert hub_health.probe(address, timeout=2).serving and str(hub_health.probe(address)) == "SERVING"
    unknown = hub_health.probe(address, "mlxhub.v1.Unknown", timeout=2)
    assert (unknown.status, unknown.answered, unknown.serving) == ("NOT_FOUND", False, False)
    assert str(unknown).startswith("NOT_FOUND: ")

    async def check_async():
        async with grpc.aio.insecure_channel(address) as channel:
            return await hub_health.check_async(channel, "mlxhub.v1.RegistryService", timeout=2)

    assert asyncio.run(check_async()).serving
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{sock.getsockname()[1]}"
    down = hub_health.probe(closed, timeout=1)
    assert not down.answered and down.status in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
    assert hub_health.bearer("k") == [("authorization", "Bearer k")] and hub_health.bearer("") == []


class Stored:
    """A stored domain event's shape: the envelope's attributes plus its own data."""

    class Cancelled:
        pass


def stored_event(**data):
    event = Stored.Cancelled()
    event.__dict__.update(
        originator_id=uuid.UUID(int=7), originator_version=3, timestamp=datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),
        meta={"principal": "alice", "request_id": "r1"}, **data,
    )
    return event


def test_event_envelope_maps_every_service_event_the_same_way():
    when = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    event = stored_event(job=uuid.UUID(int=9), when=when, loss=float("nan"), top=float("inf"), steps=[1, 2.5],
                         nested={"at": when, "n": None})
    message = events.envelope(event, 42, "TrainingJob", "training_job/x")
    assert (message.position, message.aggregate_type, message.aggregate, message.type) == (
        42, "TrainingJob", "training_job/x", "Cancelled")
    assert message.aggregate_id == str(uuid.UUID(int=7)) and message.aggregate_version == 3
    assert timestamps.to_datetime(message.time) == event.timestamp
    assert (message.metadata.principal, message.metadata.request_id, message.metadata.trace_id) == ("alice", "r1", "")
    assert json_format.MessageToDict(message.data) == {
        "job": str(uuid.UUID(int=9)), "when": "2026-05-06T07:08:09+00:00", "loss": "NaN", "top": "Infinity",
        "steps": [1, 2.5], "nested": {"at": "2026-05-06T07:08:09+00:00", "n": None},
    }
    subject, payload = events.publication(message)
    assert subject == "mlxhub.events.training_job.Cancelled"
    assert json.loads(payload)["data"]["when"] == "2026-05-06T07:08:09+00:00"
    assert events.subject_of(common_pb2.Event(aggregate_type="Model", type="AliasMoved")) == "mlxhub.events.model.AliasMoved"
    assert events.aggregate_type_of(event) == "Stored"


def test_registry_byte_writer_agrees_with_the_envelope_on_every_kind_of_value():
    from registry_svc.event_log import NameBook, encode_event, to_proto

    when = datetime(2026, 5, 6, 7, 8, 9, 10, tzinfo=UTC)
    event = stored_event(name="m", job=uuid.UUID(int=9), when=when, loss=float("nan"), low=float("-inf"), n=3,
                         flag=True, nothing=None, items=(1, "a", when), nested={"id": uuid.UUID(int=1), "x": 0.5})
    names = NameBook(app=None)
    built = to_proto(event, 5, names)
    assert common_pb2.Event.FromString(encode_event(event, 5, names)) == built
    assert built.aggregate == "stored/m" and built.data["loss"] == "NaN" and built.data["low"] == "-Infinity"


@dataclasses.dataclass
class Count:
    start: int
    n: int = 0


def test_time_ring_keeps_a_fixed_window_of_buckets():
    ring = ring_module.TimeRing(10, 4, Count)
    ring.at(1000.0).n += 1
    ring.at(1009.9).n += 1  # same bucket
    ring.at(1015.0).n += 5
    assert [(b.start, b.n) for b in ring.window(1015.0, 3)] == [(990, 0), (1000, 2), (1010, 5)]
    ring.at(1040.0).n += 7  # slot of 1000 (index 100 and 104 mod 4): replaced, not added to
    assert [(b.start, b.n) for b in ring.window(1040.0, 4)] == [(1010, 5), (1020, 0), (1030, 0), (1040, 7)]
    assert ring.at(1000.0).n == 0  # an old moment gets a fresh bucket in its slot
    assert ring.elapsed(Count(1040), 1043.5) == 3.5 and ring.elapsed(Count(1040), 2000) == 10
    assert ring_module.elapsed(Count(1040), 10, 1040) == 1e-3
