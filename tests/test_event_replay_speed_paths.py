"""The fast paths of the event log keep its meaning: events encoded on the wire equal the
messages built field by field, several events per ReadEvents message carry the same stream as
one per message, and the read model applied a batch at a time equals it applied an event at a
time. (How fast they are is measured by `python -m bench`, not here.)"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID
from zoneinfo import ZoneInfo

import grpc
import pytest
from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.projection import BaseProjectionRunner
from eventsourcing.utils import Environment

from bench import seeding
from mlxhub.eventstore import postgres_env
from mlxhub.read_model import rebuild
from mlxhub.stored_events import decode_events, decode_states, read_page, read_rows
from mlxhub.v1 import common_pb2
from mlxhub.v1 import registry_pb2 as pb
from registry_svc.application import RegistryApplication
from registry_svc.domain import Dataset, Model
from registry_svc.event_log import NameBook, encode_event, encode_stored, encode_stored_events, to_proto
from registry_svc.read_model import TABLES, RegistryProjection, RegistryReadModel

KEYS = {
    "registry_models": "name", "registry_model_versions": "model, version", "registry_datasets": "name",
    "registry_alias_moves": "position",
}  # fmt: skip


@pytest.fixture
def log_app(settings):
    """The registry application and its read model on the test's schema, no server running."""
    env = postgres_env(settings)
    app = RegistryApplication(env)
    view = InfrastructureFactory.construct(Environment(RegistryProjection.name, env)).tracking_recorder(RegistryReadModel)
    yield app, view
    app.close()
    view.datastore.close()


def tables(view: RegistryReadModel) -> dict[str, list[dict]]:
    assert set(KEYS) == set(TABLES)
    return {table: view.query(f"SELECT * FROM {table} ORDER BY {key}") for table, key in KEYS.items()}


def odd_model(app) -> None:
    """A model whose events hold every kind of value a Struct can carry, and then some."""
    meta = {"principal": "ünïcode", "request_id": "", "trace_id": "t"}
    model = Model(name="odd", base_model="", description="line\nbreak ✓", tags={}, idempotency_key="k", meta=meta)
    model.update({"tags": {"": "empty key", "x": ""}}, meta)
    model.create_version(
        version=1, artifact_path="/a", kind="FULL", files=[], metrics={"loss": 0.0, "big": 1e300, "neg": -2},
        description="", base_version="", idempotency_key="",
        lineage={"nested": {"list": [1, 2.5, True, False, None, "s", [], {}]}, "deep": [[{"a": [None]}]]},
        create_time=datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), meta=meta,
    )  # fmt: skip
    model.move_alias("prod", 1, 0, meta)
    dataset = Dataset(name="odd-data", path="/d.jsonl", sha256="0" * 64, size_bytes=2**40, record_count=0,
                      format="CHAT", description="", idempotency_key="", meta=meta)  # fmt: skip
    app.save(model, dataset)


def test_events_encoded_on_the_wire_equal_the_messages_built_field_by_field(log_app):
    app, _ = log_app
    seeding.seed(app, 2 * seeding.EVENTS_PER_MODEL + 60)
    odd_model(app)
    nested_model(app)
    page = read_page(app.recorder, 0, 10_000)
    assert [row.id for row in page] == [n.id for n in app.recorder.select_notifications(0, 10_000, inclusive_of_start=False)]
    rows = read_rows(app.recorder, 0, 10_000)
    assert [row[:4] for row in rows] == [(n.id, str(n.originator_id), n.originator_version, n.topic) for n in page]
    decoded = decode_events(app.mapper, page)
    states = decode_states(app.mapper, rows)
    names = NameBook(app)
    kinds, messages = set(), []
    for row, notification, event, state in zip(rows, page, decoded, states, strict=True):
        expected = app.mapper.to_domain_event(notification)
        assert type(event) is type(expected) and vars(event) == vars(expected)
        assert {**state, "originator_id": expected.originator_id, "originator_version": row[2]} == vars(expected)
        built = to_proto(expected, row[0], names)
        assert common_pb2.Event.FromString(encode_event(event, row[0], names)) == built
        assert common_pb2.Event.FromString(encode_stored(*row[:4], state, names)) == built
        kinds.add(built.type)
        messages.append(built)
    assert kinds == {"ModelRegistered", "ModelUpdated", "ModelVersionCreated", "AliasMoved", "DatasetRegistered"}
    page = encode_stored_events(rows, states, NameBook(app))  # a page at once, as ReadEvents writes it
    assert [common_pb2.Event.FromString(data) for data in page] == messages
    backwards = NameBook(app)  # sees each aggregate's later events before its creation: asks the store for names
    for row, state, built in reversed(list(zip(rows, states, messages, strict=True))):
        assert common_pb2.Event.FromString(encode_stored(*row[:4], state, backwards)) == built
    versions = [e for e in decoded if type(e).__name__ == "ModelVersionCreated"]
    assert any(e.create_time.year == 1969 for e in versions)  # a time before 1970: negative seconds
    assert [type(e).__name__ for e in decoded[-2:]] == ["ModelRegistered", "ModelUpdated"]  # nested_model's


def test_times_of_any_zone_and_precision_encode_as_the_messages_built_field_by_field(log_app):
    """The byte writer keeps the `seconds` field of the last UTC second it wrote: times in that
    second, just outside it, in other zones (the same instant or not), naive, or before 1970 each
    come out as `to_proto` writes them, in any order."""
    app, _ = log_app
    app.save(Model(name="timed", base_model="b", description="", tags={}, idempotency_key="", meta={"principal": "p"}))
    (row,) = read_rows(app.recorder, 0, 10)
    (state,) = decode_states(app.mapper, [row])
    utc = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    plus_two = timezone(timedelta(hours=2))
    times = [
        utc, utc.replace(microsecond=1), utc.replace(microsecond=16), utc.replace(microsecond=17),
        utc.replace(microsecond=268_435), utc.replace(microsecond=999_999), utc + timedelta(seconds=1),
        utc.replace(microsecond=5).astimezone(plus_two), (utc + timedelta(seconds=1)).astimezone(plus_two),
        utc.replace(microsecond=6), utc.replace(tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        utc.replace(tzinfo=None), utc.replace(tzinfo=ZoneInfo("Europe/Berlin")), utc - timedelta(microseconds=1),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), utc,
    ]  # fmt: skip
    states = [{**state, "timestamp": when} for when in times]
    cls = type(app.mapper.to_domain_event(_stored_event(app, row)))
    names = NameBook(app)
    expected = []
    for position, attributes in enumerate(states, start=1):
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", {**attributes, "originator_id": UUID(row[1]), "originator_version": 1})
        expected.append(to_proto(event, position, names))
    rows = [(position, *row[1:]) for position in range(1, len(times) + 1)]
    encoded = [common_pb2.Event.FromString(data) for data in encode_stored_events(rows, states, names)]
    assert [e.time.ToDatetime(tzinfo=UTC) for e in encoded] == [
        when.replace(tzinfo=when.tzinfo or UTC) for when in times
    ]  # fmt: skip
    assert encoded == expected
    for when, event in zip(reversed(times), reversed(expected), strict=True):  # one at a time, backwards
        assert common_pb2.Event.FromString(encode_stored(event.position, *row[1:4], {**state, "timestamp": when},
                                                         names)) == event  # fmt: skip


def _stored_event(app, row):
    return app.recorder.select_events(UUID(row[1]))[0]


def nested_model(app) -> None:
    """A model whose update carries values the transcoder writes below the top level (decoded by the
    library's mapper), and a large position-like number and an empty-string principal."""
    model = Model(name="nested-values", base_model="b", description="", tags={"k": "v" * 200}, idempotency_key="",
                  meta={"principal": "", "request_id": "r" * 300, "trace_id": ""})  # fmt: skip
    model.update({"description": "d", "tags": {"big": str(2**70)}},
                 {"principal": "p", "when": datetime(2026, 1, 2, tzinfo=UTC), "id": UUID(int=7)})  # fmt: skip
    app.save(model)


def test_events_with_values_transcoded_below_the_top_level_are_decoded_by_the_library(log_app):
    app, _ = log_app
    model = Model(name="nested", base_model="b", description="", tags={}, idempotency_key="", meta={"principal": "p"})
    model.update({"description": "d"}, {"principal": "p", "when": datetime(2026, 1, 2, tzinfo=UTC),
                                         "id": UUID(int=7)})  # fmt: skip
    app.save(model)
    page = read_page(app.recorder, 0, 10)
    decoded = decode_events(app.mapper, page)
    assert decoded[1].meta["when"] == datetime(2026, 1, 2, tzinfo=UTC) and decoded[1].meta["id"] == UUID(int=7)
    assert [vars(e) for e in decoded] == [vars(app.mapper.to_domain_event(row)) for row in page]


def test_several_events_per_message_carry_the_same_stream(registry_stub):
    for name in ("a", "b", "c", "d", "e"):
        registry_stub.CreateModel(pb.CreateModelRequest(name=name, tags={"n": name}))
    registry_stub.UpdateModel(pb.UpdateModelRequest(name="c", model=pb.Model(description="x"),
                                                    update_mask={"paths": ["description"]}))  # fmt: skip
    one_each = list(registry_stub.ReadEvents(pb.ReadEventsRequest()))
    assert len(one_each) == 6 and all(r.HasField("event") and not r.events for r in one_each)
    batched = list(registry_stub.ReadEvents(pb.ReadEventsRequest(batch_size=4)))
    assert [len(r.events) for r in batched] == [4, 2]
    assert all(not r.HasField("event") for r in batched)
    assert [e for r in batched for e in r.events] == [r.event for r in one_each]

    limited = list(registry_stub.ReadEvents(pb.ReadEventsRequest(batch_size=2, limit=3)))
    assert [[e.aggregate for e in r.events] for r in limited] == [["model/a", "model/b"], ["model/c"]]
    filtered = list(registry_stub.ReadEvents(pb.ReadEventsRequest(batch_size=10, aggregate="model/c")))
    assert [[e.type for e in r.events] for r in filtered] == [["ModelRegistered", "ModelUpdated"]]
    after = one_each[2].event.position
    assert [e.position for r in registry_stub.ReadEvents(pb.ReadEventsRequest(batch_size=1000, after_position=after))
            for e in r.events] == [r.event.position for r in one_each[3:]]  # fmt: skip

    with pytest.raises(grpc.RpcError) as refused:
        list(registry_stub.ReadEvents(pb.ReadEventsRequest(batch_size=1001)))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_pages_carry_every_event_once_in_order(registry, registry_stub, monkeypatch):
    """Pages of 3: a full page is followed by the next, a short page ends the catch-up; filters and
    limits apply across pages, and across the chunks (here of 2) each page is decoded and encoded
    in, as within one."""
    from registry_svc import event_log, servicer

    monkeypatch.setattr(servicer, "EVENT_PAGE", 3)
    monkeypatch.setattr(event_log, "CHUNK", 2)
    app = registry.app
    seeding.seed(app, 2 * seeding.EVENTS_PER_MODEL + 5)
    stored = [(n.id, str(n.originator_id)) for n in app.recorder.select_notifications(0, 10_000, inclusive_of_start=False)]
    assert len(stored) > 9
    one_each = [r.event for r in registry_stub.ReadEvents(pb.ReadEventsRequest())]
    assert [(e.position, e.aggregate_id) for e in one_each] == stored
    batched = list(registry_stub.ReadEvents(pb.ReadEventsRequest(batch_size=2)))
    assert [e for r in batched for e in r.events] == one_each
    assert max(len(r.events) for r in batched) == 2
    limited = registry_stub.ReadEvents(pb.ReadEventsRequest(limit=7, after_position=stored[1][0]))
    assert [r.event.position for r in limited] == [position for position, _ in stored[2:9]]
    seed_0 = one_each[0].aggregate
    assert [e for e in one_each if e.aggregate == seed_0] == [
        r.event for r in registry_stub.ReadEvents(pb.ReadEventsRequest(aggregate=seed_0))
    ]
    updates = [e for e in one_each if e.type == "ModelUpdated"]
    assert updates and updates == [r.event for r in registry_stub.ReadEvents(pb.ReadEventsRequest(event_types=["ModelUpdated"]))]
    # An aggregate whose events all lie past the first page: pages that match nothing do not end the read.
    last = one_each[-1].aggregate
    its_events = [e for e in one_each if e.aggregate == last]
    assert min(e.position for e in its_events) > servicer.EVENT_PAGE
    assert [r.event for r in registry_stub.ReadEvents(pb.ReadEventsRequest(aggregate=last))] == its_events
    principal = pb.ReadEventsRequest(principal="nobody", batch_size=5)
    assert list(registry_stub.ReadEvents(principal)) == []
    following = registry_stub.ReadEvents(pb.ReadEventsRequest(aggregate=last, batch_size=2, follow=True), timeout=30)
    received = []
    for response in following:
        received += response.events
        if len(received) >= len(its_events):
            break
    following.cancel()
    assert received == its_events


def test_a_limited_read_reads_only_the_rows_it_needs(registry, registry_stub, monkeypatch):
    """A look at a few events reads that many rows and no page ahead; while a filter passes events
    over, its pages grow, and it still finds the events it asks for."""
    from registry_svc import servicer

    reads: list[int] = []

    def counted(recorder, position, size, topics=()):
        reads.append(size)
        return read_rows(recorder, position, size, topics)

    monkeypatch.setattr(servicer, "read_rows", counted)
    app = registry.app
    seeding.seed(app, 6 * seeding.EVENTS_PER_MODEL)
    events = [r.event for r in registry_stub.ReadEvents(pb.ReadEventsRequest(limit=5, after_position=3))]
    assert [e.position for e in events] == [4, 5, 6, 7, 8] and reads == [5]
    reads.clear()
    last = [r.event for r in registry_stub.ReadEvents(pb.ReadEventsRequest())][-1]
    assert reads[0] == servicer.EVENT_PAGE
    reads.clear()
    found = list(registry_stub.ReadEvents(pb.ReadEventsRequest(limit=1, aggregate=last.aggregate)))
    assert [r.event.aggregate for r in found] == [last.aggregate]
    assert reads[:3] == [1, servicer.PAGE_GROWTH, servicer.PAGE_GROWTH**2], reads


def test_a_batched_follow_sends_a_live_event_without_waiting_for_more(registry_stub):
    registry_stub.CreateModel(pb.CreateModelRequest(name="first"))
    stream = registry_stub.ReadEvents(pb.ReadEventsRequest(batch_size=100, follow=True), timeout=30)
    received: list[pb.ReadEventsResponse] = []
    first, second = threading.Event(), threading.Event()

    def read() -> None:
        for response in stream:
            received.append(response)
            (first if len(received) == 1 else second).set()
            if len(received) == 2:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # Create the second model once the first has been sent: created earlier, both would be read
    # (correctly) in one message by the stream's catch-up read.
    assert first.wait(15), "the stored event was not sent"
    registry_stub.CreateModel(pb.CreateModelRequest(name="second"))
    assert second.wait(15), received
    stream.cancel()
    assert [[e.aggregate for e in r.events] for r in received] == [["model/first"], ["model/second"]]


def test_the_read_model_applied_in_batches_equals_it_applied_event_by_event(log_app):
    app, view = log_app
    seeded = seeding.seed(app, 3 * seeding.EVENTS_PER_MODEL + 55)
    odd_model(app)
    total = seeded + 5
    results = []
    for batch_size in (1, 7, 2000):
        assert rebuild(app, view, batch_size=batch_size, in_database=False) == total
        results.append(tables(view))
    assert rebuild(app, view) == total  # folded by PostgreSQL
    results.append(tables(view))
    assert results[0] == results[1] == results[2] == results[3]
    rows = {row["name"]: row for row in results[0]["registry_models"]}
    assert (rows["seed-0"]["aliases"], rows["seed-0"]["latest_version"]) == ({"prod": 4}, 4)
    assert (rows["seed-0"]["description"], rows["seed-0"]["base_model"]) == ("step 3", "bench-2")
    assert rows["seed-0"]["tags"] == {"i": "seed-0", "step": "3"}
    assert rows["seed-0"]["etag"] == str(seeding.EVENTS_PER_MODEL)
    assert rows["odd"]["tags"] == {"": "empty key", "x": ""} and rows["odd"]["aliases"] == {"prod": 1}
    assert len(results[0]["registry_alias_moves"]) == 4 * (seeded // seeding.EVENTS_PER_MODEL) + 1
    assert view.max_tracking_id(app.name) == app.recorder.max_notification_id()


def test_a_rebuild_writes_the_rows_the_live_projection_wrote(settings, log_app):
    """The library's projection runner (its own reading and decoding, an event at a time) and a
    rebuild (pages decoded by `mlxhub.stored_events`, batches of thousands) leave every table equal."""
    app, view = log_app
    seeded = seeding.seed(app, 3 * seeding.EVENTS_PER_MODEL + 55)
    odd_model(app)
    nested = Model(name="nested", base_model="b", description="", tags={"k": "v"}, idempotency_key="", meta={})
    nested.update({"base_model": "c", "description": "d"}, {"principal": "p", "when": datetime(2026, 1, 2, tzinfo=UTC)})
    app.save(nested)
    total = seeded + 7
    runner = BaseProjectionRunner(projection=RegistryProjection(view=view), application_class=RegistryApplication,
                                  tracking_recorder=view, topics=(), env=postgres_env(settings)).__enter__()  # fmt: skip
    try:
        view.wait(app.name, app.recorder.max_notification_id(), timeout=60)
    finally:
        runner.__exit__(None, None, None)
    live = tables(view)
    kinds = {type(e).__name__ for e in decode_events(app.mapper, read_page(app.recorder, 0, total))}
    assert kinds == {"ModelRegistered", "ModelUpdated", "ModelVersionCreated", "AliasMoved", "DatasetRegistered"}
    models = {row["name"]: row for row in live["registry_models"]}
    assert (models["nested"]["base_model"], models["nested"]["description"]) == ("c", "d")
    assert models["seed-0"]["aliases"] == {"prod": 4} and models["odd"]["aliases"] == {"prod": 1}
    assert live["registry_datasets"] and len(live["registry_model_versions"]) > 4

    assert rebuild(app, view) == total
    assert tables(view) == live
    assert view.max_tracking_id(app.name) == app.recorder.max_notification_id()


def test_an_event_for_a_model_missing_from_the_read_model_stops_the_batch(log_app):
    app, view = log_app
    model = Model(name="gone", base_model="b", description="", tags={}, idempotency_key="", meta={})
    model.update({"description": "d"}, {})
    app.save(model)
    assert rebuild(app, view) == 2
    view.drop(app.name)
    update = read_page(app.recorder, 1, 10)
    with pytest.raises(LookupError):
        view.process([(decode_events(app.mapper, update)[0], Tracking(app.name, update[0].id))])
    assert view.max_tracking_id(app.name) is None  # nothing recorded: the projection stops at this event


def test_json_that_orjson_refuses_is_read_and_written_by_the_json_module():
    import math

    from mlxhub.stored_events import loads

    data = b'{"big": 18446744073709551616, "nan": NaN, "t": {"_type_": "x", "_data_": "1"}}'
    value = loads(data)
    assert value["big"] == 2**64 and math.isnan(value["nan"]) and value["t"] == {"_type_": "x", "_data_": "1"}
    assert loads(b'{"a": [1, 2.5, "\\u00e9"]}') == {"a": [1, 2.5, "é"]}


def test_a_preserialized_response_is_sent_byte_for_byte_as_written():
    from registry_svc.event_log import encode_response, preserialized

    events = [common_pb2.Event(position=p, type="ModelRegistered", aggregate=f"model/m{p}") for p in (1, 2, 300)]
    for batched in (False, True):
        data = encode_response([e.SerializeToString() for e in (events if batched else events[:1])], batched)
        sent = pb.ReadEventsResponse.SerializeToString(preserialized(data))  # gRPC's serializer for the method
        assert sent == data
        expected = pb.ReadEventsResponse(events=events) if batched else pb.ReadEventsResponse(event=events[0])
        assert pb.ReadEventsResponse.FromString(sent) == expected
