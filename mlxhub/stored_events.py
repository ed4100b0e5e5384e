"""A service's stored events read in bulk and decoded fast: what a replay (ReadEvents) and a
read-model rebuild read, the library's own rows and domain events at a fraction of the cost."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import resolve_topic, retry
from psycopg import InterfaceError, OperationalError
from psycopg.rows import namedtuple_row, tuple_row
from psycopg.sql import SQL, Identifier

TRANSCODED = b'"_type_"'
Row = tuple[int, str, int, str, bytes]  # read_rows': position, originator id (text), version, topic, state
READ_PAGE = SQL(
    "SELECT notification_id AS id, originator_id, originator_version, topic, state FROM {}.{}"
    " WHERE notification_id > %s{} ORDER BY notification_id LIMIT %s"
)
# The same rows for a reader that writes the stored state straight out (ReadEvents): plain tuples,
# the id as text (PostgreSQL writes it; an id object would only be turned back into text).
READ_ROWS = SQL(
    "SELECT notification_id, originator_id::text, originator_version, topic, state FROM {}.{}"
    " WHERE notification_id > %s{} ORDER BY notification_id LIMIT %s"
)


@retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
def read_page(recorder: Any, after: int, limit: int, topics: Sequence[str] = ()) -> list[Any]:
    """Stored events after a position, in order, as rows with the attributes of the library's
    notifications (id, originator_id, originator_version, topic, state): its own query, but rows
    built as named tuples instead of dicts and then objects, which costs as much as the read."""
    return _select(recorder, "page", after, limit, topics, namedtuple_row)


@retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
def read_rows(recorder: Any, after: int, limit: int, topics: Sequence[str] = ()) -> list[Row]:
    """`read_page`'s stored events as plain tuples (position, originator id as text, version, topic,
    state), for `decode_states`: a third cheaper to read than named tuples with id objects."""
    return _select(recorder, "rows", after, limit, topics, tuple_row)


_QUERIES = {"page": READ_PAGE, "rows": READ_ROWS}
# Each query as sent, by (query, schema, table, whether it names topics): composed once, not per page.
_STATEMENTS: dict[tuple[str, str, str, bool], bytes] = {}


def _select(recorder: Any, query: str, after: int, limit: int, topics: Sequence[str], row_factory: Any) -> list[Any]:
    datastore = recorder.datastore
    params = (after, list(topics), limit) if topics else (after, limit)
    with datastore.get_connection() as conn:
        key = (query, datastore.schema, recorder.events_table_name, bool(topics))
        statement = _STATEMENTS.get(key)
        if statement is None:
            composed = _QUERIES[query].format(
                Identifier(datastore.schema), Identifier(recorder.events_table_name),
                SQL(" AND topic = ANY(%s)" if topics else ""),
            )  # fmt: skip
            statement = _STATEMENTS[key] = composed.as_bytes(conn)
        # Binary results: the state as its bytes, not hex text that PostgreSQL writes and psycopg decodes.
        with conn.cursor(row_factory=row_factory, binary=True) as curs:
            curs.execute(statement, params, prepare=True)
            return curs.fetchall()


@lru_cache(maxsize=256)
def _event_class(topic: str) -> type:
    return resolve_topic(topic)


def decode_events(mapper: Any, notifications: Sequence[Any]) -> list[Any]:
    """Domain events of stored events, equal to `mapper.to_domain_event`'s but several times as fast:
    the JSON parsed by orjson, then the library's transcodings applied only to the top-level values
    that need them (the times, ids). An event with a transcoded value deeper down, a class version,
    or a cipher or compressor on the mapper goes through the mapper."""
    if mapper.cipher or mapper.compressor:
        return [mapper.to_domain_event(n) for n in notifications]
    events = []
    states, _ = _top_level_decoded(mapper, [n.state for n in notifications])
    for notification, state in zip(notifications, states, strict=True):
        if state is None:
            events.append(mapper.to_domain_event(notification))
            continue
        state["originator_id"] = notification.originator_id
        state["originator_version"] = notification.originator_version
        domain_event = object.__new__(_event_class(notification.topic))
        object.__setattr__(domain_event, "__dict__", state)
        events.append(domain_event)
    return events


def decode_states(mapper: Any, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The attributes of the domain events of `read_rows`' rows, without the events: what
    `decode_events` puts in each event's `__dict__` but for the originator id and version (in the
    row). An event that needs the mapper is decoded by it (its attributes then hold those two too)."""
    if mapper.cipher or mapper.compressor:
        return [vars(mapper.to_domain_event(_stored(row))) for row in rows]
    states, undecoded = _top_level_decoded(mapper, [row[4] for row in rows])
    for i in undecoded:
        states[i] = vars(mapper.to_domain_event(_stored(rows[i])))
    return states  # type: ignore[return-value]  # every None replaced


def _stored(row: Row) -> StoredEvent:
    return StoredEvent(originator_id=UUID(row[1]), originator_version=row[2], topic=row[3], state=row[4])


def _top_level_decoded(mapper: Any, datas: Sequence[bytes]) -> tuple[list[dict[str, Any] | None], list[int]]:
    """Each stored JSON parsed, its top-level transcoded values decoded; None for one that holds a
    transcoded value deeper down (or one the transcoder does not know) or a class version: the
    mapper's work (their indexes: the second list). One loop for a page, with the steps inline (a
    call per step cost as much as the step)."""
    transcodings = mapper.transcoder.names
    decoders: dict[str, Any] = {}  # a transcoding's decode by name, looked up once a page
    parse, refused = orjson.loads, orjson.JSONDecodeError
    states: list[dict[str, Any] | None] = []
    undecoded: list[int] = []
    for data in datas:
        try:
            state = parse(data)
        except refused:
            state = loads(data)
        transcoded = data.count(TRANSCODED)
        converted = 0
        for key, value in state.items():
            if converted == transcoded:
                break
            if type(value) is dict and len(value) == 2 and "_type_" in value and "_data_" in value:
                kind = value["_type_"]
                decode = decoders.get(kind)
                if decode is None:
                    transcoding = transcodings.get(kind)
                    if transcoding is None:
                        break
                    decode = decoders[kind] = transcoding.decode
                state[key] = decode(value["_data_"])
                converted += 1
        if converted != transcoded or "class_version" in state:
            undecoded.append(len(states))
            state = None
        states.append(state)
    return states, undecoded


def loads(data: bytes) -> Any:
    """JSON as the library's transcoder reads it: orjson, or the json module for what orjson
    refuses (integers beyond 64 bits, NaN and Infinity)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
