"""The registry's id -> name caches hold the names in use, not every aggregate ever seen: their memory
stays within a budget however many models a long-running registry registers, and a name they forgot
is read again from the store."""

from __future__ import annotations

import tracemalloc
import uuid
from types import SimpleNamespace

import pytest

from bench import seeding
from mlxhub.eventstore import postgres_env
from mlxhub.lru import LruMap
from mlxhub.read_model import open_read_model
from mlxhub.stored_events import decode_states, read_rows
from mlxhub.v1 import common_pb2
from registry_svc import event_log, read_model
from registry_svc.application import RegistryApplication
from registry_svc.event_log import NAME_BOOK_SIZE, NameBook, encode_stored_events, to_proto
from registry_svc.read_model import RegistryProjection, RegistryReadModel

BUDGET_BYTES = 3 * 1024 * 1024  # what one cache may hold, however many aggregates it has seen


def test_lru_map_forgets_the_least_recently_used_entry():
    names = LruMap(2)
    names.put("a", "A")
    names.put("b", "B")
    assert names.get("a") == "A"  # read: now the most recent
    names.put("c", "C")
    assert len(names) == 2 and "b" not in names and names.get("a") == "A" and names.get("c") == "C"
    assert names.get("b") is None and names.get("b", "?") == "?"
    names.update({"d": "D"})
    assert "a" not in names and names.get("d") == "D"
    with pytest.raises(ValueError, match="at least 1"):
        LruMap(0)


def test_the_name_book_keeps_a_bounded_set_of_names_whatever_the_log_holds():
    book = NameBook(app=None)  # creation events carry their names: nothing is read from a store
    first = last = None
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20_000):  # each event made and dropped here: what stays is what the book holds
            event = SimpleNamespace(originator_id=uuid.uuid4(), name=f"m-{i}")
            assert book.name_of(event) == event.name
            first, last = first or event.originator_id, event.originator_id
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < BUDGET_BYTES, f"the name book holds {held} bytes after 20,000 aggregates"
    assert len(book.names) == NAME_BOOK_SIZE < 20_000
    assert last in book.names and first not in book.names


@pytest.fixture
def log_app(settings, monkeypatch):
    """The registry application and its read model on the test's schema, no server running; the
    caches hold two names."""
    monkeypatch.setattr(event_log, "NAME_BOOK_SIZE", 2)
    monkeypatch.setattr(read_model, "NAME_CACHE_SIZE", 2)
    env = postgres_env(settings)
    app = RegistryApplication(env)
    view = open_read_model(RegistryReadModel, RegistryProjection.name, env)
    view.create_table()
    yield app, view
    app.close()
    view.datastore.close()


@pytest.mark.integration
def test_names_the_caches_forgot_are_read_from_the_store(log_app):
    app, view = log_app
    seeding.seed(app, 6 * seeding.EVENTS_PER_MODEL)  # six models, each with updates, versions and alias moves
    events = [(app.mapper.to_domain_event(n), n.id) for n in app.recorder.select_notifications(0, 1000)]
    names = {event.originator_id: event.name for event, _ in events if hasattr(event, "name")}
    expected = [
        f"{type(event).__name__.startswith('Dataset') and 'dataset' or 'model'}/{names[event.originator_id]}"
        for event, _ in events
    ]

    book = NameBook(app)  # newest first: each aggregate's later events come before its creation
    assert [to_proto(e, p, book).aggregate for e, p in reversed(events)] == expected[::-1]
    assert len(book.names) == 2

    # Every model's first events, then every model's second, ...: each batch names a model the read
    # model's two-name cache has forgotten since.
    for event, position in sorted(events, key=lambda pair: (pair[0].originator_version, pair[1])):
        with view.datastore.transaction(commit=True) as curs:
            view.enter(curs)
            view.apply_batch([(event, position)], curs)
    rows = view.query("SELECT name, etag FROM registry_models ORDER BY name")
    last = {names[event.originator_id]: str(event.originator_version) for event, _ in events}
    models = sorted(event.name for event, _ in events if type(event).__name__ == "ModelRegistered")
    assert [(row["name"], row["etag"]) for row in rows] == [(name, last[name]) for name in models]


@pytest.mark.integration
def test_the_byte_writer_names_aggregates_from_creation_events_and_reads_only_forgotten_names(log_app, monkeypatch):
    """ReadEvents' writer takes a name from its creation event (no read), keeps the handles of the
    last aggregates it wrote (here two), and reads a forgotten aggregate's name from the store."""
    app, _ = log_app
    seeding.seed(app, 6 * seeding.EVENTS_PER_MODEL)
    rows = read_rows(app.recorder, 0, 1000)
    states = decode_states(app.mapper, rows)
    reference = NameBook(app)
    expected = [to_proto(app.mapper.to_domain_event(n), n.id, reference) for n in app.recorder.select_notifications(0, 1000)]
    reads: list[uuid.UUID] = []
    read = app.repository.get
    monkeypatch.setattr(app.repository, "get", lambda aggregate_id, **kw: reads.append(aggregate_id) or read(aggregate_id, **kw))

    book = NameBook(app)  # the log in order: each aggregate's events follow its creation
    assert [common_pb2.Event.FromString(data) for data in encode_stored_events(rows, states, book)] == expected
    assert reads == []
    assert len(book.handles) + len(book.older_handles) <= event_log.NAME_BOOK_SIZE == 2

    # Every model's first events, then every model's second, ...: each later event names an aggregate
    # the book has forgotten since, so its name is read (once per aggregate and round, no more).
    order = sorted(range(len(rows)), key=lambda i: (rows[i][2], rows[i][0]))
    book = NameBook(app)
    encoded = encode_stored_events([rows[i] for i in order], [states[i] for i in order], book)
    assert [common_pb2.Event.FromString(data) for data in encoded] == [expected[i] for i in order]
    assert 0 < len(reads) <= len(rows) - len({row[1] for row in rows})
    assert len(book.handles) + len(book.older_handles) <= event_log.NAME_BOOK_SIZE
