"""The registry's global event log as the API shows it: `mlxhub.v1.Event`
messages, filters, and the NATS subject of each event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from mlxhub.errors import InvalidArgument
from mlxhub.names import name_problem
from mlxhub.v1 import common_pb2, registry_pb2
from registry_svc.domain import AGGREGATE_TYPES, aggregate_label, dataset_id, model_id

# Attributes that every event has; the rest of an event's attributes are its data.
ENVELOPE = {"originator_id", "originator_version", "timestamp", "meta", "originator_topic"}
AGGREGATE_IDS = {"model": model_id, "dataset": dataset_id}
# How long past end_time a following ReadEvents waits for late events: an event's time is taken
# before its commit (and on another replica's clock), so events arrive slightly out of time order.
END_TIME_SLACK = timedelta(seconds=60)

EVENT_CLASSES: dict[str, tuple[str, type]] = {}
for _type_name, _aggregate in AGGREGATE_TYPES.items():
    for _attr in vars(_aggregate).values():
        if isinstance(_attr, type) and issubclass(_attr, _aggregate.Event) and _attr.__name__ != "Event":
            EVENT_CLASSES[_attr.__name__] = (_type_name, _attr)


def aggregate_type_of(domain_event: Any) -> str:
    return type(domain_event).__qualname__.split(".")[0]


def json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class NameBook:
    """Aggregate names by id, learnt from creation events (names never change)."""

    def __init__(self, app) -> None:
        self.app = app
        self.names: dict[UUID, str] = {}

    def name_of(self, domain_event: Any) -> str:
        name = getattr(domain_event, "name", None)
        if name is None:
            name = self.names.get(domain_event.originator_id)
        if name is None:
            name = self.app.repository.get(domain_event.originator_id, version=1).name
        self.names[domain_event.originator_id] = name
        return name


def to_proto(domain_event: Any, position: int, names: NameBook) -> registry_pb2.Event:
    aggregate_type = aggregate_type_of(domain_event)
    data = struct_pb2.Struct()
    data.update(json_safe({k: v for k, v in vars(domain_event).items() if k not in ENVELOPE}))
    time = timestamp_pb2.Timestamp()
    time.FromDatetime(domain_event.timestamp)
    meta = getattr(domain_event, "meta", {}) or {}
    return registry_pb2.Event(
        position=position,
        time=time,
        aggregate_type=aggregate_type,
        aggregate=aggregate_label(aggregate_type, names.name_of(domain_event)),
        aggregate_id=str(domain_event.originator_id),
        aggregate_version=domain_event.originator_version,
        type=type(domain_event).__name__,
        data=data,
        metadata=common_pb2.EventMetadata(
            principal=meta.get("principal", ""), request_id=meta.get("request_id", ""), trace_id=meta.get("trace_id", "")
        ),
    )


def subject_of(event: registry_pb2.Event) -> str:
    """NATS subject: one per aggregate type and event type, e.g. mlxhub.events.model.AliasMoved."""
    return f"mlxhub.events.{event.aggregate_type.lower()}.{event.type}"


def payload_of(event: registry_pb2.Event) -> bytes:
    return json_format.MessageToJson(event, indent=None).encode()


class EventFilter:
    """ReadEvents filters, validated; `topics` narrows the query in the database."""

    def __init__(self, request: registry_pb2.ReadEventsRequest) -> None:
        if request.after_position < 0:
            raise InvalidArgument("after_position must be >= 0", field="after_position")
        if request.limit < 0:
            raise InvalidArgument("limit must be >= 0 (0 means no limit)", field="limit")
        unknown_types = sorted(set(request.aggregate_types) - set(AGGREGATE_TYPES))
        if unknown_types:
            raise InvalidArgument(
                f"unknown aggregate types {unknown_types}; use {sorted(AGGREGATE_TYPES)}", field="aggregate_types"
            )
        unknown_events = sorted(set(request.event_types) - set(EVENT_CLASSES))
        if unknown_events:
            raise InvalidArgument(
                f"unknown event types {unknown_events}; use {sorted(EVENT_CLASSES)}", field="event_types"
            )
        self.principal = request.principal
        self.start_time = request.start_time.ToDatetime(tzinfo=UTC) if request.HasField("start_time") else None
        self.end_time = request.end_time.ToDatetime(tzinfo=UTC) if request.HasField("end_time") else None
        if self.start_time and self.end_time and self.start_time >= self.end_time:
            raise InvalidArgument(
                f"start_time ({self.start_time.isoformat()}) must be before end_time ({self.end_time.isoformat()});"
                " the range includes start_time and excludes end_time", field="start_time",
            )
        self.originator_id: UUID | None = None
        if request.aggregate:
            kind, _, name = request.aggregate.partition("/")
            if kind not in AGGREGATE_IDS or name_problem(name):
                raise InvalidArgument(
                    f"aggregate {request.aggregate!r} is not valid; use model/<name> or dataset/<name>", field="aggregate"
                )
            self.originator_id = AGGREGATE_IDS[kind](name)
        classes = [
            cls
            for event_type, (aggregate_type, cls) in EVENT_CLASSES.items()
            if (not request.event_types or event_type in request.event_types)
            and (not request.aggregate_types or aggregate_type in request.aggregate_types)
        ]
        narrowed = bool(request.event_types or request.aggregate_types)
        self.topics: tuple[str, ...] = tuple(get_topic(cls) for cls in classes) if narrowed else ()
        # Filters that no event class satisfies (e.g. a Dataset event type with aggregate type Model)
        # match nothing; the store reads an empty topic list as "no filter", so say so explicitly.
        self.matches_nothing = narrowed and not classes

    def ended(self, now: datetime) -> bool:
        """Whether `now` lies so far past end_time that no event still to come can match."""
        return self.end_time is not None and now >= self.end_time + END_TIME_SLACK

    def matches(self, domain_event: Any) -> bool:
        if self.originator_id is not None and domain_event.originator_id != self.originator_id:
            return False
        if self.principal and (getattr(domain_event, "meta", None) or {}).get("principal") != self.principal:
            return False
        when = domain_event.timestamp
        return (self.start_time is None or when >= self.start_time) and (self.end_time is None or when < self.end_time)
