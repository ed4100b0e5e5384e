"""The registry's global event log as ReadEvents shows it: stored events (read and decoded by
`mlxhub.stored_events`) written as `mlxhub.v1.Event` (the envelope of `mlxhub.events`, with a byte writer for
replay speed), and the request's filters."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from math import isfinite
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic, resolve_topic
from google.protobuf import empty_pb2

from mlxhub.errors import InvalidArgument
from mlxhub.events import ENVELOPE, aggregate_type_of, envelope, json_scalar
from mlxhub.lru import LruMap
from mlxhub.names import name_problem
from mlxhub.stored_events import Row, decode_states
from mlxhub.timestamps import field_datetime, rfc3339
from mlxhub.v1 import common_pb2, registry_pb2
from registry_svc.domain import AGGREGATE_TYPES, aggregate_label, dataset_id, model_id

AGGREGATE_IDS = {"model": model_id, "dataset": dataset_id}
# How long past end_time a following ReadEvents waits for late events: an event's time is taken
# before its commit (and on another replica's clock), so events arrive slightly out of time order.
END_TIME_SLACK = timedelta(seconds=60)

EVENT_CLASSES: dict[str, tuple[str, type]] = {}
for _type_name, _aggregate in AGGREGATE_TYPES.items():
    for _attr in vars(_aggregate).values():
        if isinstance(_attr, type) and issubclass(_attr, _aggregate.Event) and _attr.__name__ != "Event":
            EVENT_CLASSES[_attr.__name__] = (_type_name, _attr)


CHUNK = 200  # rows decoded and then encoded together (`encode_page`)

# Names (and encoded handles) a NameBook keeps: the aggregates a registry is busy with, not every one
# it has seen (~300 bytes each, per map; 100,000 took ~50 MB); a name not kept is one indexed read of
# its creation event, so this covers a replay's recent aggregates and the models being written.
NAME_BOOK_SIZE = 8192


class NameBook:
    """Aggregate names by id, learnt from creation events (names never change); and, for the byte
    writer, each aggregate's `aggregate` and `aggregate_id` fields, encoded, by id as text."""

    def __init__(self, app) -> None:
        self.app = app
        self.names: LruMap[UUID, str] = LruMap(NAME_BOOK_SIZE)
        # The handles of the aggregates seen last, in two generations of half the book each: a full
        # one becomes the older and is dropped at the next fill, so the bound costs nothing per event.
        self.handles: dict[str, bytes] = {}
        self.older_handles: dict[str, bytes] = {}

    def name_of(self, domain_event: Any) -> str:
        return self._name(domain_event.originator_id, getattr(domain_event, "name", None))

    def _name(self, originator_id: UUID, name: str | None) -> str:
        if name is None:
            name = self.names.get(originator_id)
            if name is not None:
                return name
            name = self.app.repository.get(originator_id, version=1).name
        self.names.put(originator_id, name)
        return name

    def handle(self, originator_id: str, aggregate_type: str, name: str | None) -> bytes:
        """The encoded `aggregate` and `aggregate_id` fields of the aggregate with this id (text);
        `name`: the name its creation event carries, if this is that event (nothing to look up)."""
        handle = self.handles.get(originator_id) or self.older_handles.get(originator_id)
        if handle is None:
            label = aggregate_label(aggregate_type, name or self._name(UUID(originator_id), None))
            handle = _text(b"\x22", label) + _field(b"\x2a", originator_id.encode())
            if len(self.handles) >= NAME_BOOK_SIZE // 2:
                self.older_handles, self.handles = self.handles, {}
            self.handles[originator_id] = handle
        return handle


def to_proto(domain_event: Any, position: int, names: NameBook) -> common_pb2.Event:
    """A registry event's `mlxhub.v1.Event` (the hub's one envelope, named model/<name> or dataset/<name>)."""
    aggregate_type = aggregate_type_of(domain_event)
    return envelope(domain_event, position, aggregate_type, aggregate_label(aggregate_type, names.name_of(domain_event)))


# ----- mlxhub.v1.Event on the wire, built directly ----------------------------------------------
# ReadEvents streams whole logs: building each Event as a message (a Struct filled value by value
# through the library's Python helpers) costs ~10x more than writing its protobuf encoding here.
# `encode_event(e, position, names)` parses to exactly the message that `to_proto` builds.

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DOUBLE = struct.Struct("<d")


def _slow_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64: two's complement in ten bytes
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = tuple(_slow_varint(n) for n in range(1 << 14))  # every length under 16 KiB: one lookup
# The low 14 bits of a larger number, continued: a varint of n >= 2**14 is _LOW[n & 16383] followed by
# the varint of n >> 14 (times and positions in two or three lookups).
_LOW = tuple(bytes((n & 127 | 128, n >> 7 | 128)) for n in range(1 << 14))


def _varint(v: int) -> bytes:
    if 0 <= v < 16384:
        return _SMALL[v]
    if 0 < v < 1 << 28:
        return _LOW[v & 16383] + _SMALL[v >> 14]
    if 0 < v < 1 << 42:  # seconds since 1970 until well after the year 100000
        return _LOW[v & 16383] + _LOW[v >> 14 & 16383] + _SMALL[v >> 28]
    return _slow_varint(v)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes or message)."""
    size = len(payload)
    return tag + (_SMALL[size] if size < 16384 else _slow_varint(size)) + payload


def _text(tag: bytes, value: str) -> bytes:
    """A string field; empty strings are left out, as proto3 serialization does."""
    return _field(tag, value.encode()) if value else b""


_KEYS: dict[str, bytes] = {}  # a Struct entry's key field and value tag by key (keys repeat)
_ENTRIES: dict[tuple[str, str], bytes] = {}  # whole entries of short string values (many repeat)
CACHED_ENTRIES = 8192
CACHED_VALUE_LENGTH = 64


def _value(value: Any) -> bytes:
    """A google.protobuf.Value, as `Struct.update` sets it from the value `mlxhub.events.json_safe`
    makes (the same mapping: ids, times and non-finite floats through `json_scalar`)."""
    kind = type(value)
    if kind is str:
        return _field(b"\x1a", value.encode())
    if value is None:
        return b"\x08\x00"
    if kind is bool:
        return b"\x20\x01" if value else b"\x20\x00"
    if kind is dict:
        return _field(b"\x2a", _struct(value))
    if isinstance(value, str):
        return _field(b"\x1a", value.encode())
    if isinstance(value, bool):
        return b"\x20\x01" if value else b"\x20\x00"
    if kind is float and not isfinite(value):
        return _value(json_scalar(value))
    if isinstance(value, (int, float)):
        return b"\x11" + _DOUBLE.pack(value)
    if isinstance(value, dict):
        return _field(b"\x2a", _struct(value))
    if isinstance(value, (list, tuple)):
        return _field(b"\x32", b"".join([_field(b"\x0a", _value(item)) for item in value]))
    if isinstance(value, (UUID, datetime)):
        return _field(b"\x1a", json_scalar(value).encode())
    raise ValueError(f"cannot put a {type(value).__name__} in a Struct")


_ONE_SECOND = timedelta(seconds=1)
_LAST_SECOND = datetime.max.replace(microsecond=0, tzinfo=UTC)
# The second the last events fell in (a log's events come many to a second): its start and end, and
# the start of the `time` field of a time in it, by the length of its encoded nanoseconds (`_time_heads`).
# Read once and written once per page (a race costs only a miss).
_last_second: tuple[datetime, datetime, tuple[bytes, ...]] = (_EPOCH, _EPOCH, ())
# The last events' `meta` (a copy) and their `metadata` field: the events of one call share it.
_last_metadata: tuple[Any, bytes] = (None, b"\x4a\x00")


def _time_heads(when: datetime) -> tuple[bytes, ...]:
    """The `time` field's tag, length and `seconds` field for a time in `when`'s second, by the length
    of the encoded nanoseconds that follow (0: none, then 2 to 5 bytes, after their tag)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    seconds_field = b"\x08" + _varint(seconds) if seconds else b""
    size = len(seconds_field)
    with_nanos = (b"\x12" + _SMALL[size + 1 + n] + seconds_field + b"\x10" for n in (2, 3, 4, 5))
    return b"\x12" + _SMALL[size] + seconds_field, b"", *with_nanos


def _second(when: datetime) -> tuple[datetime, datetime, tuple[bytes, ...]]:
    """The UTC second `when` falls in, [start, end), and its `_time_heads`."""
    start = when - timedelta(microseconds=when.microsecond)
    end = start + _ONE_SECOND if start < _LAST_SECOND else start  # the last second there is: not kept
    return start, end, _time_heads(when)


def _metadata(meta: Any) -> bytes:
    """The `metadata` field of an event with this `meta`, as `mlxhub.events.caused_by` reads it."""
    meta = meta or {}
    principal, request_id, trace_id = meta.get("principal", ""), meta.get("request_id", ""), meta.get("trace_id", "")
    return _field(b"\x4a", (
        (_field(b"\x0a", principal.encode()) if principal else b"")
        + (_field(b"\x12", request_id.encode()) if request_id else b"")
        + (_field(b"\x1a", trace_id.encode()) if trace_id else b"")
    ))  # fmt: skip


def _entry(key: Any, value: Any) -> bytes:
    """A Struct's map entry (key and Value) framed as its `fields` field, in one join; entries of
    string values of a few dozen characters are kept by key and value (a log repeats them) while
    the cache has room."""
    key_field = _KEYS.get(key)
    if key_field is None:
        key_field = _field(b"\x0a", str(key).encode()) + b"\x12"
        if type(key) is str and len(_KEYS) < CACHED_ENTRIES:
            _KEYS[key] = key_field
    kind = type(value)
    if kind is str:
        tag, payload = b"\x1a", value.encode()
    elif kind is dict:  # a nested Struct (tags, metrics)
        get = _ENTRIES.get
        tag, payload = b"\x2a", b"".join([
            (get((k, v)) or _entry(k, v)) if type(v) is str else _entry(k, v) for k, v in value.items()
        ])  # fmt: skip
    else:
        data = _value(value)
        size = len(data)
        size_field = _SMALL[size] if size < 16384 else _slow_varint(size)
        body = len(key_field) + len(size_field) + size
        return b"".join((b"\x0a", _SMALL[body] if body < 16384 else _slow_varint(body), key_field, size_field, data))
    size = len(payload)
    size_field = _SMALL[size] if size < 16384 else _slow_varint(size)
    value_size = 1 + len(size_field) + size
    value_size_field = _SMALL[value_size] if value_size < 16384 else _slow_varint(value_size)
    body = len(key_field) + len(value_size_field) + value_size
    entry = b"".join((
        b"\x0a", _SMALL[body] if body < 16384 else _slow_varint(body), key_field, value_size_field, tag, size_field, payload
    ))  # fmt: skip
    if kind is str and type(key) is str and len(value) <= CACHED_VALUE_LENGTH and len(_ENTRIES) < CACHED_ENTRIES:
        _ENTRIES[key, value] = entry
    return entry


def _struct(values: dict, skip: frozenset[str] | set[str] = frozenset()) -> bytes:
    """A google.protobuf.Struct's fields (leaving out the keys in `skip`)."""
    get = _ENTRIES.get
    return b"".join([
        (get((key, value)) or _entry(key, value)) if type(value) is str else _entry(key, value)
        for key, value in values.items()
        if key not in skip
    ])  # fmt: skip


_TYPE_FIELDS: dict[type, tuple[str, bytes]] = {}  # event class -> (aggregate type, its type fields)
_TOPIC_FIELDS: dict[str, tuple[str, bytes]] = {}  # the same by stored topic
_TOPICS: dict[type, str] = {}  # event class -> its topic


def _type_fields(cls: type) -> tuple[str, bytes]:
    known = _TYPE_FIELDS.get(cls)
    if known is None:
        aggregate_type = cls.__qualname__.split(".")[0]  # as mlxhub.events.aggregate_type_of says
        known = _TYPE_FIELDS[cls] = (aggregate_type, _text(b"\x1a", aggregate_type) + _text(b"\x3a", cls.__name__))
    return known


def _topic_fields(topic: str) -> tuple[str, bytes]:
    known = _TOPIC_FIELDS[topic] = _type_fields(resolve_topic(topic))
    return known


def encode_event(domain_event: Any, position: int, names: NameBook) -> bytes:
    """The serialized `mlxhub.v1.Event` of a stored event (what `to_proto(...).SerializeToString()`
    parses back to, built without the message objects; fields may come in another order)."""
    cls = type(domain_event)
    topic = _TOPICS.get(cls) or _TOPICS.setdefault(cls, get_topic(cls))
    row = (position, str(domain_event.originator_id), domain_event.originator_version, topic, None)
    return encode_stored_events([row], [vars(domain_event)], names)[0]


def encode_stored(
    position: int, originator_id: str, version: int, topic: str, state: dict[str, Any], names: NameBook
) -> bytes:
    """`encode_event` of the stored event at `position`, from what `mlxhub.stored_events.read_rows`
    and `decode_states` give (the id as text, the event's attributes), with no domain event built."""
    return encode_stored_events([(position, originator_id, version, topic, None)], [state], names)[0]


def encode_stored_events(rows: Sequence[Row], states: Sequence[dict[str, Any]], names: NameBook) -> list[bytes]:
    """`encode_stored` of each row (as `read_rows` gives them: position, id as text, version, topic,
    state) with its attributes (`decode_states`'): a ReadEvents page in one loop, each event's steps
    written inline (its type and aggregate fields, `timestamp`, `meta` as `mlxhub.events.caused_by`
    reads it, the other attributes as `data`), since a call per step cost as much as the steps."""
    global _last_second, _last_metadata
    topic_fields, get_entry, small, low, skip = _TOPIC_FIELDS, _ENTRIES.get, _SMALL, _LOW, ENVELOPE
    handles, older_handles = names.handles, names.older_handles
    second_start, second_end, heads = _last_second
    last_meta, metadata = _last_metadata
    encoded = []
    for (position, originator_id, version, topic, _), attributes in zip(rows, states, strict=True):
        known = topic_fields.get(topic) or _topic_fields(topic)
        handle = handles.get(originator_id) or older_handles.get(originator_id)
        if handle is None:  # a creation event (version 1) names its aggregate itself
            handle = names.handle(originator_id, known[0], attributes.get("name") if version == 1 else None)
            handles, older_handles = names.handles, names.older_handles
        meta = attributes.get("meta")
        if meta != last_meta:
            last_meta, metadata = (dict(meta) if type(meta) is dict else meta), _metadata(meta)
        when = attributes["timestamp"]
        if when.tzinfo is UTC:
            if not second_start <= when < second_end:
                second_start, second_end, heads = _second(when)
            time_heads = heads
        else:  # compared with a UTC second, another zone's time would need its offset: not kept
            time_heads = _time_heads(when)
        nanos = when.microsecond * 1000  # its varint: three pieces of 2, 2 and 1 bytes, or fewer
        if nanos >= 268435456:  # from 0.27 s on, most times
            time_head, nanos_3 = time_heads[5], small[nanos >> 28]
            nanos_1, nanos_2 = low[nanos & 16383], low[nanos >> 14 & 16383]
        elif nanos >= 16384:
            nanos_3 = small[nanos >> 14]
            time_head, nanos_1, nanos_2 = time_heads[2 + len(nanos_3)], low[nanos & 16383], b""
        elif nanos:
            time_head, nanos_1, nanos_2, nanos_3 = time_heads[2], small[nanos], b"", b""
        else:
            time_head, nanos_1, nanos_2, nanos_3 = time_heads[0], b"", b"", b""
        data = b"".join([
            (get_entry((key, value)) or _entry(key, value)) if type(value) is str else _entry(key, value)
            for key, value in attributes.items()
            if key not in skip
        ])  # fmt: skip
        size = len(data)
        encoded.append(b"".join((
            known[1],
            b"\x08" if position else b"",
            small[position] if 0 < position < 16384 else _varint(position) if position else b"",
            time_head, nanos_1, nanos_2, nanos_3,
            handle,
            b"\x30" if version else b"",
            small[version] if 0 < version < 16384 else _varint(version) if version else b"",
            b"\x42", small[size] if size < 16384 else _slow_varint(size), data,
            metadata,
        )))  # fmt: skip
    _last_second = second_start, second_end, heads
    _last_metadata = last_meta, metadata
    return encoded


def encode_page(
    mapper: Any, page: Sequence[Row], selection: EventFilter, names: NameBook, most: int = 0
) -> tuple[list[bytes], bool]:
    """The events of a page of `read_rows` that pass `selection` (the first `most`; 0: all), encoded,
    and whether the page reached the end of a following read (`EventFilter.kept`). Decoded and
    encoded `CHUNK` rows at a time: a chunk's states are written while still in the CPU's caches
    (a page of 1,000 decoded at once cost 8% more)."""
    encoded: list[bytes] = []
    for start in range(0, len(page), CHUNK):
        chunk = page[start : start + CHUNK]
        rows, states, ended = selection.kept(chunk, decode_states(mapper, chunk))
        if most:
            rows, states = rows[: most - len(encoded)], states[: most - len(encoded)]
        encoded += encode_stored_events(rows, states, names)
        if ended or (most and len(encoded) >= most):
            return encoded, ended
    return encoded, False


def encode_response(events: Sequence[bytes], batched: bool) -> bytes:
    """A serialized ReadEventsResponse: one event in `event`, or several in `events`."""
    if not batched:
        return _field(b"\x0a", events[0])
    return b"".join([b"\x12" + (_SMALL[len(e)] if len(e) < 16384 else _slow_varint(len(e))) + e for e in events])


def preserialized(data: bytes) -> empty_pb2.Empty:
    """A serialized message as one that gRPC's serializer (the generated `SerializeToString` of the
    method's response type, which takes any message) writes back byte for byte: an Empty whose
    unknown fields hold the bytes, as protobuf keeps and re-serializes unknown fields unchanged. A
    batch of ReadEvents is then sent as written, not parsed into 500 messages only to be written again."""
    return empty_pb2.Empty.FromString(data)


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
        self.start_time = field_datetime(request, "start_time")
        self.end_time = field_datetime(request, "end_time")
        if self.start_time and self.end_time and self.start_time >= self.end_time:
            raise InvalidArgument(
                f"start_time ({rfc3339(self.start_time)}) must be before end_time ({rfc3339(self.end_time)});"
                " the range includes start_time and excludes end_time", field="start_time",
            )
        self.aggregate_id: str | None = None  # the id, as text
        if request.aggregate:
            kind, _, name = request.aggregate.partition("/")
            if kind not in AGGREGATE_IDS or name_problem(name):
                raise InvalidArgument(
                    f"aggregate {request.aggregate!r} is not valid; use model/<name> or dataset/<name>", field="aggregate"
                )
            self.aggregate_id = str(AGGREGATE_IDS[kind](name))
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
        # Filters the query leaves to Python (each event's id, principal or time): without them, a page passes whole.
        self.per_event = bool(self.aggregate_id is not None or self.principal or self.start_time or self.end_time)

    def ended(self, now: datetime) -> bool:
        """Whether `now` lies so far past end_time that no event still to come can match."""
        return self.end_time is not None and now >= self.end_time + END_TIME_SLACK

    def kept(
        self, rows: Sequence[Row], states: list[dict[str, Any]]
    ) -> tuple[Sequence[Row], list[dict[str, Any]], bool]:
        """The rows of a page (`read_rows`') and their attributes (`decode_states`') that pass the
        filters, and whether the page reached a time so far past end_time that no later event can
        match (then the rows after it are left out and the read ends)."""
        if not self.per_event:
            return rows, states, False
        kept_rows, kept_states = [], []
        for row, attributes in zip(rows, states, strict=True):
            if self.ended(attributes["timestamp"]):
                return kept_rows, kept_states, True
            if self.matches(row[1], attributes):
                kept_rows.append(row)
                kept_states.append(attributes)
        return kept_rows, kept_states, False

    def matches(self, originator_id: str, attributes: dict[str, Any]) -> bool:
        """Whether the event of this aggregate (id as text) with these attributes (`decode_states`')
        passes the filters the query left to Python: aggregate, principal, time range."""
        if self.aggregate_id is not None and originator_id != self.aggregate_id:
            return False
        if self.principal and (attributes.get("meta") or {}).get("principal") != self.principal:
            return False
        when = attributes["timestamp"]
        return (self.start_time is None or when >= self.start_time) and (self.end_time is None or when < self.end_time)
