"""Domain events as the hub shows them: the `mlxhub.v1.Event` envelope.

Every service's stored events reach the outside the same way, on NATS (as JSON, by the
`mlxhub.bus.LogPublisher`) and in the registry's ReadEvents: position, time, aggregate, type,
the event's own attributes as `data`, and who caused it. This module is that one mapping, so
that a time or an id reads the same whichever service recorded it and whichever way it is read.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from google.protobuf import struct_pb2

from mlxhub.proto_json import message_to_dict
from mlxhub.timestamps import rfc3339, to_timestamp
from mlxhub.v1 import common_pb2

# Attributes that every stored event has; the rest of an event's attributes are its data.
ENVELOPE = frozenset({"originator_id", "originator_version", "timestamp", "meta", "originator_topic"})
SUBJECT_PREFIX = "mlxhub.events"
_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")


def aggregate_type_of(domain_event: Any) -> str:
    """The aggregate class of an event declared inside it (`Model.Registered` -> "Model")."""
    return type(domain_event).__qualname__.split(".")[0]


def json_scalar(value: Any) -> Any:
    """A value that is not a container as the envelope's data carries it: ids and times as text
    (times in RFC 3339), and a NaN or infinite float as the string protobuf's JSON uses for it
    (a Struct cannot hold those numbers and JSON cannot write them)."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def json_safe(value: Any) -> Any:
    """`value` with every scalar inside it made `json_scalar`, tuples as lists, keys as text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return json_scalar(value)


def event_data(domain_event: Any) -> dict[str, Any]:
    """An event's own attributes (everything but the envelope's), JSON-safe."""
    return json_safe({k: v for k, v in vars(domain_event).items() if k not in ENVELOPE})


def caused_by(domain_event: Any) -> tuple[str, str, str]:
    """Who and why: the (principal, request id, trace id) recorded with an event, "" when unknown."""
    meta = getattr(domain_event, "meta", None) or {}
    return meta.get("principal", ""), meta.get("request_id", ""), meta.get("trace_id", "")


def envelope(domain_event: Any, position: int, aggregate_type: str, aggregate: str) -> common_pb2.Event:
    """The `mlxhub.v1.Event` of a stored event at `position` of its log. `aggregate` names the
    aggregate for people, e.g. "model/<name>" or "training_job/<id>"."""
    data = struct_pb2.Struct()
    data.update(event_data(domain_event))
    principal, request_id, trace_id = caused_by(domain_event)
    return common_pb2.Event(
        position=position,
        time=to_timestamp(domain_event.timestamp),
        aggregate_type=aggregate_type,
        aggregate=aggregate,
        aggregate_id=str(domain_event.originator_id),
        aggregate_version=domain_event.originator_version,
        type=type(domain_event).__name__,
        data=data,
        metadata=common_pb2.EventMetadata(principal=principal, request_id=request_id, trace_id=trace_id),
    )


def subject_of(event: common_pb2.Event) -> str:
    """The NATS subject of an event: one per aggregate type and event type, in snake case, e.g.
    mlxhub.events.model.AliasMoved or mlxhub.events.training_job.Cancelled."""
    return f"{SUBJECT_PREFIX}.{_WORD_START.sub('_', event.aggregate_type).lower()}.{event.type}"


def payload_of(event: common_pb2.Event) -> bytes:
    """The NATS message body of an event: its protobuf JSON (`json_format.MessageToDict`'s, written by
    `mlxhub.proto_json`'s plans, which cost a tenth as much per event) on one line, in UTF-8."""
    return orjson.dumps(message_to_dict(event))


def publication(event: common_pb2.Event) -> tuple[str, bytes]:
    """(subject, body) of an event, as `mlxhub.bus.LogPublisher`'s describe callback returns it."""
    return subject_of(event), payload_of(event)
