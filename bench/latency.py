"""Unary calls: GET /v1/models/{name} through the gateway against a direct gRPC GetModel.

Latency: one client, gateway (keep-alive HTTP/1.1) and direct calls interleaved call by call in
the same run, with a third side: the floor, the least an HTTP/JSON pass-through on the same
server stack does (uvicorn, one grpc.aio call, the answer as JSON; `_Floor`), so the gateway's
overhead is also shown over what its stack alone costs. Throughput: 64 concurrent clients in a load process of their own
(`python -m bench.latency`), rounds alternating direct gRPC and a gateway process (as `mlx-hub up`
runs it), so that neither the clients nor the gateway share the registry's GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from http import client as http_client
from pathlib import Path
from typing import Any

import grpc
import httpx
import orjson
import uvicorn

from bench import harness
from bench.harness import Stack
from bench.timing import clock, latency_ms, ratio
from mlxhub.embedded import free_port
from mlxhub.proto_json import message_to_dict
from mlxhub.v1 import registry_pb2, registry_pb2_grpc

log = logging.getLogger(__name__)

MODEL = "latency-probe"
TARGET_OVERHEAD_P50_MS = 1.0
TARGET_OVERHEAD_P99_MS = 2.0
CONCURRENT_CLIENTS = 64
TARGET_THROUGHPUT_RATIO = 0.7  # gateway calls/s over direct gRPC calls/s, 64 clients each


def _ensure_model(stack: Stack) -> None:
    try:
        stack.stub.CreateModel(registry_pb2.CreateModelRequest(name=MODEL, base_model="bench", tags={"k": "v"}))
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise


class _Floor:
    """The floor of the gateway's overhead: an ASGI app on uvicorn, run as the gateway is run
    (httptools, uvloop), that answers GET .../{name} with one grpc.aio GetModel written as JSON by
    the gateway's own encoder, and does nothing else: no routing, authentication, telemetry,
    request id, disconnect watch or error shape."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.stub: registry_pb2_grpc.RegistryServiceStub | None = None

    async def __call__(self, scope, receive, send) -> None:
        if self.stub is None:  # made in the serving loop, as the gateway makes its channels
            self.stub = registry_pb2_grpc.RegistryServiceStub(grpc.aio.insecure_channel(self.address))
        name = scope["path"].rsplit("/", 1)[-1]
        body = orjson.dumps(message_to_dict(await self.stub.GetModel(registry_pb2.GetModelRequest(name=name))))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def _floor_running(stack: Stack, timeout: float = 10.0):
    """`_Floor` served in a thread, as the stack's gateway is; yields (host, port)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_Floor(stack.settings.address("registry")), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, name="latency-floor", daemon=True)
    thread.start()
    deadline = clock() + timeout
    while not server.started:
        if not thread.is_alive() or clock() > deadline:
            server.should_exit = True
            raise RuntimeError("the latency floor's server did not start")
        time.sleep(0.01)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(10)


def measure(stack: Stack, calls: int, warmup: int = 50) -> dict[str, Any]:
    _ensure_model(stack)
    request = registry_pb2.GetModelRequest(name=MODEL)
    gateway_s, grpc_s, floor_s = [], [], []
    # http.client, not httpx: on a keep-alive connection it costs the client about what a gRPC stub
    # call does, where httpx costs about three times that, and that time is the client's, not the gateway's.
    url = httpx.URL(stack.gateway_url)
    with _floor_running(stack) as floor_address, \
            contextlib.closing(http_client.HTTPConnection(url.host, url.port, timeout=30)) as http, \
            contextlib.closing(http_client.HTTPConnection(*floor_address, timeout=30)) as floor_http:  # fmt: skip

        def over_http(connection: http_client.HTTPConnection, what: str) -> Callable[[], None]:
            def call() -> None:
                connection.request("GET", f"/v1/models/{MODEL}")
                response = connection.getresponse()
                body = response.read()
                if response.status != 200 or json.loads(body)["model"]["name"] != MODEL:
                    raise AssertionError(f"{what} answered {response.status}: {body[:200]!r}")

            return call

        def via_grpc() -> None:
            if stack.stub.GetModel(request).model.name != MODEL:
                raise AssertionError("GetModel returned another model")

        sides = [(via_grpc, grpc_s), (over_http(floor_http, "the floor"), floor_s),
                 (over_http(http, "the gateway"), gateway_s)]
        for _ in range(warmup):
            for call, _samples in sides:
                call()
        log.info("latency: %d interleaved calls each (direct gRPC, the floor, the gateway)", calls)
        for number in range(calls):
            turn = number % len(sides)  # each side goes first, second and third equally often
            for call, samples in sides[turn:] + sides[:turn]:
                started = clock()
                call()
                samples.append(clock() - started)
    gateway, grpc_, floor = latency_ms(gateway_s), latency_ms(grpc_s), latency_ms(floor_s)
    return {
        "calls": calls,
        "gateway_p50_ms": gateway["p50_ms"],
        "gateway_p99_ms": gateway["p99_ms"],
        "gateway_mean_ms": gateway["mean_ms"],
        "grpc_p50_ms": grpc_["p50_ms"],
        "grpc_p99_ms": grpc_["p99_ms"],
        "grpc_mean_ms": grpc_["mean_ms"],
        "ratio_p50": round(ratio(gateway["p50_ms"], grpc_["p50_ms"]), 3),
        "ratio_p99": round(ratio(gateway["p99_ms"], grpc_["p99_ms"]), 3),
        "overhead_p50_ms": round(gateway["p50_ms"] - grpc_["p50_ms"], 4),
        "overhead_p99_ms": round(gateway["p99_ms"] - grpc_["p99_ms"], 4),
        "target_overhead_p50_ms": TARGET_OVERHEAD_P50_MS,
        "target_overhead_p99_ms": TARGET_OVERHEAD_P99_MS,
        "target_met": (gateway["p50_ms"] - grpc_["p50_ms"] <= TARGET_OVERHEAD_P50_MS
                       and gateway["p99_ms"] - grpc_["p99_ms"] <= TARGET_OVERHEAD_P99_MS),
        "floor_p50_ms": floor["p50_ms"],
        "floor_p99_ms": floor["p99_ms"],
        "floor_overhead_p50_ms": round(floor["p50_ms"] - grpc_["p50_ms"], 4),
        "floor_overhead_p99_ms": round(floor["p99_ms"] - grpc_["p99_ms"], 4),
        "over_floor_p50_ms": round(gateway["p50_ms"] - floor["p50_ms"], 4),
        "over_floor_p99_ms": round(gateway["p99_ms"] - floor["p99_ms"], 4),
        "floor_note": "the floor: uvicorn + one grpc.aio call + the answer as JSON, nothing else (bench.latency._Floor)",
    }


async def _http_caller(base_url: str, path: str) -> Callable[[], Awaitable[None]]:
    """One keep-alive HTTP/1.1 connection sending a fixed GET: a load client as cheap as `wrk`'s,
    so the figure measures the gateway rather than the client library (httpx costs more per call
    than the gateway does)."""
    url = httpx.URL(base_url)
    reader, writer = await asyncio.open_connection(url.host, url.port)
    request = f"GET {path} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\nAccept: */*\r\n\r\n".encode()

    async def call() -> None:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200 "):
            raise AssertionError(f"gateway answered {head[:200]!r}")
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        await reader.readexactly(length)

    return call


def _load(target: str, address: str, clients: int, seconds: float) -> int:
    """Calls answered in `seconds` by `clients` concurrent callers (keep-alive, one connection each
    over HTTP; multiplexed on one channel over gRPC, as a gRPC client does)."""

    async def run() -> int:
        if target == "grpc":
            channel = grpc.aio.insecure_channel(address)
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            request = registry_pb2.GetModelRequest(name=MODEL)

            async def call() -> None:
                await stub.GetModel(request)

            calls = [call] * clients
        else:
            calls = await asyncio.gather(*(_http_caller(address, f"/v1/models/{MODEL}") for _ in range(clients)))
        await asyncio.gather(*(call() for call in calls))  # connected and warm before the clock starts
        done = 0
        deadline = asyncio.get_running_loop().time() + seconds

        async def caller(call: Callable[[], Awaitable[None]]) -> None:
            nonlocal done
            while asyncio.get_running_loop().time() < deadline:
                await call()
                done += 1

        await asyncio.gather(*(caller(call) for call in calls))
        return done

    return asyncio.run(run())


def _load_process(env: dict[str, str], target: str, address: str, clients: int, seconds: float) -> float:
    """Calls per second from a `python -m bench.latency` load process (its start-up not timed)."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.latency", target, address, "--clients", str(clients), "--seconds", str(seconds)],
        env={**os.environ, **env}, capture_output=True, text=True, check=True, timeout=seconds + 120,
    )  # fmt: skip
    return json.loads(out.stdout)["calls"] / seconds


def throughput(stack: Stack, clients: int = CONCURRENT_CLIENTS, rounds: int = 3, seconds: float = 3.0) -> dict[str, Any]:
    """Median calls/s of `clients` concurrent GetModel callers, direct and through a gateway process."""
    _ensure_model(stack)
    direct, gateway = [], []
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as work, \
            harness.gateway_process(stack, Path(work) / "gateway.log") as url:  # fmt: skip
        log.info("throughput: %d rounds of %d clients for %.0f s, direct gRPC and via %s", rounds, clients, seconds, url)
        for _ in range(rounds):
            direct.append(_load_process(stack.env, "grpc", stack.settings.address("registry"), clients, seconds))
            gateway.append(_load_process(stack.env, "http", url, clients, seconds))
    grpc_rate, gateway_rate = statistics.median(direct), statistics.median(gateway)
    return {
        "clients": clients,
        "rounds": rounds,
        "seconds_per_round": seconds,
        "grpc_calls_per_s": round(grpc_rate, 1),
        "gateway_calls_per_s": round(gateway_rate, 1),
        "ratio": round(ratio(gateway_rate, grpc_rate), 3),
        "target_ratio": TARGET_THROUGHPUT_RATIO,
        "target_met": ratio(gateway_rate, grpc_rate) >= TARGET_THROUGHPUT_RATIO,
    }


def main(argv: list[str] | None = None) -> int:
    """The load process: `python -m bench.latency grpc|http ADDRESS`; prints {"calls": N}."""
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=main.__doc__)
    parser.add_argument("target", choices=["grpc", "http"])
    parser.add_argument("address", help="host:port of the registry, or the gateway's base URL")
    parser.add_argument("--clients", type=int, default=CONCURRENT_CLIENTS)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    print(json.dumps({"calls": _load(args.target, args.address, args.clients, args.seconds)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
