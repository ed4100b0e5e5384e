"""Read model for ListTrainingJobs (filter by state and model, newest first) and for the reaper's
sweeps: a projection of the trainer's log whose rows and tracking position are written in one
transaction, like the registry's (mlxhub.read_model).

Each row keeps the job's whole state as of its last event (the aggregate as a snapshot would keep
it, JSON), so that a page of jobs is one query and no aggregate load; the projection applies each
event to that state with the aggregate's own methods, so no rule is written twice. A row from
before the state column gets its state at the job's next event, read from the log as of that
event (`history`), and until then is listed from the log; `python -m trainer_svc
rebuild-read-model` fills every row at once, PostgreSQL folding the log into the rows itself
(`fold_log`: the same mutators, transcribed to one plpgsql function, proved equal by the tests)."""

from __future__ import annotations

import dataclasses
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
from psycopg.sql import SQL, Composable

from mlxhub.read_model import ReadModel, stored_events
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


# ----- the rebuild's fold in PostgreSQL -------------------------------------------------------
# The events a rebuild folds, in the order FOLD_FUNCTION numbers them (its `kind`), each with the
# attributes it reads: the aggregate's mutators (domain.py) transcribed, one branch per event.
# An event class whose attributes differ, or a new one (the domain changed), turns the fold off
# (`foldable`) until this is updated, and the rebuild replays the log in Python; tests/test_trainer_read_model_fold.py
# proves both write the same rows for every kind of event.
_J = TrainingJob
FOLDED_EVENTS = {
    _J.TrainingJobQueued: {"principal", "idempotency_key", "model", "base_version", "base_path", "dataset",
                           "dataset_sha256", "dataset_path", "validation_path", "output_model", "config",
                           "total_steps", "retried_from", "originator_topic"},
    _J.TrainingJobStarted: {"worker", "attempt", "resume_from", "start_time"},
    _J.CheckpointSaved: {"step", "path", "sha256", "validation_loss", "loss", "save_time"},
    _J.TrainingJobCancelRequested: set(),
    _J.TrainingJobCancelled: {"step", "end_time"},
    _J.TrainingJobFailed: {"reason", "step", "end_time"},
    _J.TrainingJobRequeued: {"reason"},
    _J.TrainingJobHandedBack: {"step", "reason"},
    _J.TrainingJobAdapterSaved: {"attempt", "path", "files", "step", "loss", "metrics", "mlflow_run_id",
                                 "mlflow_status"},
    _J.TrainingJobResumed: set(),
    _J.TrainingJobSucceeded: {"step", "loss", "output_version", "artifact_path", "artifact_files", "mlflow_run_id",
                              "mlflow_status", "end_time"},
}  # fmt: skip
EVERY_EVENT = {"originator_id", "originator_version", "timestamp", "meta"}


def _attributes(event_class: type) -> set[str]:
    return {field.name for field in dataclasses.fields(event_class)} - EVERY_EVENT


def foldable(job_class: type[TrainingJob] = TrainingJob) -> bool:
    """Whether FOLD_FUNCTION knows every event `job_class` records, with the attributes it was written for."""
    recorded = {cls for cls in vars(job_class).values() if isinstance(cls, type) and issubclass(cls, TrainingJob.Event)}
    return recorded <= {*FOLDED_EVENTS, job_class.Event, job_class.Created} and all(
        _attributes(cls) == names for cls, names in FOLDED_EVENTS.items()
    )


FOLDABLE = foldable()
# One job's row from the fold's variables (written out twice below: at each job's end and the log's).
_EMIT = """
      job_id := queued_id; job_position := queued_position; job_state := state;
      job_model := split_part(split_part(queued->>'model', '/', 1), '@', 1); job_output_model := queued->>'output_model';
      job_create_time := (queued->'timestamp'->>'_data_')::timestamptz;
      job_update_time := (modified_on->>'_data_')::timestamptz;
      body := json_build_object('_created_on', queued->'timestamp', '_modified_on', modified_on,
        'idempotency_key', queued->'idempotency_key', 'model', queued->'model',
        'base_version', queued->'base_version', 'base_path', queued->'base_path', 'dataset', queued->'dataset',
        'dataset_sha256', queued->'dataset_sha256', 'dataset_path', queued->'dataset_path',
        'validation_path', queued->'validation_path', 'output_model', queued->'output_model',
        'config', queued->'config', 'total_steps', queued->'total_steps', 'retried_from', queued->'retried_from',
        'created_by', queued->'principal', 'state', state, 'queue_seq', queue_seq, 'step', step,
        'last_loss', last_loss, 'attempt', attempt, 'worker', worker, 'start_time', start_time,
        'attempt_start_time', attempt_start_time, 'end_time', end_time, 'checkpoints', array_to_json(checkpoints),
        'best_checkpoint', best_checkpoint, 'resume_from', resume_from, 'cancel_requested', cancel_requested,
        'failure_reason', failure_reason, 'output_version', output_version, 'artifact_path', artifact_path,
        'artifact_files', artifact_files, 'mlflow_run_id', mlflow_run_id, 'mlflow_status', mlflow_status)::text;
      IF handoffs IS NOT NULL THEN body := left(body, -1) || ', "handoffs" : ' || handoffs || '}}'; END IF;
      IF adapter IS NOT NULL THEN body := left(body, -1) || ', "adapter" : ' || adapter::text || '}}'; END IF;
      job := convert_to('{{"version": ' || version || ', "state": ' || body || '}}', 'UTF8');
      RETURN NEXT;"""
# The fold: the log's events in (job, version) order, parsed once each (jsonb), applied to one job's
# state held in variables, and a row returned at each job's end. Python's None is JSON null here. An
# event it cannot read as the live projection does (a class version, a transcoded value other than a
# time, a float written with a positive exponent, which jsonb would give back as an integer, a step
# that is not an integer) raises a data exception, and the rebuild replays the log in Python.
FOLD_FUNCTION = """
CREATE OR REPLACE FUNCTION pg_temp.trainer_jobs_folded(through bigint, topics text[], job_topics text)
RETURNS TABLE (job_id uuid, job_position bigint, job_model text, job_output_model text, job_state text,
               job_create_time timestamptz, job_update_time timestamptz, job bytea)
LANGUAGE plpgsql AS $fold$
#variable_conflict use_column
DECLARE
  e record; current_id uuid; queued jsonb; queued_id uuid; queued_position bigint;
  version bigint; modified_on jsonb; state text; queue_seq bigint; step bigint; last_loss jsonb;
  attempt jsonb; worker jsonb; start_time jsonb; attempt_start_time jsonb; end_time jsonb;
  checkpoints jsonb[]; checkpoint jsonb; last_checkpoint jsonb; best_checkpoint jsonb; best_loss float8;
  resume_from jsonb; cancel_requested boolean; failure_reason jsonb; output_version jsonb; artifact_path jsonb;
  artifact_files jsonb; mlflow_run_id jsonb; mlflow_status jsonb; handoffs bigint; adapter jsonb; body text;
BEGIN
  FOR e IN
    SELECT position, id, version, topic, array_position(topics, topic) AS kind, j,
      transcoded <> times OR (strpos(t, 'e+') > 0 AND t ~ '[0-9]e\\+') OR j ? 'class_version' AS unreadable
    FROM ({stored}) AS stored ORDER BY id, version
  LOOP
    IF e.id IS DISTINCT FROM current_id THEN
      IF queued IS NOT NULL THEN""" + _EMIT + """
      END IF;
      current_id := e.id; queued := NULL;
    END IF;
    IF e.kind IS NULL OR e.unreadable THEN
      CONTINUE WHEN e.kind IS NULL AND NOT starts_with(e.topic, job_topics);  -- not a job's event
      RAISE EXCEPTION 'the fold cannot read event % (%)', e.position, e.topic USING ERRCODE = 'data_exception';
    END IF;
    IF e.kind = 1 THEN  -- TrainingJobQueued (__init__)
      queued := e.j; queued_id := e.id; queued_position := e.position;
      state := 'QUEUED'; queue_seq := 1; step := 0; last_loss := '0.0'; attempt := '0'; worker := '""';
      start_time := 'null'; attempt_start_time := 'null'; end_time := 'null'; checkpoints := '{{}}';
      last_checkpoint := 'null'; best_checkpoint := 'null'; best_loss := NULL; resume_from := 'null';
      cancel_requested := false; failure_reason := '""'; output_version := '""'; artifact_path := '""';
      artifact_files := '[]'; mlflow_run_id := '""'; mlflow_status := '""'; handoffs := NULL; adapter := NULL;
    ELSIF queued IS NULL THEN
      CONTINUE;  -- a job whose queueing is not in the log
    ELSIF e.kind = 2 THEN  -- TrainingJobStarted
      state := 'RUNNING'; worker := e.j->'worker'; attempt := e.j->'attempt'; resume_from := e.j->'resume_from';
      step := CASE WHEN resume_from IN ('null', '{{}}') THEN 0 ELSE (resume_from->>'step')::bigint END;
      IF start_time = 'null' THEN start_time := e.j->'start_time'; END IF;
      attempt_start_time := e.j->'start_time'; cancel_requested := false;
    ELSIF e.kind = 3 THEN  -- CheckpointSaved
      checkpoint := jsonb_build_object('step', e.j->'step', 'path', e.j->'path', 'sha256', e.j->'sha256',
                                       'validation_loss', e.j->'validation_loss', 'save_time', e.j->'save_time');
      checkpoints := array_append(checkpoints, checkpoint); last_checkpoint := checkpoint;
      step := (e.j->>'step')::bigint; last_loss := e.j->'loss';
      IF e.j->'validation_loss' <> 'null'
         AND (best_loss IS NULL OR (e.j->'validation_loss')::float8 < best_loss) THEN
        best_checkpoint := checkpoint; best_loss := (e.j->'validation_loss')::float8;
      END IF;
    ELSIF e.kind = 4 THEN  -- TrainingJobCancelRequested
      cancel_requested := true;
    ELSIF e.kind = 5 THEN  -- TrainingJobCancelled
      state := 'CANCELLED'; step := greatest(step, (e.j->>'step')::bigint); end_time := e.j->'end_time';
    ELSIF e.kind = 6 THEN  -- TrainingJobFailed
      state := 'FAILED'; failure_reason := e.j->'reason'; step := greatest(step, (e.j->>'step')::bigint);
      end_time := e.j->'end_time';
    ELSIF e.kind = 7 THEN  -- TrainingJobRequeued
      state := 'QUEUED'; queue_seq := queue_seq + 1; resume_from := last_checkpoint; failure_reason := e.j->'reason';
    ELSIF e.kind = 8 THEN  -- TrainingJobHandedBack
      state := 'QUEUED'; queue_seq := queue_seq + 1; resume_from := last_checkpoint;
      step := greatest(step, (e.j->>'step')::bigint); handoffs := coalesce(handoffs, 0) + 1;
    ELSIF e.kind = 9 THEN  -- TrainingJobAdapterSaved
      adapter := jsonb_build_object('attempt', e.j->'attempt', 'path', e.j->'path', 'files', e.j->'files',
                                    'step', e.j->'step', 'loss', e.j->'loss', 'metrics', e.j->'metrics',
                                    'mlflow_run_id', e.j->'mlflow_run_id', 'mlflow_status', e.j->'mlflow_status');
      step := greatest(step, (e.j->>'step')::bigint);
    ELSIF e.kind = 10 THEN  -- TrainingJobResumed
      state := 'QUEUED'; queue_seq := queue_seq + 1; resume_from := last_checkpoint; failure_reason := '""';
      end_time := 'null';
    ELSIF e.kind = 11 THEN  -- TrainingJobSucceeded
      state := 'SUCCEEDED'; step := (e.j->>'step')::bigint; last_loss := e.j->'loss';
      output_version := e.j->'output_version'; artifact_path := e.j->'artifact_path';
      artifact_files := e.j->'artifact_files'; mlflow_run_id := e.j->'mlflow_run_id';
      mlflow_status := e.j->'mlflow_status'; end_time := e.j->'end_time';
    END IF;
    version := e.version; modified_on := e.j->'timestamp';
  END LOOP;
  IF queued IS NOT NULL THEN""" + _EMIT + """
  END IF;
END
$fold$"""
FOLD = (
    "INSERT INTO trainer_jobs (id, position, model, output_model, state, create_time, update_time, job)"
    " SELECT * FROM pg_temp.trainer_jobs_folded(%(through)s, %(topics)s, %(job_topics)s)"
)
FOLD_PARAMS = {"topics": [get_topic(cls) for cls in FOLDED_EVENTS], "job_topics": TOPIC + "."}


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

    def fold_log(self, curs: Cursor, events: Composable, through: int) -> bool:
        """The rebuild's fold in PostgreSQL (FOLD_FUNCTION, a temporary function of this session): the
        rows `apply_batch` writes for the same events, without one event crossing into Python."""
        if not FOLDABLE:
            return False
        curs.execute("SET LOCAL work_mem = '256MB'")  # the log sorted by job in memory, not in temporary files
        ordered = SQL(" ORDER BY originator_id, originator_version")  # the primary key's order: no sort
        curs.execute(SQL(FOLD_FUNCTION).format(stored=stored_events(events, SQL("through"), order_by=ordered)))
        curs.execute(FOLD, {**FOLD_PARAMS, "through": through})
        return True

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
