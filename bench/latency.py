"""Unary latency: GET /v1/models/{name} through the gateway (httpx, keep-alive)
against a direct gRPC GetModel call, interleaved call by call in the same run."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from bench.harness import Stack
from bench.timing import clock, latency_ms, ratio
from mlxhub.v1 import registry_pb2

log = logging.getLogger(__name__)

MODEL = "latency-probe"


def measure(stack: Stack, calls: int, warmup: int = 50) -> dict[str, Any]:
    stack.stub.CreateModel(registry_pb2.CreateModelRequest(name=MODEL, base_model="bench", tags={"k": "v"}))
    request = registry_pb2.GetModelRequest(name=MODEL)
    gateway_s, grpc_s = [], []
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as http:

        def via_gateway() -> None:
            response = http.get(f"/v1/models/{MODEL}")
            if response.status_code != 200 or response.json()["model"]["name"] != MODEL:
                raise AssertionError(f"gateway answered {response.status_code}: {response.text[:200]}")

        def via_grpc() -> None:
            if stack.stub.GetModel(request).model.name != MODEL:
                raise AssertionError("GetModel returned another model")

        for _ in range(warmup):
            via_gateway()
            via_grpc()
        log.info("latency: %d interleaved calls each", calls)
        for _ in range(calls):
            for call, samples in ((via_grpc, grpc_s), (via_gateway, gateway_s)):
                started = clock()
                call()
                samples.append(clock() - started)
    gateway, grpc = latency_ms(gateway_s), latency_ms(grpc_s)
    return {
        "calls": calls,
        "gateway_p50_ms": gateway["p50_ms"],
        "gateway_p99_ms": gateway["p99_ms"],
        "gateway_mean_ms": gateway["mean_ms"],
        "grpc_p50_ms": grpc["p50_ms"],
        "grpc_p99_ms": grpc["p99_ms"],
        "grpc_mean_ms": grpc["mean_ms"],
        "ratio_p50": round(ratio(gateway["p50_ms"], grpc["p50_ms"]), 3),
        "ratio_p99": round(ratio(gateway["p99_ms"], grpc["p99_ms"]), 3),
    }
