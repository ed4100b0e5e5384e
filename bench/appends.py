"""Events appended per second through the registry's gRPC API (CreateModel: one
ModelRegistered event each, answered once the read model has it) against raw psycopg
single-row INSERT + COMMIT into a table shaped like the events table, with rows of
the same size, same database; and CreateModel from 8 concurrent clients against one.

The registry runs as its own process (`python -m registry_svc`, as `mlx-hub up` runs it) on a
PostgreSQL and NATS of its own: in the bench's process it would share one GIL with the clients'
threads, which no deployment does (8 client threads then hold the GIL as long as the server does).

Targets: sequential CreateModel at least 0.25 of the raw floor, and 8 clients at
least twice the sequential rate (their appends are committed together). Beside them, a gRPC
health check through the same server and interceptors, which does no work, against the same raw
floor: what any call costs, and with one insert and commit added, the ceiling of the sequential ratio.
And the registry's own recorder appending one event at a time to a table of its own, with nothing
but the log's order guarantee (the table lock that keeps positions gap-free, the NOTIFY, the commit):
no application, no read model, no call. A health check plus that append is the least a create can
cost while the log keeps its guarantees, and gives a second, tighter ceiling."""

from __future__ import annotations

import contextlib
import logging
import statistics
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg import sql

from bench.harness import EVENTS_TABLE, backing, service_process
from bench.timing import Stopwatch, per_second, ratio, run_together
from mlxhub.config import Settings
from mlxhub.eventstore import HubApplicationRecorder, connect, postgres_env
from mlxhub.v1 import registry_pb2, registry_pb2_grpc

log = logging.getLogger(__name__)

CLIENTS = 8  # concurrent CreateModel clients of the figure compared with one client
TARGET_RATIO_SEQUENTIAL = 0.25
TARGET_CLIENTS_OVER_SEQUENTIAL = 2.0

RAW_TABLE = "bench_raw_events"
APPEND_ALONE_TABLE = "bench_appended_alone"  # the registry's recorder appends here, outside its log
RAW_DDL = (
    "CREATE TABLE {table} (originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text,"
    " state bytea, notification_id bigserial, PRIMARY KEY (originator_id, originator_version));"
    " CREATE UNIQUE INDEX ON {table} (notification_id)"
)


class Registry(Protocol):
    """What the figures need of the registry under test: its API, its health check and its database."""

    settings: Settings
    stub: registry_pb2_grpc.RegistryServiceStub
    health: health_pb2_grpc.HealthStub

    def connect(self, **kwargs: Any) -> psycopg.Connection: ...


@dataclass
class RegistryProcess:
    settings: Settings
    stub: registry_pb2_grpc.RegistryServiceStub
    health: health_pb2_grpc.HealthStub

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        return connect(self.settings, **kwargs)


@contextlib.contextmanager
def registry_process() -> Iterator[RegistryProcess]:
    """A registry as its own process, leading on a PostgreSQL and NATS of its own (stopped at exit)."""
    with backing() as base, tempfile.TemporaryDirectory(prefix="appends-") as work, \
            service_process(base, "registry_svc", Path(work) / "registry.log"):  # fmt: skip
        channel = grpc.insecure_channel(base.settings.address("registry"))
        try:
            yield RegistryProcess(base.settings, registry_pb2_grpc.RegistryServiceStub(channel),
                                  health_pb2_grpc.HealthStub(channel))
        finally:
            channel.close()


def measure_registry_process(events: int, threads: int = 4, rounds: int = 9) -> dict[str, Any]:
    """`measure` against a registry run as its own process (`registry_process`)."""
    with registry_process() as registry:
        return {**measure(registry, events, threads, rounds), "registry": "own process"}


def _split(count: int, parts: int) -> list[range]:
    size, extra = divmod(count, parts)
    bounds, start = [], 0
    for i in range(parts):
        end = start + size + (i < extra)
        bounds.append(range(start, end))
        start = end
    return bounds


def _event_count(stack: Registry) -> int:
    with stack.connect() as conn:
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(EVENTS_TABLE))).fetchone()[0]


def health_checks(stack: Registry, count: int) -> None:
    """A call through the same channel, server and interceptors that does no work: the floor of any
    call, which CreateModel pays before its append (itself at least one insert and commit)."""
    request = health_pb2.HealthCheckRequest()
    for _ in range(count):
        stack.health.Check(request)


def grpc_creates(stack: Registry, names: range, prefix: str) -> None:
    for i in names:
        stack.stub.CreateModel(registry_pb2.CreateModelRequest(name=f"{prefix}-{i}", base_model="bench"))


def _sample_row(stack: Registry) -> tuple[str, bytes]:
    """Topic and a stored state of a real ModelRegistered event, to size the raw rows alike."""
    with stack.connect() as conn:
        topic, state = conn.execute(
            sql.SQL("SELECT topic, state FROM {} ORDER BY notification_id DESC LIMIT 1").format(
                sql.Identifier(EVENTS_TABLE)
            )
        ).fetchone()
    return topic, bytes(state)


@contextlib.contextmanager
def recorder_alone(settings: Settings) -> Iterator[HubApplicationRecorder]:
    """The registry's recorder class on a table of its own in the registry's database: the same
    append statement and commit, with no application, read model or call around it."""
    env = postgres_env(settings)
    datastore = PostgresDatastore(env["POSTGRES_DBNAME"], env["POSTGRES_HOST"], env["POSTGRES_PORT"],
                                  env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], schema=env["POSTGRES_SCHEMA"],
                                  pool_size=2)  # creating the table holds one connection and uses another
    try:
        recorder = HubApplicationRecorder(datastore, events_table_name=APPEND_ALONE_TABLE)
        recorder.create_table()
        yield recorder
    finally:
        datastore.close()


def appends_alone(recorder: HubApplicationRecorder, count: int, topic: str, state: bytes) -> None:
    """`count` appends of one event each, each its own transaction, as a sequential create's append."""
    for _ in range(count):
        recorder.insert_events([StoredEvent(uuid.uuid4(), 1, topic, state)])


def raw_inserts(conn: psycopg.Connection, count: int, topic: str, state: bytes) -> None:
    """`count` single-row INSERTs, each in its own transaction (COMMIT after every row)."""
    insert = sql.SQL("INSERT INTO {} (originator_id, originator_version, topic, state) VALUES (%s, 1, %s, %s)").format(
        sql.Identifier(RAW_TABLE)
    )
    for _ in range(count):
        conn.execute(insert, (uuid.uuid4(), topic, state))
        conn.commit()


def _chunks(count: int, rounds: int) -> list[int]:
    return [len(part) for part in _split(count, rounds) if len(part)]


def _round_ratios(rounds: list[dict[str, float]], sizes: list[int], over: str, under: str) -> list[float]:
    """Each round's rate of one figure over another's, both taken in that round."""
    return [
        round(ratio(per_second(size, r[over]), per_second(size, r[under])), 5)
        for r, size in zip(rounds, sizes, strict=True)
    ]


def measure(stack: Registry, events: int, threads: int = 4, rounds: int = 9) -> dict[str, Any]:
    """The figures are taken in alternating rounds, so that drift in the machine's fsync latency
    (shared disks vary a lot) hits the API and its baseline alike; the ratios are the medians of
    each round's ratio, the rates those of all rounds together."""
    stack.stub.CreateModel(registry_pb2.CreateModelRequest(name="warmup", base_model="bench"))
    topic, state = _sample_row(stack)
    with stack.connect(autocommit=True) as conn:
        conn.execute(sql.SQL(RAW_DDL).format(table=sql.Identifier(RAW_TABLE)))
    conns = [stack.connect() for _ in range(threads)]  # opened up front, like the registry's pool
    before = _event_count(stack)
    figures = ("grpc", "grpc_concurrent", "raw", "raw_concurrent", "grpc_clients", "health_check", "append_alone")
    seconds = dict.fromkeys(figures, 0.0)
    per_round: list[dict[str, float]] = []
    chunks = _chunks(events, rounds)
    log.info(
        "appends: %d events per figure in %d rounds; raw rows carry %d-byte states", events, len(chunks), len(state)
    )
    with recorder_alone(stack.settings) as recorder:
        for r, size in enumerate(chunks):
            before_round = dict(seconds)
            with Stopwatch() as watch:
                grpc_creates(stack, range(size), f"seq{r}")
            seconds["grpc"] += watch.seconds
            with Stopwatch() as watch:
                raw_inserts(conns[0], size, topic, state)
            seconds["raw"] += watch.seconds
            with Stopwatch() as watch:
                health_checks(stack, size)
            seconds["health_check"] += watch.seconds
            with Stopwatch() as watch:
                appends_alone(recorder, size, topic, state)
            seconds["append_alone"] += watch.seconds
            parts = [part for part in _split(size, threads) if len(part)]
            seconds["grpc_concurrent"] += run_together(
                [lambda part=part, r=r: grpc_creates(stack, part, f"par{r}") for part in parts]
            )
            seconds["raw_concurrent"] += run_together(
                [
                    lambda part=part, conn=conn: raw_inserts(conn, len(part), topic, state)
                    for part, conn in zip(parts, conns)
                ]
            )
            seconds["grpc_clients"] += run_together(
                [lambda part=part, r=r: grpc_creates(stack, part, f"cli{r}") for part in _split(size, CLIENTS) if len(part)]
            )
            per_round.append({name: seconds[name] - before_round[name] for name in figures})
            log.info("appends: round %d/%d done", r + 1, len(chunks))
    for conn in conns:
        conn.close()
    appended = _event_count(stack) - before
    if appended != 3 * events:
        raise AssertionError(f"expected {3 * events} new events, the log grew by {appended}")

    rates = {name: per_second(events, spent) for name, spent in seconds.items()}
    round_ratios = {
        "sequential": _round_ratios(per_round, chunks, "grpc", "raw"),
        "concurrent": _round_ratios(per_round, chunks, "grpc_concurrent", "raw_concurrent"),
        "clients_over_sequential": _round_ratios(per_round, chunks, "grpc_clients", "grpc"),
        "health_check_over_raw": _round_ratios(per_round, chunks, "health_check", "raw"),
        "append_alone_over_raw": _round_ratios(per_round, chunks, "append_alone", "raw"),
    }
    sequential, concurrent, clients, health_check, append_alone = (
        statistics.median(round_ratios[name]) for name in round_ratios
    )
    # The most CreateModel could reach, as a ratio of the raw floor, if the call cost no more than a health
    # check and the append no more than one raw insert and commit: 1 / (1/health_check + 1); and if the
    # append cost no more than the recorder's alone, with the log's guarantees: 1 / (1/health_check + 1/append_alone)
    ceiling = 1 / (1 / health_check + 1)
    ceiling_with_append = 1 / (1 / health_check + 1 / append_alone)
    return {
        "events": events,
        "threads": threads,
        "rounds": len(chunks),
        "state_bytes": len(state),
        "grpc_sequential_events_per_s": round(rates["grpc"], 2),
        "grpc_concurrent_events_per_s": round(rates["grpc_concurrent"], 2),
        "raw_insert_commit_per_s": round(rates["raw"], 2),
        "raw_concurrent_insert_commit_per_s": round(rates["raw_concurrent"], 2),
        "ratio_sequential": round(sequential, 5),
        "ratio_concurrent": round(concurrent, 5),
        "clients": CLIENTS,
        "grpc_clients_events_per_s": round(rates["grpc_clients"], 2),
        "ratio_clients_over_sequential": round(clients, 5),
        "grpc_health_check_per_s": round(rates["health_check"], 2),
        "ratio_health_check_over_raw": round(health_check, 5),
        "ratio_sequential_ceiling": round(ceiling, 5),
        "append_alone_per_s": round(rates["append_alone"], 2),
        "ratio_append_alone_over_raw": round(append_alone, 5),
        "ratio_sequential_ceiling_with_append": round(ceiling_with_append, 5),
        "round_ratios": round_ratios,  # the ratios above are their medians
        "target_ratio_sequential": TARGET_RATIO_SEQUENTIAL,
        "target_ratio_clients_over_sequential": TARGET_CLIENTS_OVER_SEQUENTIAL,
        "target_met": sequential >= TARGET_RATIO_SEQUENTIAL and clients >= TARGET_CLIENTS_OVER_SEQUENTIAL,
    }
