"""A rebuild folded by PostgreSQL (`RegistryReadModel.fold_log`) writes exactly the rows the live
projection writes through `apply_batch`, refuses what `apply_batch` refuses, and hands the log
back to the Python replay where it cannot read an event the same way."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.projection import BaseProjectionRunner
from eventsourcing.utils import Environment

from bench import seeding
from mlxhub.eventstore import postgres_env
from mlxhub.read_model import rebuild
from registry_svc.application import RegistryApplication
from registry_svc.domain import Dataset, Model
from registry_svc.read_model import TABLES, RegistryProjection, RegistryReadModel

KEYS = {
    "registry_models": "name", "registry_model_versions": "model, version", "registry_datasets": "name",
    "registry_alias_moves": "position",
}  # fmt: skip
META = {"principal": "ünïcode", "request_id": "", "trace_id": "t"}


@pytest.fixture
def log_app(settings):
    env = postgres_env(settings)
    app = RegistryApplication(env)
    view = InfrastructureFactory.construct(Environment(RegistryProjection.name, env)).tracking_recorder(RegistryReadModel)
    yield app, view, env
    app.close()
    view.datastore.close()


def tables(view: RegistryReadModel) -> dict[str, list[dict]]:
    assert set(KEYS) == set(TABLES)
    return {table: view.query(f"SELECT * FROM {table} ORDER BY {key}") for table, key in KEYS.items()}


def no_python_replay(view: RegistryReadModel, monkeypatch) -> None:
    def refuse(*_):
        raise AssertionError("the rebuild replayed events in Python instead of folding them in the database")

    monkeypatch.setattr(view, "apply_batch", refuse)


def every_kind_of_event(app) -> None:
    """Models with every event type and odd values, saved one aggregate at a time and together."""
    seeding.seed(app, 4 * seeding.EVENTS_PER_MODEL + 60)
    odd = Model(name="odd", base_model="", description="line\nbreak ✓", tags={}, idempotency_key="k", meta=META)
    odd.update({"tags": {"": "empty key", "x": ""}}, META)
    odd.create_version(
        version=1, artifact_path="/a", kind="FULL", files=[], metrics={"loss": 0.0, "big": 1e300, "neg": -2},
        description="", base_version="", idempotency_key="",
        lineage={"nested": {"list": [1, 2.5, True, False, None, "s", [], {}]}, "deep": [[{"a": [None]}]]},
        create_time=datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), meta=META,
    )  # fmt: skip
    odd.move_alias("prod", 1, 0, META)
    odd.move_alias("beta", 1, 0, {})
    odd.move_alias("prod", 0, 1, META)
    odd.update({"description": "after", "base_model": "b2"}, META)
    dataset = Dataset(name="odd-data", path="/d.jsonl", sha256="0" * 64, size_bytes=2**40, record_count=0,
                      format="CHAT", description="", idempotency_key="", meta={})  # fmt: skip
    app.save(odd, dataset)
    later = app.repository.get(odd.id)
    later.create_version(version=7, artifact_path="/b", kind="ADAPTER", files=[{"path": "x"}], metrics={},
                         description="d", base_version="1", idempotency_key="", lineage={}, create_time=datetime.now(UTC),
                         meta=META)  # fmt: skip
    later.update({"tags": {"t": "1"}}, META)
    app.save(later)


def live_rows(app, view, env) -> dict[str, list[dict]]:
    runner = BaseProjectionRunner(projection=RegistryProjection(view=view), application_class=RegistryApplication,
                                  tracking_recorder=view, topics=(), env=env).__enter__()  # fmt: skip
    try:
        view.wait(app.name, app.recorder.max_notification_id(), timeout=60)
    finally:
        runner.__exit__(None, None, None)
    return tables(view)


def test_the_database_fold_writes_the_rows_the_live_projection_wrote(log_app, monkeypatch):
    app, view, env = log_app
    every_kind_of_event(app)
    live = live_rows(app, view, env)
    odd = next(row for row in live["registry_models"] if row["name"] == "odd")
    assert (odd["aliases"], odd["latest_version"], odd["tags"]) == ({"prod": 0, "beta": 1}, 7, {"t": "1"})
    assert (odd["description"], odd["base_model"]) == ("after", "b2")

    no_python_replay(view, monkeypatch)
    total = app.recorder.max_notification_id()
    assert rebuild(app, view) == total
    assert tables(view) == live
    assert view.max_tracking_id(app.name) == total


def test_a_log_the_fold_cannot_read_is_replayed_in_python(log_app):
    """A transcoded value inside a written field (a time in the tags) or a NaN (which PostgreSQL's
    JSON refuses) sends the rebuild through `apply_batch`, with the same rows as its own replay."""
    app, view, _ = log_app
    seeding.seed(app, seeding.EVENTS_PER_MODEL + 1)
    timed = Model(name="timed", base_model="", description="", tags={"when": datetime(2026, 1, 2, tzinfo=UTC)},
                  idempotency_key="", meta={})  # fmt: skip
    app.save(timed)
    applied = []
    apply_batch = view.apply_batch
    view.apply_batch = lambda events, curs: (applied.append(len(events)), apply_batch(events, curs))
    total = app.recorder.max_notification_id()
    assert rebuild(app, view) == total and sum(applied) == total
    folded = tables(view)
    assert rebuild(app, view, in_database=False) == total
    assert tables(view) == folded

    applied.clear()
    nan = app.repository.get(timed.id)
    nan.create_version(version=1, artifact_path="/n", kind="FULL", files=[], metrics={"loss": float("nan")},
                       description="", base_version="", idempotency_key="", lineage={}, create_time=datetime.now(UTC),
                       meta={})  # fmt: skip
    app.save(nan)
    assert rebuild(app, view) == total + 1 and sum(applied) == total + 1
    assert view.max_tracking_id(app.name) == total + 1


def test_the_fold_refuses_what_apply_batch_refuses(log_app, monkeypatch):
    app, view, _ = log_app
    model = Model(name="m", base_model="", description="", tags={}, idempotency_key="", meta={})
    model.update({"description": "d"}, {})
    renamed = Model(name="r", base_model="", description="", tags={}, idempotency_key="", meta={})
    renamed.trigger_event(Model.ModelUpdated, changes={"name": "renamed"}, meta={})
    app.save(model, renamed)
    no_python_replay(view, monkeypatch)
    with pytest.raises(ValueError, match="unknown fields"):
        rebuild(app, view)
    assert view.max_tracking_id(app.name) is None  # nothing written

    with view.datastore.transaction(commit=True) as curs:  # a log whose registrations are missing
        curs.execute(f"DELETE FROM {view.datastore.schema}.{app.recorder.events_table_name}"
                     " WHERE originator_id = %s OR topic LIKE '%%ModelRegistered'", (renamed.id,))
    with pytest.raises(LookupError, match="no ModelRegistered"):
        rebuild(app, view)
    assert view.max_tracking_id(app.name) is None and tables(view)["registry_models"] == []
