"""Events replayed per second through ReadEvents (the gRPC stream over the whole
log) against a raw psycopg SELECT of the same rows from the events table: one
event per message (the default) and `batch_size` events per message (the
target: at least 0.25 of the raw SELECT). The batched figure is measured twice: from the
registry in this process (sharing the GIL with the client that reads it) and from a second
replica run as its own process, as a deployment runs it.

Two figures in between say where the time goes: decoding in-process (reading
pages, decoding and encoding each Event as the server does, no gRPC) and the
same stream through the gateway as NDJSON (one event per line, as a client reads the audit
log; target: at least 0.5 of the one-event-per-message gRPC figure). Each round measures every figure
once, in turn; the figures are medians over the rounds."""

from __future__ import annotations

import contextlib
import gc
import logging
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
from psycopg import sql

from bench.harness import EVENTS_TABLE, Stack, service_process
from bench.timing import Stopwatch, clock, latency_ms, per_second, ratio
from mlxhub.embedded import free_port
from mlxhub.stack import grpc_ready
from mlxhub.stored_events import read_rows
from mlxhub.v1 import registry_pb2, registry_pb2_grpc
from registry_svc.domain import Model
from registry_svc.event_log import EventFilter, NameBook, encode_page

log = logging.getLogger(__name__)

SEED_BATCH = 250  # events per save: one transaction each, well under the ~1 MB statement limit
PAGE = 1000
BATCH_SIZE = 500  # events per message of the batched gRPC figure
TARGET_RATIO = 0.25  # batched gRPC replay / raw SELECT
TARGET_GATEWAY_RATIO = 0.5  # gateway NDJSON replay (one event per line) / gRPC ReadEvents (one per message)
FOLLOW_TARGET_P99_MS = 50.0


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


def grpc_batched_replay(stack: Stack, stub: registry_pb2_grpc.RegistryServiceStub | None = None) -> int:
    request = registry_pb2.ReadEventsRequest(batch_size=BATCH_SIZE)
    return sum(len(response.events) for response in (stub or stack.stub).ReadEvents(request))


@contextlib.contextmanager
def own_process_stub(stack: Stack, timeout: float = 180.0) -> Iterator[registry_pb2_grpc.RegistryServiceStub]:
    """A second registry replica on the same database, as its own process (as `mlx-hub up` runs
    it): its ReadEvents does not share this process's GIL with the client that reads it."""
    address = f"127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory(prefix="replay-") as work, \
            service_process(stack, "registry_svc", Path(work) / "registry.log", MLXHUB_REGISTRY_ADDR=address):  # fmt: skip
        ready, deadline = grpc_ready(address, []), clock() + timeout
        while not ready():
            if clock() > deadline:
                raise RuntimeError(f"the registry process is not serving on {address} after {timeout:.0f}s")
            time.sleep(0.2)
        channel = grpc.insecure_channel(address)
        try:
            yield registry_pb2_grpc.RegistryServiceStub(channel)
        finally:
            channel.close()


def raw_select(stack: Stack) -> int:
    query = sql.SQL(
        "SELECT originator_id, originator_version, topic, state, notification_id FROM {} ORDER BY notification_id"
    ).format(sql.Identifier(EVENTS_TABLE))
    with stack.connect() as conn:
        return len(conn.execute(query).fetchall())


def in_process_decode(stack: Stack, names: NameBook) -> int:
    """Read, decode and encode the log as ReadEvents does, with a NameBook kept across rounds as the
    servicer keeps its own (a fresh one would cost each event a name lookup the server does not pay)."""
    app, position, count = stack.registry.app, 0, 0
    everything = EventFilter(registry_pb2.ReadEventsRequest())
    while batch := read_rows(app.recorder, position, PAGE):
        count += len(encode_page(app.mapper, batch, everything, names)[0])
        position = batch[-1][0]
    return count


def gateway_replay(stack: Stack) -> int:
    """NDJSON lines received, counted in the raw bytes: the client frames lines as the gRPC client
    frames messages, without httpx's text decoding and line splitting, which cost this process
    (and so the figure) more per event than the gateway's own work."""
    with httpx.Client(base_url=stack.gateway_url, timeout=120) as http, http.stream("GET", "/v1/events") as response:
        response.raise_for_status()
        return sum(chunk.count(b"\n") for chunk in response.iter_raw())


def settled(stack: Stack, timeout: float = 300.0) -> None:
    """Wait until the registry has published the seeded events to NATS: its publisher runs in this
    process, and while it catches up it takes a share of the CPU from whichever figure runs then."""
    deadline = clock() + timeout
    while (lag := stack.registry.lag()) and clock() < deadline:
        time.sleep(0.1)
    if lag:
        raise AssertionError(f"the registry still has {lag} seeded events to publish after {timeout:.0f}s")


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Move the objects alive now (this process's whole stack: registry, read model, clients) out of
    the collector's sight while the rounds run. Otherwise a full collection, which scans them all,
    lands in some reads and not others: it made a raw SELECT of 6,500 rows 5x slower in one read of
    three, and the floor a coin toss. A service in its own process has no such heap to scan."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def warm_up(stack: Stack) -> None:
    """One short read each way first, so no round pays for the gateway's first upstream connection."""
    sum(1 for _ in stack.stub.ReadEvents(registry_pb2.ReadEventsRequest(limit=1)))
    with httpx.Client(base_url=stack.gateway_url, timeout=120) as http:
        http.get("/v1/events", params={"limit": 1}).raise_for_status()


def follow_latency(stack: Stack, count: int) -> dict[str, Any]:
    """From the start of a CreateModel call to its event arriving on a following ReadEvents stream
    (so an upper bound of commit -> client), `count` times, one create at a time."""
    last = stack.registry.app.recorder.max_notification_id() or 0
    stream = stack.stub.ReadEvents(registry_pb2.ReadEventsRequest(after_position=last, follow=True), timeout=120)
    arrived: dict[str, float] = {}
    each = threading.Condition()

    def read() -> None:
        for response in stream:
            with each:
                arrived[response.event.aggregate] = clock()
                each.notify_all()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    samples = []
    try:
        for i in range(count):
            name = f"follow-{i}"
            key = f"model/{name}"
            started = clock()
            stack.stub.CreateModel(registry_pb2.CreateModelRequest(name=name, base_model="bench"))
            with each:
                if not each.wait_for(lambda key=key: key in arrived, timeout=30):
                    raise AssertionError(f"the event of {name} did not reach the following stream")
                samples.append(arrived[key] - started)
    finally:
        stream.cancel()
        reader.join(5)
    figures = latency_ms(samples)
    log.info("replay: follow latency p50 %.1f ms, p99 %.1f ms", figures["p50_ms"], figures["p99_ms"])
    return {**figures, "samples": count, "target_p99_ms": FOLLOW_TARGET_P99_MS,
            "target_met": figures["p99_ms"] <= FOLLOW_TARGET_P99_MS}


def _median_rates(readers: dict[str, Any], expected: int, rounds: int) -> dict[str, float]:
    """Each reader once per round, in turn (so a slow spell of the machine hits them alike); the
    median rate of each."""
    rates: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(rounds):
        for name, read in readers.items():
            with Stopwatch() as watch:
                count = read()
            if count != expected:
                raise AssertionError(f"{name} read {count} events, the log holds {expected}")
            rates[name].append(per_second(count, watch.seconds))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    for name, rate in medians.items():
        log.info("replay: %s %.0f events/s", name, rate)
    return medians


def measure(stack: Stack, seed_events: int, repeats: int = 3, follows: int = 100) -> dict[str, Any]:
    log.info("replay: seeding %d events", seed_events)
    with Stopwatch() as seeding:
        seed(stack, seed_events)
    log.info("replay: seeded in %.1fs", seeding.seconds)
    settled(stack)
    with stack.connect() as conn:
        total = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(EVENTS_TABLE))).fetchone()[0]
    warm_up(stack)
    names = NameBook(stack.registry.app)
    with own_process_stub(stack) as own_process, frozen_heap():
        grpc_batched_replay(stack, own_process)  # its first read learns the names
        rates = _median_rates({
            "raw SELECT": lambda: raw_select(stack),
            "gRPC ReadEvents": lambda: grpc_replay(stack),
            f"gRPC ReadEvents batch_size={BATCH_SIZE}": lambda: grpc_batched_replay(stack),
            f"gRPC ReadEvents batch_size={BATCH_SIZE}, registry process": lambda: grpc_batched_replay(stack, own_process),
            "in-process decode": lambda: in_process_decode(stack, names),
            "gateway NDJSON": lambda: gateway_replay(stack),
        }, total, repeats)  # fmt: skip
    follow = follow_latency(stack, follows)
    raw, grpc, batched = rates["raw SELECT"], rates["gRPC ReadEvents"], rates[f"gRPC ReadEvents batch_size={BATCH_SIZE}"]
    gateway = rates["gateway NDJSON"]
    own = rates[f"gRPC ReadEvents batch_size={BATCH_SIZE}, registry process"]
    return {
        "events": total,
        "seeded": seed_events,
        "repeats": repeats,
        "grpc_read_events_per_s": round(grpc, 1),
        "raw_select_rows_per_s": round(raw, 1),
        "ratio": round(ratio(grpc, raw), 5),
        "batch_size": BATCH_SIZE,
        "grpc_batched_events_per_s": round(batched, 1),
        "ratio_batched": round(ratio(batched, raw), 5),
        "target_ratio_batched": TARGET_RATIO,
        "target_met": ratio(batched, raw) >= TARGET_RATIO,
        "grpc_batched_registry_process_events_per_s": round(own, 1),
        "ratio_batched_registry_process": round(ratio(own, raw), 5),
        "target_met_registry_process": ratio(own, raw) >= TARGET_RATIO,
        "in_process_decode_events_per_s": round(rates["in-process decode"], 1),
        "gateway_ndjson_events_per_s": round(gateway, 1),
        "ratio_gateway_ndjson": round(ratio(gateway, grpc), 5),
        "target_ratio_gateway_ndjson": TARGET_GATEWAY_RATIO,
        "gateway_target_met": ratio(gateway, grpc) >= TARGET_GATEWAY_RATIO,
        "follow_latency": follow,
    }
