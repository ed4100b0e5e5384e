"""Appends to a service's log: one statement each, the writers of a process that arrive while one
is under way appended together in one commit, each still getting its own positions or its own
error; and a writer's read model caught up with its own events before the write is answered."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from eventsourcing.persistence import IntegrityError

import mlxhub.followers
from mlxhub.eventstore import connect, postgres_env
from mlxhub.followers import EventFailed, FollowerWatch, LogProjector
from mlxhub.read_model import open_read_model
from mlxhub.v1 import registry_pb2
from registry_svc.application import RegistryApplication
from registry_svc.domain import Model
from registry_svc.read_model import RegistryProjection, RegistryReadModel


def new_model(name: str, **fields) -> Model:
    return Model(**{"name": name, "base_model": "", "description": "", "tags": {}, "idempotency_key": "",
                    "meta": {}, **fields})


def eventually(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout}s"
        time.sleep(0.01)


@pytest.fixture
def app(settings):
    app = RegistryApplication(postgres_env(settings))
    yield app
    app.close()


@contextlib.contextmanager
def log_locked(settings):
    """Hold the lock that every append takes on the events table, as a long append would."""
    with connect(settings) as conn:
        conn.execute("LOCK TABLE registry_events IN EXCLUSIVE MODE")
        yield conn
        conn.commit()


def blocked_on_the_log(settings) -> int:
    with connect(settings, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE c.relname = 'registry_events' AND NOT l.granted"
        ).fetchone()[0]


class Saves:
    """Saves in threads of their own; what each returned (positions) or raised."""

    def __init__(self, app: RegistryApplication) -> None:
        self.app = app
        self.results: dict[str, object] = {}
        self.threads: list[threading.Thread] = []

    def start(self, key: str, model: Model) -> None:
        def save() -> None:
            try:
                self.results[key] = [r.notification.id for r in self.app.save(model)]
            except Exception as exc:  # noqa: BLE001  (what the writer would see)
                self.results[key] = exc

        thread = threading.Thread(target=save)
        thread.start()
        self.threads.append(thread)

    def join(self) -> dict[str, object]:
        for thread in self.threads:
            thread.join(30)
        return self.results


def stored(settings) -> dict[int, tuple[str, str]]:
    """position -> (originator id, the id of the transaction that inserted it)."""
    with connect(settings, autocommit=True) as conn:
        rows = conn.execute("SELECT notification_id, originator_id::text, xmin::text FROM registry_events").fetchall()
    return {position: (originator, transaction) for position, originator, transaction in rows}


def test_writers_arriving_during_an_append_are_appended_together_each_with_its_positions(app, settings):
    saves = Saves(app)
    models = {name: new_model(name) for name in ("first", "a", "b", "c", "d")}
    with log_locked(settings):
        saves.start("first", models["first"])
        eventually(lambda: blocked_on_the_log(settings) == 1, "the first append waiting for the lock")
        for name in "abcd":
            saves.start(name, models[name])
        eventually(lambda: app.recorder.waiting == 4, "four writers waiting for the next append")
    results = saves.join()

    rows = stored(settings)
    assert sorted(p for positions in results.values() for p in positions) == sorted(rows)
    for name, positions in results.items():
        assert [rows[p][0] for p in positions] == [str(models[name].id)]
    first = rows[results["first"][0]][1]
    together = {rows[results[name][0]][1] for name in "abcd"}
    assert len(together) == 1 and first not in together  # one transaction for the four, another for the first
    assert max(results["first"]) < min(p for name in "abcd" for p in results[name])
    assert {app.repository.get(m.id).name for m in models.values()} == set(models)


def test_a_conflicting_writer_in_a_group_gets_its_own_error_and_the_others_are_saved(app, settings):
    app.save(new_model("taken", description="the original"))
    saves = Saves(app)
    models = {"x": new_model("x"), "y": new_model("y"), "taken": new_model("taken", description="second"),
              "z": new_model("z")}
    with log_locked(settings):
        saves.start("x", models["x"])
        eventually(lambda: blocked_on_the_log(settings) == 1, "the first append waiting for the lock")
        for key in ("y", "taken", "z"):
            saves.start(key, models[key])
        eventually(lambda: app.recorder.waiting == 3, "three writers waiting for the next append")
    results = saves.join()

    assert isinstance(results["taken"], IntegrityError)
    assert all(isinstance(results[key], list) and len(results[key]) == 1 for key in ("x", "y", "z"))
    assert app.repository.get(models["taken"].id).description == "the original"
    for key in ("x", "y", "z"):
        assert app.repository.get(models[key].id).name == key
    rows = stored(settings)
    assert len(rows) == 4  # the refused group left nothing behind


@pytest.fixture
def view(settings):
    view = open_read_model(RegistryReadModel, RegistryProjection.name, postgres_env(settings))
    yield view
    view.datastore.close()


def model_names(settings) -> list[str]:
    with connect(settings, autocommit=True) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM registry_models ORDER BY name")]


def test_a_writer_applies_its_own_events_from_memory_and_reads_the_log_only_across_a_gap(app, view, settings,
                                                                                         monkeypatch):
    projector = LogProjector(app, view, FollowerWatch(settings, "registry", "test_projector"))
    reads = []
    real_read_page = mlxhub.followers.read_page
    monkeypatch.setattr(mlxhub.followers, "read_page", lambda *args: reads.append(args[1]) or real_read_page(*args))

    projector.catch_up()  # from the tracked position (none yet), over an empty log
    written = [r.notification for r in app.save(new_model("mine"))]
    reads.clear()
    assert projector.catch_up(through=written[-1].id, written=written)
    assert reads == []  # its own event followed on from the applied position: nothing read
    assert model_names(settings) == ["mine"]

    app.save(new_model("theirs"))  # a write this writer was not given
    written = [r.notification for r in app.save(new_model("later"))]
    assert projector.catch_up(through=written[-1].id, written=written)
    assert reads == [written[-1].id - 2]  # read the log after its position, across the gap
    assert model_names(settings) == ["later", "mine", "theirs"]
    assert view.max_tracking_id(app.name) == written[-1].id


def test_a_batch_the_read_model_refuses_is_applied_up_to_the_event_it_names(app, view, settings):
    for name in ("one", "two"):
        app.save(new_model(name))
    poison = app.save(new_model("poison", description="nul \x00 inside"))[0].notification.id
    app.save(new_model("after"))
    projector = LogProjector(app, view, FollowerWatch(settings, "registry", "test_projector"))

    with pytest.raises(EventFailed) as caught:
        projector.catch_up()
    assert (caught.value.position, caught.value.event_type) == (poison, "ModelRegistered")
    assert model_names(settings) == ["one", "two"]
    assert view.max_tracking_id(app.name) == poison - 1
    with pytest.raises(EventFailed):  # and again from the tracked position, not past it
        projector.catch_up()
    assert view.max_tracking_id(app.name) == poison - 1


def test_applications_starting_together_create_the_log_without_failing(settings):
    """A service and its workers start at once and each creates the (same) tables and append
    function; two CREATE OR REPLACE FUNCTIONs at once must not fail either of them."""
    started, failures, apps = threading.Barrier(6), [], []

    def start() -> None:
        started.wait()
        try:
            apps.append(RegistryApplication(postgres_env(settings)))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        model = new_model("after-a-crowded-start")
        apps[0].save(model)  # through the append function they created
        assert apps[-1].repository.get(model.id).name == "after-a-crowded-start"
    finally:
        for app in apps:
            app.close()


def transactions_of(settings, view) -> dict[str, str]:
    """Which transaction last wrote each model's row and the read model's tracking row ('tracking')."""
    with connect(settings, autocommit=True) as conn:
        rows = dict(conn.execute("SELECT name, xmin::text FROM registry_models").fetchall())
        rows["tracking"] = conn.execute(
            f"SELECT xmin::text FROM {view.tracking_table_name} WHERE application_name = 'registry'"
        ).fetchone()[0]
    return rows


def test_a_writers_events_reach_its_read_model_in_the_transaction_that_appends_them(app, view, settings,
                                                                                  monkeypatch):
    projector = LogProjector(app, view, FollowerWatch(settings, "registry", "test_projector"))
    projector.catch_up()
    app.apply_in_appends(projector)
    reads = []
    real_read_page = mlxhub.followers.read_page
    monkeypatch.setattr(mlxhub.followers, "read_page", lambda *args: reads.append(args[1]) or real_read_page(*args))

    written = [r.notification for r in app.save(new_model("one"))]
    (position,) = [n.id for n in written]
    assert model_names(settings) == ["one"] and view.max_tracking_id(app.name) == position
    event_transaction = stored(settings)[position][1]
    assert transactions_of(settings, view) == {"one": event_transaction, "tracking": event_transaction}
    assert projector.catch_up(through=position, written=written) and reads == []  # nothing left to apply

    saves = Saves(app)  # writers appended together: their events and rows in one commit
    with log_locked(settings):
        saves.start("first", new_model("first"))
        eventually(lambda: blocked_on_the_log(settings) == 1, "the first append waiting for the lock")
        for name in "abc":
            saves.start(name, new_model(name))
        eventually(lambda: app.recorder.waiting == 3, "three writers waiting for the next append")
    results = saves.join()
    events = stored(settings)
    together = {events[results[name][0]][1] for name in "abc"}
    assert len(together) == 1
    rows = transactions_of(settings, view)
    assert {rows[name] for name in "abc"} == together and rows["tracking"] in together
    assert rows["first"] == events[results["first"][0]][1]
    assert view.max_tracking_id(app.name) == max(results["c"] + results["a"] + results["b"])
    assert projector.catch_up() and reads == [max(events)]  # the follower finds nothing after it


def test_a_write_after_another_processs_is_appended_alone_and_applied_from_the_log(app, view, settings):
    projector = LogProjector(app, view, FollowerWatch(settings, "registry", "test_projector"))
    projector.catch_up()
    app.apply_in_appends(projector)
    other = RegistryApplication(postgres_env(settings))  # another replica's writer: no read model of its own
    try:
        other.save(new_model("theirs"))
    finally:
        other.close()

    written = [r.notification for r in app.save(new_model("mine"))]
    assert model_names(settings) == []  # not applied ahead of the event before it
    assert projector.catch_up(through=written[-1].id, written=written)
    assert model_names(settings) == ["mine", "theirs"]
    assert view.max_tracking_id(app.name) == written[-1].id
    assert transactions_of(settings, view)["mine"] != stored(settings)[written[-1].id][1]


def test_an_event_its_read_model_refuses_is_still_appended_and_the_follower_names_it(app, view, settings):
    projector = LogProjector(app, view, FollowerWatch(settings, "registry", "test_projector"))
    projector.catch_up()
    app.apply_in_appends(projector)
    one = app.save(new_model("one"))[0].notification.id
    poison = app.save(new_model("poison", description="nul \x00 inside"))[0].notification.id

    assert poison in stored(settings) and model_names(settings) == ["one"]  # the event without its row, for now
    assert view.max_tracking_id(app.name) == one
    app.save(new_model("after"))  # not applied past the event the read model refuses
    assert model_names(settings) == ["one"]
    with pytest.raises(EventFailed) as caught:
        projector.catch_up()
    assert (caught.value.position, caught.value.event_type) == (poison, "ModelRegistered")
    assert view.max_tracking_id(app.name) == one


def test_a_position_given_up_by_a_refused_append_does_not_stop_the_next_write_applying_its_own(app, view, settings):
    projector = LogProjector(app, view, FollowerWatch(settings, "registry", "test_projector"))
    projector.catch_up()
    app.apply_in_appends(projector)
    app.save(new_model("taken"))
    with pytest.raises(IntegrityError):
        app.save(new_model("taken"))  # its position is given up: the log's positions have a hole there
    position = app.save(new_model("next"))[0].notification.id

    assert sorted(stored(settings)) == [1, position] and position > 2
    assert model_names(settings) == ["next", "taken"]  # applied in its own append, across the hole
    assert transactions_of(settings, view)["next"] == stored(settings)[position][1]


def test_a_position_another_process_applied_is_not_applied_again_in_the_append(app, view, settings):
    projector = LogProjector(app, view, FollowerWatch(settings, "registry", "test_projector"))
    projector.catch_up()
    app.apply_in_appends(projector)
    app.save(new_model("one"))
    with connect(settings, autocommit=True) as conn:  # as another leader would have, unknown to this one
        conn.execute(f"UPDATE {view.tracking_table_name} SET notification_id = 1000 WHERE application_name = 'registry'")

    position = app.save(new_model("two"))[0].notification.id

    assert position in stored(settings)  # the write is appended all the same
    assert model_names(settings) == ["one"]  # but its row is left to the leader that is ahead
    assert view.max_tracking_id(app.name) == 1000


def test_the_leading_registry_commits_a_created_model_with_its_read_model_row(registry, registry_stub, settings):
    eventually(lambda: registry.projection is not None and registry.projection.projector is not None,
               "the registry leading its followers")
    registry_stub.CreateModel(registry_pb2.CreateModelRequest(name="first"))
    registry_stub.CreateModel(registry_pb2.CreateModelRequest(name="mine", base_model="base"))

    with connect(settings, autocommit=True) as conn:
        event = conn.execute("SELECT xmin::text FROM registry_events ORDER BY notification_id DESC LIMIT 1").fetchone()
        row = conn.execute("SELECT xmin::text, base_model FROM registry_models WHERE name = 'mine'").fetchone()
    assert row == (event[0], "base")  # one transaction wrote both
    listed = registry_stub.ListModels(registry_pb2.ListModelsRequest()).models
    assert [m.name for m in listed] == ["first", "mine"]
