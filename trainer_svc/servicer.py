"""gRPC adapter: proto requests in, application commands and queries, proto responses
out; HubErrors become rich statuses. WatchTrainingJob reads the job's progress
stream from its start (replay), follows it live, and ends with the final job; all
watchers share the process's one NATS connection (`watch.ProgressFeed`)."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime

from google.protobuf import json_format, timestamp_pb2

from mlxhub import bounds
from mlxhub.auth import call_metadata
from mlxhub.config import Settings
from mlxhub.errors import InvalidArgument, handlers
from mlxhub.v1 import bounds_pb2, common_pb2, trainer_pb2, trainer_pb2_grpc
from trainer_svc import config as job_config
from trainer_svc import intake, queue
from trainer_svc.application import TrainerApplication
from trainer_svc.domain import TERMINAL, TrainingJob
from trainer_svc.read_model import TrainerReadModel
from trainer_svc.registry_client import RegistryClient
from trainer_svc.throughput import BUCKET_S, Recorder
from trainer_svc.watch import ProgressFeed

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
WATCH_POLL_SECONDS = 0.5


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def checkpoint_message(c: dict | None) -> trainer_pb2.Checkpoint | None:
    if not c:
        return None
    return trainer_pb2.Checkpoint(step=c["step"], path=c["path"], sha256=c["sha256"],
                                  validation_loss=c["validation_loss"] or 0.0, save_time=timestamp(c["save_time"]))


def job_message(job: TrainingJob) -> trainer_pb2.TrainingJob:
    return trainer_pb2.TrainingJob(
        id=str(job.id), model=job.model, base_version=job.base_version, dataset=job.dataset,
        dataset_sha256=job.dataset_sha256, config=job_config.to_proto(job.config),
        state=trainer_pb2.TrainingJobState.Value(f"TRAINING_JOB_STATE_{job.state}"), step=job.step,
        total_steps=job.total_steps, last_loss=job.last_loss, best_validation_loss=job.best_validation_loss or 0.0,
        best_checkpoint=checkpoint_message(job.best_checkpoint),
        checkpoints=[checkpoint_message(c) for c in job.checkpoints], failure_reason=job.failure_reason,
        output_version=job.output_version, mlflow_run_id=job.mlflow_run_id, worker=job.worker, attempt=job.attempt,
        create_time=timestamp(job.created_on), start_time=timestamp(job.start_time),
        end_time=timestamp(job.end_time), created_by=job.created_by, output_model=job.output_model,
        artifact_path=job.artifact_path, artifact_files=[common_pb2.ArtifactFile(**f) for f in job.artifact_files],
        mlflow_status=job.mlflow_status, cancel_requested=job.cancel_requested, retried_from=job.retried_from,
        idempotency_key=job.idempotency_key, handoffs=job.handoffs,
    )


rpc, rpc_stream = handlers("trainer")


def forwarded(context) -> list[tuple[str, str]]:
    """The caller's authorization, passed on to the registry so it decides with the caller's rights."""
    return [(k, v) for k, v in context.invocation_metadata() or () if k == "authorization"]


class TrainerServicer(trainer_pb2_grpc.TrainerServiceServicer):
    def __init__(self, app: TrainerApplication, read_model: TrainerReadModel, registry: RegistryClient,
                 settings: Settings, throughput: Recorder | None = None) -> None:
        self.app, self.read_model, self.registry, self.settings = app, read_model, registry, settings
        self.throughput = throughput or Recorder()  # fed by the server's ThroughputFeed
        self.feed = ProgressFeed(settings)  # one NATS connection for all of this process's watchers

    def close(self) -> None:
        self.feed.close()

    def meta(self, context) -> dict[str, str]:
        return call_metadata(context, self.settings.api_keys)

    def enqueue(self, job: TrainingJob) -> None:
        try:
            queue.enqueue(self.settings, job.id, job.queue_seq)
        except Exception as exc:  # noqa: BLE001  (the reaper re-publishes queued jobs)
            log.warning("job %s saved but not yet queued (%s); the reaper will queue it", job.id, exc)

    @rpc
    def CreateTrainingJob(self, request, context):
        meta = self.meta(context)
        job = self.app.existing_job(meta["principal"], request.idempotency_key)
        if job is None:
            fields = intake.prepare(request, self.registry, forwarded(context), self.settings.data_roots)
            job = self.app.create_job(principal=meta["principal"], idempotency_key=request.idempotency_key,
                                      meta=meta, **fields)
            self.enqueue(job)
        return trainer_pb2.CreateTrainingJobResponse(job=job_message(job))

    @rpc
    def GetTrainingJob(self, request, context):
        return trainer_pb2.GetTrainingJobResponse(job=job_message(self.app.get_job(request.id)))

    @rpc
    def ListTrainingJobs(self, request, context):
        if request.page_size < 0:
            raise InvalidArgument(f"page_size must be >= 0, got {request.page_size}", field="page_size")
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        before = None
        if request.page_token:
            try:
                before = int(json.loads(base64.urlsafe_b64decode(request.page_token.encode()))["before"])
            except (ValueError, KeyError, TypeError):
                raise InvalidArgument("page_token is not valid; pass the next_page_token of a previous response",
                                      field="page_token") from None
        state = ""
        if request.state:
            state = trainer_pb2.TrainingJobState.Name(request.state).removeprefix("TRAINING_JOB_STATE_")
        rows = self.read_model.list_jobs(state, request.model, before, size)
        token = ""
        if len(rows) == size:
            token = base64.urlsafe_b64encode(json.dumps({"before": rows[-1]["position"]}).encode()).decode()
        return trainer_pb2.ListTrainingJobsResponse(
            jobs=[job_message(self.app.get_job(row["id"])) for row in rows], next_page_token=token,
            total_size=self.read_model.count_jobs(state, request.model),
        )

    @rpc
    def CancelTrainingJob(self, request, context):
        return trainer_pb2.CancelTrainingJobResponse(job=job_message(self.app.cancel_job(request.id, self.meta(context))))

    @rpc
    def ResumeTrainingJob(self, request, context):
        job = self.app.resume_job(request.id, self.meta(context))
        self.enqueue(job)
        return trainer_pb2.ResumeTrainingJobResponse(job=job_message(job))

    @rpc
    def RetryTrainingJob(self, request, context):
        job = self.app.retry_job(request.id, self.meta(context))
        self.enqueue(job)
        return trainer_pb2.RetryTrainingJobResponse(job=job_message(job))

    @rpc
    def GetTrainingDefaults(self, request, context):
        """What `config.resolve` fills in for an empty config, with each field's declared bounds."""
        response = trainer_pb2.GetTrainingDefaultsResponse(
            config=job_config.to_proto(job_config.resolve(trainer_pb2.TrainingConfig())))
        for field in trainer_pb2.TrainingConfig.DESCRIPTOR.fields:
            if field.GetOptions().HasExtension(bounds_pb2.bounds):
                response.limits[field.json_name].CopyFrom(bounds.bounds(field))
        return response

    @rpc
    def GetTrainingMetrics(self, request, context):
        recorder = self.throughput
        now = recorder.clock()
        response = trainer_pb2.GetTrainingMetricsResponse(bucket_seconds=BUCKET_S)
        for b in recorder.window(request.window_minutes or 15):
            bucket = response.buckets.add(trained_tokens=b.tokens, steps=b.steps, running_jobs=b.running_max,
                                          tokens_per_second=b.tokens / Recorder.elapsed(b, now))
            bucket.start_time.FromSeconds(b.start)
        return response

    @rpc_stream
    def WatchTrainingJob(self, request, context) -> Iterator[trainer_pb2.WatchTrainingJobResponse]:
        job = self.app.get_job(request.id)
        yield trainer_pb2.WatchTrainingJobResponse(job=job_message(job))
        with self.feed.follow(job.id) as following:
            version, final, checked = job.version, None, time.monotonic()
            while context.is_active():
                data = following.next(WATCH_POLL_SECONDS)
                if data is None and final is not None:
                    break  # the job has ended and its progress is drained
                if data is not None:
                    progress = json_format.Parse(data, trainer_pb2.TrainingProgress())
                    yield trainer_pb2.WatchTrainingJobResponse(progress=progress)
                if final is None and (data is None or time.monotonic() - checked >= WATCH_POLL_SECONDS):
                    checked = time.monotonic()
                    current = self.app.get_job(job.id)
                    if current.state in TERMINAL:
                        final = current
                    elif current.version != version:
                        version = current.version
                        yield trainer_pb2.WatchTrainingJobResponse(job=job_message(current))
        if final is not None:
            yield trainer_pb2.WatchTrainingJobResponse(job=job_message(final))
