"""`mlx-hub train` and `mlx-hub jobs ...` against the real trainer and registry."""

from __future__ import annotations

import json

import pytest
from trainer_util import register
from typer.testing import CliRunner

from mlxhub.cli import app


@pytest.fixture
def cli(trainer, registry_stub, hub_env, tiny_model, training_chats):
    register(registry_stub, tiny_model, training_chats)
    runner = CliRunner()
    env = {**hub_env, "COLUMNS": "250", "MLXHUB_API_KEY": ""}
    return lambda *args: runner.invoke(app, list(args), env=env, prog_name="mlx-hub")


def test_train_shows_progress_and_ends_with_the_new_version(cli):
    result = cli("train", "tiny", "chats", "--iters", "6", "--batch-size", "2", "--learning-rate", "1e-3")
    assert result.exit_code == 0, result.output
    assert "queued job" in result.stdout and "6/6" in result.stdout and "tok/s" in result.stdout
    assert "succeeded: new version tiny/versions/2" in result.stdout

    listed = cli("jobs", "list", "--state", "succeeded", "--json")
    jobs = json.loads(listed.stdout)["jobs"]
    assert len(jobs) == 1 and jobs[0]["outputVersion"] == "tiny/versions/2"
    shown = cli("jobs", "show", jobs[0]["id"])
    assert shown.exit_code == 0 and "tiny/versions/2" in shown.stdout and "6 / 6" in shown.stdout
    watched = cli("jobs", "watch", jobs[0]["id"])
    assert watched.exit_code == 0 and "succeeded: new version tiny/versions/2" in watched.stdout


def test_jobs_cancel_watch_and_errors(cli):
    queued = cli("train", "tiny", "chats", "--iters", "100000", "--batch-size", "2", "--save-every", "5",
                 "--detach", "--json")
    job_id = json.loads(queued.stdout)["id"]
    cancelled = cli("jobs", "cancel", job_id)
    assert cancelled.exit_code == 0 and job_id in cancelled.stdout
    watched = cli("jobs", "watch", job_id)
    assert watched.exit_code == 1 and "cancelled" in watched.stdout  # ends, and says how
    assert cli("jobs", "list", "--state", "bogus").exit_code == 2
    missing = cli("jobs", "show", "00000000-0000-0000-0000-000000000000")
    assert missing.exit_code == 1 and "error: training job" in missing.stderr and "not found" in missing.stderr
    bad = cli("train", "tiny", "chats", "--learning-rate", "-1")
    assert bad.exit_code == 1 and "config.learning_rate" in bad.stderr
