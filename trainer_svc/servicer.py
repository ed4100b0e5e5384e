"""gRPC adapter: proto requests in, application commands and queries, proto responses
out; HubErrors become rich statuses. WatchTrainingJob reads the job's progress
stream from its start (replay), follows it live, and ends with the final job; all
watchers share the process's one NATS connection (`watch.ProgressFeed`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from google.protobuf import json_format

from mlxhub import audit, bounds, paging
from mlxhub.config import Settings
from mlxhub.errors import handlers
from mlxhub.v1 import bounds_pb2, trainer_pb2, trainer_pb2_grpc
from trainer_svc.application import TrainerApplication
from trainer_svc.config import TrainingConfig
from trainer_svc.domain import TERMINAL
from trainer_svc.messages import config_from_proto, config_to_proto, job_message
from trainer_svc.read_model import TrainerReadModel
from trainer_svc.throughput import BUCKET_S, Recorder
from trainer_svc.watch import ProgressFeed

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
WATCH_POLL_SECONDS = 0.5


rpc, rpc_stream = handlers("trainer")


def forwarded(context) -> list[tuple[str, str]]:
    """The caller's authorization, passed on to the registry so it decides with the caller's rights."""
    return [(k, v) for k, v in context.invocation_metadata() or () if k == "authorization"]


class TrainerServicer(trainer_pb2_grpc.TrainerServiceServicer):
    def __init__(self, app: TrainerApplication, read_model: TrainerReadModel, settings: Settings,
                 throughput: Recorder | None = None) -> None:
        self.app, self.read_model, self.settings = app, read_model, settings
        self.throughput = throughput or Recorder()  # fed by the server's ThroughputFeed
        self.feed = ProgressFeed(settings)  # one NATS connection for all of this process's watchers

    def close(self) -> None:
        self.feed.close()

    @rpc
    def CreateTrainingJob(self, request, context):
        job = self.app.create_job(
            audit.principal(), request.idempotency_key, request.model, request.dataset,
            config_from_proto(request.config), output_model=request.output_model, credentials=forwarded(context),
        )
        return trainer_pb2.CreateTrainingJobResponse(job=job_message(job))

    @rpc
    def GetTrainingJob(self, request, context):
        return trainer_pb2.GetTrainingJobResponse(job=job_message(self.app.get_job(request.id)))

    @rpc
    def ListTrainingJobs(self, request, context):
        size = paging.page_size(request.page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        before = None
        if request.page_token:
            try:
                before = int(paging.decode_token(request.page_token, required=("before",))["before"])
            except (ValueError, TypeError):
                raise paging.invalid_token() from None
        state = ""
        if request.state:
            state = trainer_pb2.TrainingJobState.Name(request.state).removeprefix("TRAINING_JOB_STATE_")
        rows = self.read_model.list_jobs(state, request.model, before, size)
        token = ""
        if len(rows) == size:
            token = paging.encode_token({"before": rows[-1]["position"]})
        return trainer_pb2.ListTrainingJobsResponse(
            jobs=[job_message(self.read_model.job_of(row) or self.app.get_job(row["id"])) for row in rows],
            next_page_token=token,
            total_size=self.read_model.count_jobs(state, request.model),
        )

    @rpc
    def CancelTrainingJob(self, request, context):
        return trainer_pb2.CancelTrainingJobResponse(job=job_message(self.app.cancel_job(request.id)))

    @rpc
    def ResumeTrainingJob(self, request, context):
        return trainer_pb2.ResumeTrainingJobResponse(job=job_message(self.app.resume_job(request.id)))

    @rpc
    def RetryTrainingJob(self, request, context):
        return trainer_pb2.RetryTrainingJobResponse(job=job_message(self.app.retry_job(request.id, audit.principal())))

    @rpc
    def GetTrainingDefaults(self, request, context):
        """What a job that gives no config gets, with each field's declared bounds."""
        response = trainer_pb2.GetTrainingDefaultsResponse(config=config_to_proto(TrainingConfig()))
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
