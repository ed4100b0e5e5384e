"""The trainer's JetStream plumbing: a work-queue stream per hub (schema) that workers
pull jobs from, and a limits stream holding every job's progress and heartbeats so
WatchTrainingJob can replay them. Two hubs sharing one NATS never see each other's
work items."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from uuid import UUID

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy, RetentionPolicy, StreamConfig
from opentelemetry import propagate

from mlxhub.bus import ensure_stream
from mlxhub.config import Settings

PROGRESS_STREAM = "MLXHUB_JOBS"
PROGRESS_SUBJECTS = ["mlxhub.jobs.>"]
PROGRESS_MAX_AGE = 7 * 24 * 3600.0
DUPLICATE_WINDOW = 3600.0


def progress_subject(job: UUID | str) -> str:
    return f"mlxhub.jobs.{job}.progress"


def heartbeat_subject(job: UUID | str) -> str:
    return f"mlxhub.jobs.{job}.heartbeat"


@dataclass(frozen=True)
class QueueNames:
    stream: str
    subject: str
    consumer: str

    @classmethod
    def of(cls, settings: Settings) -> QueueNames:
        token = "".join(c if c.isalnum() or c in "_-" else "_" for c in settings.database_schema)
        return cls(stream=f"MLXHUB_TRAINING_{token}", subject=f"mlxhub.training.{token}.queue", consumer="workers")


async def ensure_streams(js, names: QueueNames, ack_wait: float | None = None) -> None:
    """Create (or update) both streams and, given `ack_wait`, the shared durable worker consumer."""
    configs = [
        StreamConfig(name=names.stream, subjects=[names.subject], retention=RetentionPolicy.WORK_QUEUE,
                     duplicate_window=DUPLICATE_WINDOW),
        StreamConfig(name=PROGRESS_STREAM, subjects=PROGRESS_SUBJECTS, max_age=PROGRESS_MAX_AGE),
    ]
    for config in configs:
        await ensure_stream(js, config)
    if ack_wait is not None:
        await js.add_consumer(names.stream, ConsumerConfig(
            durable_name=names.consumer, ack_wait=ack_wait, max_deliver=-1, deliver_policy=DeliverPolicy.ALL,
            max_ack_pending=-1,
        ))


def work_item(job: UUID | str, queue_seq: int) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"job": str(job), "queue_seq": queue_seq}).encode()
    return body, {"Nats-Msg-Id": f"{job}:{queue_seq}"}


def enqueue(settings: Settings, job: UUID | str, queue_seq: int) -> None:
    """Put a job's current work item on the queue (deduplicated by `<job>:<seq>`)."""

    async def publish() -> None:
        connection = await nats.connect(settings.nats_url, connect_timeout=2, allow_reconnect=False)
        try:
            js = connection.jetstream(timeout=5)
            names = QueueNames.of(settings)
            await ensure_streams(js, names)
            body, headers = work_item(job, queue_seq)
            propagate.inject(headers)  # the worker's training span joins the caller's trace
            await js.publish(names.subject, body, headers=headers)
        finally:
            await connection.close()

    asyncio.run(publish())
