"""An MLflow run per job attempt: params, per-step metrics, the dataset (name + digest)
and the adapter files. MLflow is best effort: when it is unreachable the job still
succeeds, and `status` says what happened so the job can report it. What it reports goes
into events and API answers, so credentials in the tracking URI are masked there."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from mlxhub.config import Settings
from mlxhub.redact import redact

log = logging.getLogger(__name__)

EXPERIMENT = "mlx-hub"
FLUSH_EVERY = 20


def tracking_uri(settings: Settings) -> str:
    """MLFLOW_TRACKING_URI, else a local store in $MLXHUB_HOME/mlflow."""
    return settings.mlflow_tracking_uri or (settings.home / "mlflow").resolve().as_uri()


class MlflowRun:
    def __init__(self, settings: Settings) -> None:
        self.uri = tracking_uri(settings)
        self.client = None
        self.run_id = ""
        self.status = ""
        self.pending: list[Any] = []

    def _guard(self, what: str, action) -> None:
        if self.status:  # failed once: do not stall every step on a dead server
            return
        try:
            action()
        except Exception as exc:  # noqa: BLE001  (any MLflow failure must not fail the job)
            problem = redact(f"{type(exc).__name__}: {exc}")[:200]
            self.status = f"MLflow unreachable at {redact(self.uri)} ({what}: {problem})"
            log.warning("%s; the job goes on without it", self.status)

    def start(self, job_id: str, params: dict[str, Any], dataset: dict[str, str]) -> None:
        def action() -> None:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # a local store needs no server
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
            os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
            from mlflow import MlflowClient
            from mlflow.entities import Dataset, DatasetInput, InputTag, Param

            self.client = MlflowClient(tracking_uri=self.uri)
            experiment = self.client.get_experiment_by_name(EXPERIMENT)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(EXPERIMENT)
            run = self.client.create_run(experiment_id, run_name=f"job-{job_id}", tags={"mlxhub.training_job": job_id})
            self.run_id = run.info.run_id
            self.client.log_batch(self.run_id, params=[Param(k, str(v)[:6000]) for k, v in sorted(params.items())])
            self.client.log_inputs(self.run_id, datasets=[DatasetInput(
                Dataset(name=dataset["name"], digest=dataset["sha256"][:36], source_type="local", source=dataset["path"]),
                tags=[InputTag("mlflow.data.context", "training")],
            )])

        self._guard("start run", action)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self.client is None or self.status:
            return
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self.pending += [Metric(k, float(v), stamp, step) for k, v in metrics.items()]
        if len(self.pending) >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.client is None or not self.pending:
            return
        batch, self.pending = self.pending, []
        self._guard("log metrics", lambda: self.client.log_batch(self.run_id, metrics=batch))

    def end(self, artifact_dir: Path | None, status: str) -> None:
        if self.client is None:
            return
        self.flush()
        if artifact_dir is not None:
            self._guard("log artifacts", lambda: self.client.log_artifacts(self.run_id, str(artifact_dir), "adapter"))
        self._guard("end run", lambda: self.client.set_terminated(self.run_id, status))

    def report(self) -> str:
        return self.status or (f"logged to {redact(self.uri)}" if self.run_id else "not logged")
