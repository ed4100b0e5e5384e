"""Times on the wire: `google.protobuf.Timestamp` messages and RFC 3339 text.

Stored times are timezone-aware UTC datetimes; a naive one is read as UTC. Every service turns
them into messages and text here, so that the same moment reads the same everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import timestamp_pb2


def as_utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime (a naive one is taken to be UTC already)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_timestamp(value: datetime | str | None) -> timestamp_pb2.Timestamp | None:
    """The message for a datetime or RFC 3339 text; None stays None (an unset field)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_rfc3339(value)
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def to_datetime(stamp: timestamp_pb2.Timestamp) -> datetime:
    """The aware UTC datetime of a message."""
    return stamp.ToDatetime(tzinfo=UTC)


def field_datetime(message, field: str) -> datetime | None:
    """The datetime of a message's optional Timestamp field, or None when it is not set."""
    return to_datetime(getattr(message, field)) if message.HasField(field) else None


def rfc3339(value: datetime) -> str:
    """RFC 3339 text of a moment, e.g. 2026-01-02T03:04:05.678901+00:00 (a naive value is UTC)."""
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).isoformat()


def parse_rfc3339(text: str) -> datetime:
    """The datetime of RFC 3339 (or ISO 8601) text; raises ValueError for anything else."""
    return datetime.fromisoformat(text)
