"""Events replayed per second through ReadEvents (the gRPC stream over the whole
log) against a raw psycopg SELECT of the same rows from the events table.

Two figures in between say where the time goes: decoding in-process (the
library's recorder + mapper + the proto conversion, no gRPC) and the same
stream through the gateway as NDJSON."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from psycopg import sql

from bench.harness import EVENTS_TABLE, Stack
from bench.timing import Stopwatch, per_second, ratio
from mlxhub.v1 import registry_pb2
from registry_svc.domain import Model
from registry_svc.event_log import NameBook, to_proto

log = logging.getLogger(__name__)

SEED_BATCH = 250  # events per save: one transaction each, well under the ~1 MB statement limit
PAGE = 500


def seed(stack: Stack, count: int) -> None:
    """Record `count` ModelRegistered events cheaply: the application directly, many aggregates per save."""
    app = stack.registry.app
    meta = {"principal": "bench", "request_id": "seed", "trace_id": ""}
    for start in range(0, count, SEED_BATCH):
        batch = [
            Model(
                name=f"seed-{i}", base_model="bench", description="", tags={"i": str(i)}, idempotency_key="", meta=meta
            )
            for i in range(start, min(start + SEED_BATCH, count))
        ]
        app.save(*batch)


def grpc_replay(stack: Stack) -> int:
    return sum(1 for _ in stack.stub.ReadEvents(registry_pb2.ReadEventsRequest()))


def raw_select(stack: Stack) -> int:
    query = sql.SQL(
        "SELECT originator_id, originator_version, topic, state, notification_id FROM {} ORDER BY notification_id"
    ).format(sql.Identifier(EVENTS_TABLE))
    with stack.connect() as conn:
        return len(conn.execute(query).fetchall())


def in_process_decode(stack: Stack) -> int:
    app, names, position, count = stack.registry.app, NameBook(stack.registry.app), 0, 0
    while batch := app.recorder.select_notifications(position, PAGE, None, (), inclusive_of_start=False):
        for notification in batch:
            to_proto(app.mapper.to_domain_event(notification), notification.id, names)
            count += 1
        position = batch[-1].id
    return count


def gateway_replay(stack: Stack) -> int:
    with httpx.Client(base_url=stack.gateway_url, timeout=120) as http, http.stream("GET", "/v1/events") as response:
        response.raise_for_status()
        return sum(1 for line in response.iter_lines() if line)


def _best_rate(name: str, read, expected: int, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        with Stopwatch() as watch:
            count = read()
        if count != expected:
            raise AssertionError(f"{name} read {count} events, the log holds {expected}")
        best = max(best, per_second(count, watch.seconds))
    log.info("replay: %s %.0f events/s", name, best)
    return best


def measure(stack: Stack, seed_events: int, repeats: int = 3) -> dict[str, Any]:
    log.info("replay: seeding %d events", seed_events)
    with Stopwatch() as seeding:
        seed(stack, seed_events)
    log.info("replay: seeded in %.1fs", seeding.seconds)
    with stack.connect() as conn:
        total = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(EVENTS_TABLE))).fetchone()[0]
    raw = _best_rate("raw SELECT", lambda: raw_select(stack), total, repeats)
    grpc = _best_rate("gRPC ReadEvents", lambda: grpc_replay(stack), total, repeats)
    decoded = _best_rate("in-process decode", lambda: in_process_decode(stack), total, repeats)
    gateway = _best_rate("gateway NDJSON", lambda: gateway_replay(stack), total, repeats)
    return {
        "events": total,
        "seeded": seed_events,
        "repeats": repeats,
        "grpc_read_events_per_s": round(grpc, 1),
        "raw_select_rows_per_s": round(raw, 1),
        "ratio": round(ratio(grpc, raw), 5),
        "in_process_decode_events_per_s": round(decoded, 1),
        "gateway_ndjson_events_per_s": round(gateway, 1),
    }
