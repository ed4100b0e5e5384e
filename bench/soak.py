"""`python -m bench.soak [--minutes 10] [--rate 100] [--streams 8]`: the whole stack under a steady
mixed load for a while, then a check that nothing was lost and nothing grew.

PostgreSQL and NATS embedded; the registry, the inference service (on the demo model, SmolLM2-135M,
or with `--tiny-model` on bench.tiny_model's random llama) and a gateway each as their own process,
as `mlx-hub up` runs them; everything on loopback. This process is only the client: an open-loop
scheduler sends `--rate` registry requests per second through the gateway's HTTP/JSON API (creates,
versions, alias moves, updates, datasets, gets, lists, ReadEvents pages; each request starts on its
schedule whether or not earlier ones have answered), while `--streams` OpenAI chat completions
stream at once (`stream=true`, short `max_tokens`, each re-issued as it finishes).

Each process's resident memory is read once before the warm-up (raw start, reported), then, after
the warm-up (at least `--warmup-s`, default 3 minutes, and until every stream has finished a
generation), as the start the growth is judged from (the median of seven readings 2 s apart, with
CPU time); the load runs for `--minutes` (memory read ten times along the way, to show whether it
levels off); memory and CPU are read again as the end. Then every write the gateway acknowledged (it sent
each with its own X-Request-Id) must be in ReadEvents from position 0, as the event it should have
recorded, on its aggregate.

One JSON document on stdout (logs on stderr): per route count, errors (and the first few error
bodies), p50/p99 latency; generation streams completed, tokens and errors; memory per process at
start and end, and CPU per process; the replay check; each figure beside its target and a top-level
`"met"`. The exit status is 0 whatever the figures (it is a report); only a stack that does not
start fails it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import platform
import random
import signal
import statistics
import sys
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from json import dumps
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import grpc
import httptools
import httpx
import psutil
import uvloop

from bench import harness
from bench.__main__ import stdout_for_json_only
from bench.inference import PROMPTS, SERVICE_ENV
from bench.timing import Stopwatch, clock, latency_ms, percentile
from mlxhub.v1 import registry_pb2, registry_pb2_grpc

log = logging.getLogger("bench.soak")

# Share of the registry requests per route (percent).
ROUTE_WEIGHTS = {
    "get_model": 24, "list_models": 10, "list_versions": 14, "read_events": 6,
    "create_model": 8, "create_version": 14, "set_alias": 10, "update_model": 10, "register_dataset": 4,
}  # fmt: skip
# The event each acknowledged write must have recorded.
WRITE_EVENTS = {"create_model": "ModelRegistered", "create_version": "ModelVersionCreated",
                "set_alias": "AliasMoved", "update_model": "ModelUpdated", "register_dataset": "DatasetRegistered"}
ALIAS = "prod"
EVENTS_PAGE = 20  # events per ReadEvents page of the load (limit and batch size)
REPLAY_BATCH = 500  # events per NDJSON line of the replay check
MAX_IN_FLIGHT = 128  # registry requests outstanding at once; past this a scheduled request is skipped (and counted),
# so an overloaded stack shows as a rate short of its target rather than as minutes of queueing
ERROR_BODIES = 3  # error bodies kept per route
TARGET_MEMORY_GROWTH = 1.10  # end RSS / start RSS, per process of the hub
# The default warm-up: long enough for what fills once and then stays (the registry's 64 RPC threads
# and pooled connections, the gateway's route caches of 4096 paths: ~2-3 minutes at 100/s).
WARMUP_S = 180.0
WARMUP_STEP_S = 5.0  # the warm-up goes on in steps of this until every stream has finished a generation,
WARMUP_MAX_S = 300.0  # but no longer than this
STREAM_FINISH_S = 120.0  # after the soak, how long the streams' last generations may take before they are cut
TIMELINE_POINTS = 10  # memory samples during the soak, besides its start and end
# The start's and the end's memory: a median of this many readings, this far apart (at most; a short
# soak reads faster): together three of the services' 10 s between heap trims (mlxhub.memory). The
# inference service's readings swing between 1,000 and 1,370 MB within seconds under the soak's streams;
# a median of 7 readings over 12 s still read 1,205 at one start and 1,343 at its end with no trend between.
WINDOW_SAMPLES, WINDOW_GAP_S = 16, 2.0
TARGET_RATE_SHARE = 0.95  # requests sent / requests the rate asks for
HUB_PROCESSES = ("registry", "inference", "gateway")  # judged on memory; the others are reported
MIB = 1024 * 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the measured load (default 10)")
    parser.add_argument("--rate", type=float, default=100.0, help="registry requests per second (default 100)")
    parser.add_argument("--streams", type=int, default=8, help="generation streams at once (default 8)")
    parser.add_argument("--max-tokens", type=int, default=16, help="max_tokens of each generation (default 16)")
    parser.add_argument("--warmup-s", type=float, default=WARMUP_S,
                        help=f"seconds of the same load before the start's memory is read (default {WARMUP_S:.0f})")
    parser.add_argument("--tiny-model", action="store_true",
                        help="generate with bench.tiny_model's random llama instead of the demo model (for tests)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the request mix")
    args = parser.parse_args(argv)
    for name in ("minutes", "rate", "max_tokens"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be more than 0")
    if args.streams < 0 or args.warmup_s < 0:
        parser.error("--streams and --warmup-s must be 0 or more")
    return args


# -- what the load records --------------------------------------------------------------------------------
@dataclass
class RouteStats:
    count: int = 0
    errors: int = 0
    error_bodies: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)

    def failed(self, body: str) -> None:
        self.errors += 1
        if len(self.error_bodies) < ERROR_BODIES:
            self.error_bodies.append(body[:500])

    def summary(self) -> dict[str, Any]:
        found: dict[str, Any] = {"count": self.count, "errors": self.errors, "target_errors": 0}
        if self.latencies_s:
            latency = latency_ms(self.latencies_s)
            found.update(p50_ms=round(latency["p50_ms"], 2), p99_ms=round(latency["p99_ms"], 2))
        if self.error_bodies:
            found["first_error_bodies"] = self.error_bodies
        return found


@dataclass
class StreamStats:
    completed: int = 0
    tokens: int = 0
    errors: int = 0
    error_bodies: list[str] = field(default_factory=list)
    ttft_s: list[float] = field(default_factory=list)
    duration_s: list[float] = field(default_factory=list)

    def summary(self, seconds: float) -> dict[str, Any]:
        found: dict[str, Any] = {"completed": self.completed, "tokens": self.tokens,
                                 "tokens_per_s": round(self.tokens / seconds, 2) if seconds else 0.0,
                                 "errors": self.errors, "target_errors": 0}
        if self.ttft_s:
            found["ttft_p50_ms"] = round(percentile(self.ttft_s, 50) * 1000, 1)
            found["ttft_p99_ms"] = round(percentile(self.ttft_s, 99) * 1000, 1)
        if self.duration_s:
            found["duration_p50_ms"] = round(percentile(self.duration_s, 50) * 1000, 1)
            found["duration_p99_ms"] = round(percentile(self.duration_s, 99) * 1000, 1)
        if self.error_bodies:
            found["first_error_bodies"] = self.error_bodies
        return found


@dataclass
class Write:
    """A write the gateway acknowledged: the event it must have recorded, where, and with which request id."""

    kind: str
    request_id: str
    aggregate: str
    version: int = 0  # create_version: the version created; set_alias: the version the alias moved to


@dataclass
class TrackedModel:
    name: str
    versions: int = 0
    alias: int = 0  # the version ALIAS points at; 0 when unset
    busy: bool = False  # a write to it is in flight: one at a time per model, as a careful client writes


# -- the load's HTTP client -------------------------------------------------------------------------------
@dataclass
class Answer:
    status: int
    body: bytes


class _Exchange:
    """httptools' callbacks for one response."""

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.complete = False

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        self.complete = True


class KeepAliveHttp:
    """Keep-alive HTTP/1.1 connections to the gateway, responses parsed by httptools (uvicorn's C
    parser). The load's requests go through this rather than httpx: on this machine httpx spends
    ~3.5 ms of CPU per request, more than the gateway itself, and a load generator that outweighs
    what it loads mostly measures itself; this costs ~0.15 ms. (The few long streams use httpx.)"""

    IDLE_S = 2.0  # a connection idle longer is closed, not reused: well inside uvicorn's keep-alive of 5 s

    def __init__(self, base_url: str, timeout: float) -> None:
        url = httpx.URL(base_url)
        self.host, self.port, self.timeout = url.host, url.port, timeout
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self.idle:
            reader, writer, since = self.idle.pop()
            if clock() - since < self.IDLE_S and not reader.at_eof():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      params: dict[str, Any] | None = None, json: Any = None) -> Answer:
        target = f"{path}?{urlencode(params)}" if params else path
        body = b"" if json is None else dumps(json).encode()
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}", "Accept: */*"]
        if json is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        reader, writer = await self.connection()
        try:
            answer, keep = await asyncio.wait_for(
                self.exchange(reader, writer, ("\r\n".join(lines) + "\r\n\r\n").encode() + body), self.timeout)
        except BaseException:
            writer.close()
            raise
        if keep:
            self.idle.append((reader, writer, clock()))
        else:
            writer.close()
        return answer

    @staticmethod
    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[Answer, bool]:
        writer.write(request)
        exchange = _Exchange()
        parser = httptools.HttpResponseParser(exchange)
        while not exchange.complete:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("the gateway closed the connection before it answered")
            parser.feed_data(data)
        return Answer(parser.get_status_code(), b"".join(exchange.body)), parser.should_keep_alive()

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


# -- the load --------------------------------------------------------------------------------------------
class Soak:
    def __init__(self, load: KeepAliveHttp, http: httpx.AsyncClient, artifact_dir: Path, dataset_path: Path,
                 seed: int) -> None:
        self.load = load  # the scheduled requests
        self.http = http  # the replay check's one long read
        self.artifact_dir = str(artifact_dir)
        self.dataset_path = str(dataset_path)
        self.random = random.Random(seed)
        self.ids = itertools.count(1)
        self.models: list[TrackedModel] = []
        self.writes: list[Write] = []
        self.routes: dict[str, RouteStats] = defaultdict(RouteStats)
        self.streams = StreamStats()
        self.in_flight: set[asyncio.Task] = set()
        self.schedule_lag_s: list[float] = []
        self.sent = self.skipped = 0
        self.operations: dict[str, Callable[[], Awaitable[None]]] = {
            "get_model": self.get_model, "list_models": self.list_models, "list_versions": self.list_versions,
            "read_events": self.read_events, "create_model": self.create_model,
            "create_version": self.create_version, "set_alias": self.set_alias,
            "update_model": self.update_model, "register_dataset": self.register_dataset,
        }  # fmt: skip

    def reset(self) -> None:
        """Forget the warm-up's figures (its writes stay: they are checked in the replay too)."""
        self.routes = defaultdict(RouteStats)
        self.streams = StreamStats()
        self.schedule_lag_s = []
        self.sent = self.skipped = 0

    async def call(self, route: str, method: str, path: str, request_id: str | None = None, **kwargs) -> Any:
        """One request; its JSON body when it answered 200 (else None, the error recorded)."""
        stats = self.routes[route]
        stats.count += 1
        headers = {"x-request-id": request_id} if request_id else None
        started = clock()
        try:
            answer = await self.load.request(method, path, headers=headers, **kwargs)
            stats.latencies_s.append(clock() - started)
            if answer.status != 200:
                stats.failed(f"{method} {path}: HTTP {answer.status}: {answer.body.decode(errors='replace')}")
                return None
            if route == "read_events":
                return [json.loads(line) for line in answer.body.splitlines() if line]
            return json.loads(answer.body)
        except (OSError, httptools.HttpParserError, ValueError) as error:
            stats.failed(f"{method} {path}: {type(error).__name__}: {error}")
            return None

    def wrong(self, route: str, what: str, body: Any) -> None:
        self.routes[route].failed(f"{what}: {json.dumps(body)[:400]}")

    def pick(self, eligible: Callable[[TrackedModel], bool] = lambda _: True, tries: int = 8) -> TrackedModel | None:
        """A random known model that `eligible` accepts (a few random tries, then none)."""
        for _ in range(tries if self.models else 0):
            model = self.random.choice(self.models)
            if eligible(model):
                return model
        return None

    # reads
    async def get_model(self) -> None:
        model = self.pick()
        if model is None:
            return await self.create_model()
        body = await self.call("get_model", "GET", f"/v1/models/{model.name}")
        if body is not None and body.get("model", {}).get("name") != model.name:
            self.wrong("get_model", f"GetModel {model.name} answered another model", body)

    async def list_models(self) -> None:
        body = await self.call("list_models", "GET", "/v1/models", params={"pageSize": 50})
        if body is not None and not body.get("models"):
            self.wrong("list_models", "ListModels answered no models", body)

    async def list_versions(self) -> None:
        model = self.pick(lambda m: m.versions > 0)
        if model is None:
            return await self.create_version()
        expected = model.versions
        body = await self.call("list_versions", "GET", f"/v1/models/{model.name}/versions")
        if body is not None and len(body.get("versions", [])) < expected:
            self.wrong("list_versions", f"ListModelVersions {model.name} answered fewer than {expected}", body)

    async def read_events(self) -> None:
        after = self.random.randint(0, max(0, len(self.writes) - EVENTS_PAGE))
        params = {"afterPosition": after, "limit": EVENTS_PAGE, "batchSize": EVENTS_PAGE}
        lines = await self.call("read_events", "GET", "/v1/events", params=params)
        if lines is not None and any("result" not in line for line in lines):
            self.wrong("read_events", "ReadEvents sent an error line", lines)

    # writes
    async def create_model(self) -> None:
        name = f"soak-{next(self.ids)}"
        request_id = f"soak-create-model-{name}"
        body = await self.call("create_model", "POST", "/v1/models", request_id,
                               json={"name": name, "baseModel": "soak", "tags": {"run": "soak"}})
        if body is None:
            return
        if body.get("model", {}).get("name") != name:
            return self.wrong("create_model", f"CreateModel {name} answered another model", body)
        self.writes.append(Write("create_model", request_id, f"model/{name}"))
        self.models.append(TrackedModel(name))

    @contextlib.contextmanager
    def writing(self, model: TrackedModel):
        model.busy = True
        try:
            yield
        finally:
            model.busy = False

    async def create_version(self) -> None:
        model = self.pick(lambda m: not m.busy)
        if model is None:
            return await self.create_model()
        with self.writing(model):
            request_id = f"soak-create-version-{next(self.ids)}"
            body = await self.call("create_version", "POST", f"/v1/models/{model.name}/versions", request_id,
                                   json={"artifactPath": self.artifact_dir, "metrics": {"loss": self.random.random()}})
            if body is None:
                return
            version = int(body.get("version", {}).get("version", 0))
            if version != model.versions + 1:
                return self.wrong("create_version", f"CreateModelVersion {model.name} made not {model.versions + 1}", body)
            model.versions = version
            self.writes.append(Write("create_version", request_id, f"model/{model.name}", version))

    async def set_alias(self) -> None:
        model = self.pick(lambda m: not m.busy and (m.versions > 1 or (m.versions == 1 and m.alias == 0)))
        if model is None:
            return await self.create_version()
        with self.writing(model):
            version = self.random.choice([v for v in range(1, model.versions + 1) if v != model.alias])
            request_id = f"soak-set-alias-{next(self.ids)}"
            body = await self.call("set_alias", "PUT", f"/v1/models/{model.name}/aliases/{ALIAS}", request_id,
                                   json={"version": version})
            if body is None:
                return
            if int(body.get("model", {}).get("aliases", {}).get(ALIAS, 0)) != version:
                return self.wrong("set_alias", f"SetAlias {model.name}@{ALIAS} -> {version} answered", body)
            model.alias = version
            self.writes.append(Write("set_alias", request_id, f"model/{model.name}", version))

    async def update_model(self) -> None:
        model = self.pick(lambda m: not m.busy)
        if model is None:
            return await self.create_model()
        with self.writing(model):
            number = next(self.ids)
            request_id = f"soak-update-model-{number}"
            description = f"soak update {number}"
            body = await self.call("update_model", "PATCH", f"/v1/models/{model.name}", request_id,
                                   json={"description": description})
            if body is None:
                return
            if body.get("model", {}).get("description") != description:
                return self.wrong("update_model", f"UpdateModel {model.name} answered", body)
            self.writes.append(Write("update_model", request_id, f"model/{model.name}"))

    async def register_dataset(self) -> None:
        name = f"soak-data-{next(self.ids)}"
        request_id = f"soak-register-dataset-{name}"
        body = await self.call("register_dataset", "POST", "/v1/datasets", request_id,
                               json={"name": name, "path": self.dataset_path})
        if body is None:
            return
        if body.get("dataset", {}).get("name") != name:
            return self.wrong("register_dataset", f"RegisterDataset {name} answered", body)
        self.writes.append(Write("register_dataset", request_id, f"dataset/{name}"))

    # the scheduler
    async def one(self) -> None:
        route = self.random.choices(list(ROUTE_WEIGHTS), weights=list(ROUTE_WEIGHTS.values()))[0]
        try:
            await self.operations[route]()
        except Exception as error:  # noqa: BLE001  (a bug in reading an answer is an error of the run, not a crash)
            self.routes[route].failed(f"{type(error).__name__}: {error}")

    async def drive(self, seconds: float, rate: float) -> None:
        """Start a request every 1/rate s for `seconds`, each on its schedule (open loop)."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        end = due + seconds
        while due < end:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.schedule_lag_s.append(max(0.0, loop.time() - due))
            if len(self.in_flight) >= MAX_IN_FLIGHT:
                self.skipped += 1
            else:
                task = asyncio.create_task(self.one())
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
                self.sent += 1
            due += 1 / rate

    async def drain(self) -> None:
        while self.in_flight:
            await asyncio.gather(*list(self.in_flight))

    # generation streams
    async def stream(self, http: httpx.AsyncClient, model: str, max_tokens: int, stop: asyncio.Event) -> None:
        """One generation after another, until `stop`."""
        while not stop.is_set():
            number = next(self.ids)
            body = {"model": model, "stream": True, "stream_options": {"include_usage": True}, "temperature": 0,
                    "max_tokens": max_tokens,
                    "messages": [{"role": "user", "content": f"{number}: {PROMPTS[number % len(PROMPTS)]}"}]}
            stats = self.streams  # the warm-up's stream is counted in the warm-up
            started, first, tokens, done, failure = clock(), 0.0, 0, False, ""
            try:
                async with http.stream("POST", "/openai/v1/chat/completions", json=body) as response:
                    if response.status_code != 200:
                        failure = f"HTTP {response.status_code}: {(await response.aread()).decode(errors='replace')}"
                    else:
                        async for line in response.aiter_lines():
                            if not line.startswith("data: "):
                                continue
                            if line == "data: [DONE]":
                                done = True
                                break
                            chunk = json.loads(line[6:])
                            if "error" in chunk:
                                failure = f"error frame: {line}"
                                break
                            if chunk.get("usage"):
                                tokens = int(chunk["usage"]["completion_tokens"])
                            if any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices", [])):
                                first = first or clock()
            except Exception as error:  # noqa: BLE001  (any failure of a stream is an error of the run, not a crash)
                failure = f"{type(error).__name__}: {error}"
            if not failure and not done:
                failure = "the stream ended without data: [DONE]"
            if not failure and tokens < 1:
                failure = "the stream's usage counted no completion tokens"
            if failure:
                stats.errors += 1
                if len(stats.error_bodies) < ERROR_BODIES:
                    stats.error_bodies.append(failure[:500])
                await asyncio.sleep(0.5)  # a failing service is not hammered in a tight loop
                continue
            stats.completed += 1
            stats.tokens += tokens
            stats.duration_s.append(clock() - started)
            if first:
                stats.ttft_s.append(first - started)

    # the replay check
    async def replay(self) -> dict[str, Any]:
        """Every acknowledged write, found in ReadEvents from position 0 as the event it should have recorded."""
        recorded: dict[str, list[dict]] = defaultdict(list)
        count, last, in_order, failures = 0, 0, True, []
        with Stopwatch() as watch:
            async with self.http.stream("GET", "/v1/events", params={"batchSize": REPLAY_BATCH},
                                        timeout=900) as response:
                if response.status_code != 200:
                    failures.append(f"HTTP {response.status_code}: {(await response.aread())[:500]!r}")
                async for line in response.aiter_lines():
                    if not line:
                        continue
                    item = json.loads(line)
                    if "result" not in item:
                        failures.append(line[:500])
                        continue
                    result = item["result"]
                    for event in result.get("events") or ([result["event"]] if "event" in result else []):
                        position = int(event["position"])
                        in_order = in_order and position > last
                        last = position
                        count += 1
                        recorded[event.get("metadata", {}).get("requestId", "")].append(event)
        kinds: dict[str, dict[str, Any]] = {}
        missing: list[dict[str, Any]] = []
        for kind in WRITE_EVENTS:
            writes = [w for w in self.writes if w.kind == kind]
            found = sum(1 for w in writes if any(matches(w, e) for e in recorded.get(w.request_id, [])))
            kinds[kind] = {"writes": len(writes), "replayed": found}
            missing += [{"kind": w.kind, "request_id": w.request_id, "aggregate": w.aggregate}
                        for w in writes if not any(matches(w, e) for e in recorded.get(w.request_id, []))]
        return {"events_read": count, "seconds": round(watch.seconds, 2), "positions_increasing": in_order,
                "writes": len(self.writes), "per_kind": kinds, "missing_count": len(missing),
                "missing": missing[:20], "target_missing": 0, "read_errors": failures[:ERROR_BODIES],
                "met": not missing and not failures and in_order}  # fmt: skip


def matches(write: Write, event: dict[str, Any]) -> bool:
    if event.get("type") != WRITE_EVENTS[write.kind] or event.get("aggregate") != write.aggregate:
        return False
    data = event.get("data", {})
    if write.kind == "create_version":
        return int(data.get("version", 0)) == write.version
    if write.kind == "set_alias":
        return data.get("alias") == ALIAS and int(data.get("version", 0)) == write.version
    return True


# -- memory ------------------------------------------------------------------------------------------------
def processes(base: harness.Backing) -> dict[str, list[psutil.Process]]:
    """The stack's processes by role: this client, the services (by `python -m <package>`), NATS, and
    PostgreSQL (its postmaster and every backend under it, summed)."""
    me = psutil.Process()
    found: dict[str, list[psutil.Process]] = {"soak_client": [me]}
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            command = child.cmdline()
            for role, package in (("registry", "registry_svc"), ("inference", "inference_svc"), ("gateway", "gateway")):
                if command[1:3] == ["-m", package]:
                    found[role] = [child]
            if command and Path(command[0]).name == "nats-server":
                found["nats"] = [child]
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        postmaster = psutil.Process(int((base.root / "pg" / "postmaster.pid").read_text().split()[0]))
        found["postgres"] = [postmaster, *postmaster.children(recursive=True)]
    return found


@dataclass
class Sample:
    """One role's processes at one moment: resident memory (summed), CPU time so far per process, and
    threads and processes (summed): what fills once (an RPC pool's threads, PostgreSQL's backends, one
    per pooled connection) shows beside the memory it takes."""

    rss_mb: float
    cpu_s: dict[int, float]
    at: float = field(default_factory=clock)  # when it was read
    load_1m: float = field(default_factory=lambda: os.getloadavg()[0])  # the machine's load average then
    threads: int = 0
    processes: int = 0


def sample(groups: dict[str, list[psutil.Process]]) -> dict[str, Sample]:
    found = {}
    for role, group in groups.items():
        rss, cpu, threads, alive = 0, {}, 0, 0
        for process in group:
            with contextlib.suppress(psutil.Error), process.oneshot():
                rss += process.memory_info().rss
                times = process.cpu_times()
                cpu[process.pid] = times.user + times.system
                threads += process.num_threads()
                alive += 1
        found[role] = Sample(round(rss / MIB, 1), cpu, threads=threads, processes=alive)
    return found


async def steady_sample(groups: dict[str, list[psutil.Process]], gap_s: float) -> dict[str, Sample]:
    """A role's memory as the median of WINDOW_SAMPLES readings `gap_s` apart (CPU time as of the
    last): a service's resident memory swings with the work in flight (the inference service's by
    ~10% with its batch and between heap trims), and one reading could land on either edge."""
    readings = [sample(groups)]
    for _ in range(WINDOW_SAMPLES - 1):
        await asyncio.sleep(gap_s)
        readings.append(sample(groups))
    last = readings[-1]
    return {role: Sample(statistics.median(reading[role].rss_mb for reading in readings if role in reading),
                         last[role].cpu_s, last[role].at, last[role].load_1m, last[role].threads,
                         last[role].processes) for role in last}


async def sample_every(seconds: float, base: harness.Backing, roles: set[str], into: list[dict[str, Sample]]) -> None:
    """Append a sample of `roles` every `seconds` until cancelled: whether memory levels off or keeps climbing."""
    while True:
        await asyncio.sleep(seconds)
        into.append(sample({role: group for role, group in processes(base).items() if role in roles}))


def _growth(after: float | None, before: float | None) -> float | None:
    return round(after / before, 3) if after and before else None


def memory_report(raw_start: dict[str, Sample], start: dict[str, Sample], end: dict[str, Sample],
                  timeline: list[dict[str, Sample]]) -> dict[str, Any]:
    """Per role: resident memory before the warm-up, at the soak's start (after it) and end, the
    samples between, and growth three ways: end over start (judged), end over before the warm-up
    (what the warm-up added, reported), and the soak's second half alone (end over its middle
    sample: a leak keeps growing there, a warm-up has levelled off)."""
    report: dict[str, Any] = {}
    middle = timeline[len(timeline) // 2]
    for role, before in start.items():
        after = end[role].rss_mb if role in end else None
        growth = _growth(after, before.rss_mb)
        judged = role in HUB_PROCESSES
        raw = raw_start[role].rss_mb if role in raw_start else None
        report[role] = {"raw_start_rss_mb": raw, "start_rss_mb": before.rss_mb, "end_rss_mb": after,
                        "growth": growth, "target_growth": TARGET_MEMORY_GROWTH if judged else None,
                        "growth_from_raw_start": _growth(after, raw),
                        "growth_second_half": _growth(after, middle[role].rss_mb if role in middle else None),
                        "rss_mb_timeline": [point[role].rss_mb for point in timeline if role in point],
                        "threads": {"start": before.threads, "end": end[role].threads if role in end else None},
                        "processes": {"start": before.processes, "end": end[role].processes if role in end else None}}
        if judged:
            report[role]["met"] = growth is not None and growth <= TARGET_MEMORY_GROWTH
    first = next(iter(start.values()))
    report["timeline_s"] = [round(next(iter(point.values())).at - first.at, 1) for point in timeline]
    report["load_average_1m_timeline"] = [round(next(iter(point.values())).load_1m, 2) for point in timeline]
    report["note"] = ("growth (judged, for the hub's processes) is end over start, start being read after the "
                      "warm-up (warmup_s); raw_start is read before it, when the services have just started; "
                      "rss_mb_timeline is read at timeline_s seconds after start; threads and processes are counted at start and "
                      "end (PostgreSQL's processes: one backend per open connection, plus its own). The client, NATS and PostgreSQL "
                      "(postmaster and backends summed, shared buffers included) are reported only")
    return report


def cpu_report(start: dict[str, Sample], end: dict[str, Sample], seconds: float) -> dict[str, Any]:
    """CPU time each role used during the soak, and as cores busy on average: where the machine went."""
    report = {}
    for role, after in end.items():
        before = start[role].cpu_s if role in start else {}
        used = sum(max(0.0, total - before.get(pid, 0.0)) for pid, total in after.cpu_s.items())
        report[role] = {"cpu_s": round(used, 1), "cores": round(used / seconds, 2) if seconds else 0.0}
    return report


def shortfall(sent: int, skipped: int, asked: float, lag_p99_s: float) -> str:
    """Why fewer requests went out than the rate asked for: the stack (requests skipped because
    MAX_IN_FLIGHT were still unanswered) or this client (its loop behind its schedule), or none."""
    if sent >= TARGET_RATE_SHARE * asked:
        return "nothing"
    if skipped:
        return (f"the stack: {skipped} scheduled requests were skipped because {MAX_IN_FLIGHT} earlier ones "
                "were still unanswered")
    return f"this client: its event loop ran behind its schedule (p99 {lag_p99_s * 1000:.0f} ms late)"


# -- the run -----------------------------------------------------------------------------------------------
def prepare_files(base: harness.Backing) -> tuple[Path, Path]:
    """A small mlx-lm-shaped directory each version registers, and a JSONL file each dataset names."""
    artifact = base.root / "soak" / "artifact"
    artifact.mkdir(parents=True)
    (artifact / "config.json").write_text('{"model_type": "llama", "hidden_size": 8}')
    (artifact / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (artifact / "tokenizer.json").write_text("{}")
    dataset = base.settings.datasets_dir / "soak.jsonl"
    dataset.write_text('{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}\n')
    return artifact, dataset


def generation_model(base: harness.Backing, tiny: bool) -> tuple[str, Path]:
    """(registered name, directory) of the model the streams generate with."""
    work = base.root / "soak"
    if tiny:
        from bench.tiny_model import make_tiny_model

        return "tiny", make_tiny_model(work / "tiny")
    from mlxhub.gguf import convert
    from mlxhub.importer import demo_gguf

    return "smollm2", convert(demo_gguf(), work / "smollm2")


async def soak(args: argparse.Namespace, base: harness.Backing, url: str, model: str) -> dict[str, Any]:
    artifact, dataset = prepare_files(base)
    load = KeepAliveHttp(url, timeout=60)
    raw_start = sample(processes(base))  # the services just started, before any load
    async with httpx.AsyncClient(base_url=url, timeout=60) as http, \
            httpx.AsyncClient(base_url=url, timeout=300) as generation:  # fmt: skip
        run = Soak(load, http, artifact, dataset, args.seed)
        stop = asyncio.Event()
        streams = [asyncio.create_task(run.stream(generation, model, args.max_tokens, stop))
                   for _ in range(args.streams)]
        log.info("warm-up: %.0f s at %.0f requests/s with %d streams", args.warmup_s, args.rate, args.streams)
        with Stopwatch() as warmup:
            await run.drive(args.warmup_s, args.rate)
            # Until each stream has finished a generation: the inference service's batch at its full size.
            while run.streams.completed + run.streams.errors < args.streams and clock() - warmup.started < WARMUP_MAX_S:
                await run.drive(WARMUP_STEP_S, args.rate)
            await run.drain()
        run.reset()
        gap_s = min(WINDOW_GAP_S, args.minutes * 60 / 100)
        start = await steady_sample(processes(base), gap_s)
        load_start = os.getloadavg()[0]
        log.info("soak: %.1f minutes at %.0f requests/s; memory at start %s", args.minutes, args.rate,
                 {role: found.rss_mb for role, found in start.items()})
        timeline: list[dict[str, Sample]] = [start]
        sampler = asyncio.create_task(sample_every(args.minutes * 60 / TIMELINE_POINTS, base, set(start), timeline))
        with Stopwatch() as watch:
            with Stopwatch() as sending:
                await run.drive(args.minutes * 60, args.rate)
            await run.drain()
        sampler.cancel()
        end = await steady_sample({role: group for role, group in processes(base).items() if role in start}, gap_s)
        timeline.append(end)
        log.info("memory at end %s; stopping the streams", {role: found.rss_mb for role, found in end.items()})
        stop.set()
        _, unfinished = await asyncio.wait(streams, timeout=STREAM_FINISH_S) if streams else (set(), set())
        for task in unfinished:
            task.cancel()
        streaming_s = clock() - watch.started  # the soak and its streams' last generations, all counted
        log.info("replay check over %d acknowledged writes", len(run.writes))
        load.close()
        replay = await run.replay()
    requests = sum(stats.count for stats in run.routes.values())
    asked = args.rate * args.minutes * 60
    routes = {route: run.routes[route].summary() for route in ROUTE_WEIGHTS}
    streams_summary = run.streams.summary(streaming_s)
    memory = memory_report(raw_start, start, end, timeline)
    cpu = cpu_report(start, end, watch.seconds)
    lag_p99_s = percentile(run.schedule_lag_s, 99) if run.schedule_lag_s else 0.0
    rate = {"target_per_s": args.rate, "achieved_per_s": round(run.sent / sending.seconds, 2),
            "achieved_share": round(run.sent / asked, 3), "requests": requests, "scheduled_not_sent": run.skipped,
            "schedule_lag_p99_ms": round(lag_p99_s * 1000, 2), "client_cores": cpu["soak_client"]["cores"],
            "limited_by": shortfall(run.sent, run.skipped, asked, lag_p99_s),
            "target_share": TARGET_RATE_SHARE, "met": run.sent >= TARGET_RATE_SHARE * asked}  # fmt: skip
    checks = {
        "rate": rate["met"],
        "route_errors": all(r["errors"] == 0 for r in routes.values()),
        "streams": streams_summary["errors"] == 0 and (args.streams == 0 or streams_summary["completed"] > 0),
        "memory": all(memory[role]["met"] for role in HUB_PROCESSES if role in memory),
        "replay": replay["met"],
    }
    return {
        "met": all(checks.values()),
        "checks": checks,
        "seconds": round(watch.seconds, 1),
        "rate": rate,
        "routes": routes,
        "generation_streams": {"streams": args.streams, "model": model, "max_tokens": args.max_tokens,
                               **streams_summary, "cut_at_end": len(unfinished)},
        "warmup_s": round(warmup.seconds, 1),
        "memory": memory,
        "cpu": cpu,
        "replay": replay,
        "load_average_1m": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    # SIGTERM (e.g. `timeout`) unwinds like Ctrl-C, so the services, NATS and PostgreSQL are stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    with stdout_for_json_only() as real_stdout, Stopwatch() as total, harness.backing() as base:
        logs = base.root / "soak"
        logs.mkdir()
        with harness.service_process(base, "registry_svc", logs / "registry.log"), \
                grpc.insecure_channel(base.settings.address("registry")) as channel:  # fmt: skip
            model, model_dir = generation_model(base, args.tiny_model)
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            stub.CreateModel(registry_pb2.CreateModelRequest(name=model))
            stub.CreateModelVersion(registry_pb2.CreateModelVersionRequest(name=model, artifact_path=str(model_dir)))
            with harness.service_process(base, "inference_svc", logs / "inference.log", **SERVICE_ENV), \
                    harness.gateway_process(base, logs / "gateway.log") as url:  # fmt: skip
                found = uvloop.run(soak(args, base, url, model))
        result = {
            "benchmark": "mlx-hub soak: registry reads and writes through the gateway, with generation streams",
            "met": found.pop("met"),
            "options": {"minutes": args.minutes, "rate": args.rate, "streams": args.streams,
                        "max_tokens": args.max_tokens, "warmup_s": args.warmup_s, "tiny_model": args.tiny_model,
                        "seed": args.seed},
            "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                            "platform": platform.platform()},
            **found,
        }  # fmt: skip
        result["wall_s"] = round(clock() - total.started, 1)
        os.write(real_stdout, (json.dumps(result, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
