"""Read model for ListTrainingJobs (filter by state and model, newest first) and for
the reaper's sweeps: a projection of the trainer's log whose rows and tracking
position are written in one transaction, like the registry's (mlxhub.read_model)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from psycopg import Cursor
from psycopg.sql import SQL

from mlxhub.read_model import ReadModel
from trainer_svc.domain import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, TrainingJob

COLUMNS = (
    "id uuid PRIMARY KEY, position bigint UNIQUE NOT NULL, model text NOT NULL, output_model text NOT NULL,"
    " state text NOT NULL, create_time timestamptz NOT NULL, update_time timestamptz NOT NULL"
)
STATE_OF = {
    TrainingJob.TrainingJobStarted: RUNNING,
    TrainingJob.TrainingJobRequeued: QUEUED,
    TrainingJob.TrainingJobHandedBack: QUEUED,
    TrainingJob.TrainingJobResumed: QUEUED,
    TrainingJob.TrainingJobSucceeded: SUCCEEDED,
    TrainingJob.TrainingJobFailed: FAILED,
    TrainingJob.TrainingJobCancelled: CANCELLED,
}


class TrainerReadModel(ReadModel):
    def __init__(self, datastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.sql_create_statements.append(
            SQL("CREATE TABLE IF NOT EXISTS {}.trainer_jobs (" + COLUMNS + ")").format(self.schema)
        )

    def apply(self, domain_event: Any, curs: Cursor, position: int) -> None:
        if isinstance(domain_event, TrainingJob.TrainingJobQueued):
            curs.execute(
                "INSERT INTO trainer_jobs (id, position, model, output_model, state, create_time, update_time)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                (domain_event.originator_id, position, domain_event.model.split("/")[0].split("@")[0],
                 domain_event.output_model, QUEUED, domain_event.timestamp, domain_event.timestamp),
            )
        elif type(domain_event) in STATE_OF:
            curs.execute(
                "UPDATE trainer_jobs SET state = %s, update_time = %s WHERE id = %s",
                (STATE_OF[type(domain_event)], domain_event.timestamp, domain_event.originator_id),
            )

    def list_jobs(self, state: str, model: str, before: int | None, limit: int) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SET LOCAL search_path TO {}").format(self.schema))
            curs.execute(
                "SELECT id, position, state FROM trainer_jobs WHERE (%s = '' OR state = %s)"
                " AND (%s = '' OR model = %s OR output_model = %s) AND (%s::bigint IS NULL OR position < %s)"
                " ORDER BY position DESC LIMIT %s",
                (state, state, model, model, model, before, before, limit),
            )
            return list(curs.fetchall())

    def has_job(self, id: str) -> bool:
        """Whether this hub queued the job (another hub may share NATS with this one)."""
        try:
            key = UUID(id)
        except ValueError:
            return False
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SET LOCAL search_path TO {}").format(self.schema))
            curs.execute("SELECT 1 FROM trainer_jobs WHERE id = %s", (key,))
            return curs.fetchone() is not None

    def count_jobs(self, state: str, model: str) -> int:
        """Jobs matching list_jobs' filters, over all pages."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SET LOCAL search_path TO {}").format(self.schema))
            curs.execute(
                "SELECT count(*) AS n FROM trainer_jobs WHERE (%s = '' OR state = %s)"
                " AND (%s = '' OR model = %s OR output_model = %s)",
                (state, state, model, model, model),
            )
            return curs.fetchone()["n"]


class TrainerProjection(Projection[TrainerReadModel]):
    name = "trainer_read_model"

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.process([(domain_event, tracking)])
