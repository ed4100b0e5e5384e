"""A follower listens before it reads: a commit made while nobody waits still wakes the next wait."""

from __future__ import annotations

from mlxhub.commit_signal import listening_for_commits
from mlxhub.eventstore import postgres_env
from mlxhub.stored_events import read_page
from registry_svc.application import RegistryApplication
from registry_svc.domain import Model


def new_model(name: str) -> Model:
    return Model(name=name, base_model="", description="", tags={}, idempotency_key="", meta={})


def test_a_commit_between_the_read_and_the_wait_wakes_the_wait(settings):
    app = RegistryApplication(postgres_env(settings))
    app.save(new_model("first"))
    with listening_for_commits(app.recorder) as wait:
        assert [row.id for row in read_page(app.recorder, 0, 100)] == [1]  # the follower's catch-up read
        assert not wait(0.05)  # nothing new yet
        app.save(new_model("second"))  # committed while no one waits
        assert wait(5.0)
        assert [row.id for row in read_page(app.recorder, 1, 100)] == [2]
        assert not wait(0.05)  # one commit, one wake

