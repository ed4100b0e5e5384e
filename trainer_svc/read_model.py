"""Read model for ListTrainingJobs (filter by state and model, newest first) and for the reaper's
sweeps: a projection of the trainer's log whose rows and tracking position are written in one
transaction, like the registry's (mlxhub.read_model).

Each row keeps the job's whole state as of its last event (the aggregate as a snapshot would keep
it, JSON), so that a page of jobs is one query and no aggregate load; the projection applies each
event to that state with the aggregate's own methods, so no rule is written twice. A row from
before the state column gets its state at the job's next event, read from the log as of that
event (`history`), and until then is listed from the log; `python -m trainer_svc
rebuild-read-model` fills every row at once."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Tracking, UUIDAsHex
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.sql import SQL

from mlxhub.read_model import ReadModel
from trainer_svc.domain import TrainingJob

TOPIC = get_topic(TrainingJob)
APPLY_CHUNK = 500  # events folded between two statements of a batch's transaction

COLUMNS = (
    "id uuid PRIMARY KEY, position bigint UNIQUE NOT NULL, model text NOT NULL, output_model text NOT NULL,"
    " state text NOT NULL, create_time timestamptz NOT NULL, update_time timestamptz NOT NULL, job bytea"
)


@dataclass
class _Job:
    """A job's row as a batch of events changes it."""

    queued: Any  # its TrainingJobQueued when the batch inserts the row
    job: TrainingJob | None  # None: a row from before the state was kept
    new: bool
    position: int = 0
    update_time: datetime | None = None
    changed: bool = False


def _json_rows(rows: list[tuple]) -> str:
    """Rows as one JSON array (taken apart by PostgreSQL): orjson, or the json module for what it refuses."""
    try:
        return orjson.dumps(rows).decode()
    except TypeError:
        return json.dumps(rows, default=str)


def _plain(value: Any) -> bool:
    """Whether orjson writes `value` as the state codec would: JSON values with string keys, no
    NaN or infinity (orjson writes null), integers within 64 bits, times (`_time_as_iso`)."""
    kind = type(value)
    if kind is str or kind is bool or value is None or kind is datetime:
        return True
    if kind is int:
        return -(2**63) <= value < 2**64
    if kind is float:
        return math.isfinite(value)
    if kind is dict:
        return all(type(key) is str and _plain(item) for key, item in value.items())
    if kind is list:
        return all(_plain(item) for item in value)
    return False


def _time_as_iso(value: Any) -> dict[str, str]:
    if type(value) is datetime:
        return {"_type_": "datetime_iso", "_data_": value.isoformat()}
    raise TypeError(f"{type(value).__name__} is not a plain value")


def state_codec() -> JSONTranscoder:
    """How a row stores the job's state: JSON, with UUIDs and times as the event store writes them."""
    codec = JSONTranscoder()
    codec.register(UUIDAsHex())
    codec.register(DatetimeAsISO())
    return codec


class TrainerReadModel(ReadModel):
    tables = ("trainer_jobs",)
    # A job as of a version, read from the log (the application's repository): fills rows from before
    # the state column. Without it such rows keep their last state until a rebuild.
    history: Callable[[UUID, int], TrainingJob] | None = None

    def __init__(self, datastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.codec = state_codec()
        self.sql_create_statements.append(
            SQL("CREATE TABLE IF NOT EXISTS {}.trainer_jobs (" + COLUMNS + ")").format(self.schema)
        )
        # Tables made before the job state was kept gain the column (rows fill in as jobs change or on a rebuild).
        self.sql_create_statements.append(
            SQL("ALTER TABLE {}.trainer_jobs ADD COLUMN IF NOT EXISTS job bytea").format(self.schema)
        )

    # ----- the job's state in a row ---------------------------------------------------------

    def encode(self, job: TrainingJob) -> bytes:
        """The job's state as `codec` reads it: written by orjson (several times as fast) when it
        holds only what orjson writes exactly as `codec` does, else by `codec`."""
        snapshot = Snapshot.take(job)
        value = {"version": snapshot.originator_version, "state": snapshot.state}
        if _plain(value):
            return orjson.dumps(value, default=_time_as_iso, option=orjson.OPT_PASSTHROUGH_DATETIME)
        return self.codec.encode(value)

    def job_of(self, row: dict[str, Any]) -> TrainingJob | None:
        """The job as of the row's last event (None for a row from before the state was kept)."""
        if row.get("job") is None:
            return None
        stored = self.codec.decode(bytes(row["job"]))
        snapshot = Snapshot(originator_id=row["id"], originator_version=stored["version"], timestamp=row["update_time"],
                            topic=TOPIC, state=stored["state"])
        return snapshot.mutate(None)

    # ----- the projection -------------------------------------------------------------------

    def apply(self, domain_event: Any, curs: Cursor, position: int) -> None:
        self.apply_batch([(domain_event, position)], curs)

    def apply_batch(self, events: Sequence[tuple[Any, int]], curs: Cursor) -> None:
        """Apply the events, in log order, APPLY_CHUNK at a time (`apply_chunk`), so that the
        transaction is never idle for long while Python folds them (PostgreSQL ends a session
        idle in a transaction past the library's timeout)."""
        for start in range(0, len(events), APPLY_CHUNK):
            self.apply_chunk(events[start:start + APPLY_CHUNK], curs)

    def apply_chunk(self, events: Sequence[tuple[Any, int]], curs: Cursor) -> None:
        """Apply the events, in log order, to each job's state once: one SELECT of the rows they
        change, then one INSERT of the new jobs and one UPDATE of the changed ones, instead of two
        or three statements per event."""
        rows = curs.execute("SELECT id, update_time, job FROM trainer_jobs WHERE id = ANY(%s) FOR UPDATE",
                            (list({e.originator_id for e, _ in events}),)).fetchall()  # fmt: skip
        jobs = {row["id"]: _Job(None, self.job_of(row), new=False) for row in rows}
        for domain_event, position in events:
            key = domain_event.originator_id
            entry = jobs.get(key)
            if isinstance(domain_event, TrainingJob.TrainingJobQueued):
                if entry is None:  # a row that exists already is kept (the log's first Queued wins)
                    job = domain_event.mutate(None)
                    jobs[key] = _Job(domain_event, job, new=True, position=position, update_time=domain_event.timestamp)
                continue
            if entry is None:
                continue  # not a job of this hub's log
            if entry.job is None:  # a row from before the state was kept
                if self.history is None:
                    continue
                entry.job = self.history(key, domain_event.originator_version)
            elif domain_event.originator_version <= entry.job.version:
                continue  # already in the row's state
            else:
                domain_event.mutate(entry.job)
            entry.update_time, entry.changed = domain_event.timestamp, True
        self._write(jobs, curs)

    def _write(self, jobs: dict[UUID, _Job], curs: Cursor) -> None:
        new = [(key, e) for key, e in jobs.items() if e.new]
        changed = [(key, e) for key, e in jobs.items() if not e.new and e.changed]
        if new:
            curs.execute(
                "INSERT INTO trainer_jobs (id, position, model, output_model, state, create_time, update_time, job)"
                " SELECT (r->>0)::uuid, (r->>1)::bigint, r->>2, r->>3, r->>4, (r->>5)::timestamptz,"
                " (r->>6)::timestamptz, convert_to(r->>7, 'UTF8') FROM jsonb_array_elements(%s::jsonb) AS r"
                " ORDER BY 2 ON CONFLICT (id) DO NOTHING",
                (_json_rows([
                    (key, e.position, e.queued.model.split("/")[0].split("@")[0], e.queued.output_model, e.job.state,
                     e.queued.timestamp, e.update_time, self.encode(e.job).decode())
                    for key, e in new
                ]),),
            )  # fmt: skip
        if changed:
            curs.execute(
                "UPDATE trainer_jobs AS t SET state = r->>1, update_time = (r->>2)::timestamptz,"
                " job = convert_to(r->>3, 'UTF8') FROM jsonb_array_elements(%s::jsonb) AS r WHERE t.id = (r->>0)::uuid",
                (_json_rows([(key, e.job.state, e.update_time, self.encode(e.job).decode()) for key, e in changed]),),
            )

    # ----- queries --------------------------------------------------------------------------

    def list_jobs(self, state: str, model: str, before: int | None, limit: int) -> list[dict[str, Any]]:
        """A page of rows, newest first: id, position, state, update_time and the job's state (`job_of`)."""
        return self.query(
            "SELECT id, position, state, update_time, job FROM trainer_jobs WHERE (%s = '' OR state = %s)"
            " AND (%s = '' OR model = %s OR output_model = %s) AND (%s::bigint IS NULL OR position < %s)"
            " ORDER BY position DESC LIMIT %s",
            (state, state, model, model, model, before, before, limit),
        )

    def has_job(self, id: str) -> bool:
        """Whether this hub queued the job (another hub may share NATS with this one)."""
        try:
            key = UUID(id)
        except ValueError:
            return False
        return bool(self.query("SELECT 1 FROM trainer_jobs WHERE id = %s", (key,)))

    def count_jobs(self, state: str, model: str) -> int:
        """Jobs matching list_jobs' filters, over all pages."""
        return self.query(
            "SELECT count(*) AS n FROM trainer_jobs WHERE (%s = '' OR state = %s)"
            " AND (%s = '' OR model = %s OR output_model = %s)",
            (state, state, model, model, model),
        )[0]["n"]


class TrainerProjection(Projection[TrainerReadModel]):
    name = "trainer_read_model"

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.process([(domain_event, tracking)])
