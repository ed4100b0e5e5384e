"""`python -m bench.adapters [--quick] [--mlx-lm-server]`: many LoRA adapter versions of the demo
model (SmolLM2-135M) served from one base in one batch, measured in one run on the inference
engine itself (in this process, with the service's loader, cache and memory estimates;
`python -m bench.inference` measures what gRPC and the gateway add on top).

- Aggregate decode tokens/s of 8 concurrent greedy streams spread over 8 different adapter
  versions, as a ratio to 8 streams on the base alone; rounds alternate (base, adapters, ...,
  then the reverse order) and the medians are compared (target >= 0.8).
- The same 8-adapter load with each way of adding the per-row low-rank terms
  (`inference_svc.lora`: the batch's adapters side by side (stack, the default), gather each
  row's matrices, or one matmul pair per adapter).
- With `--mlx-lm-server`: the same 8-adapter load (prompts, token counts, greedy) against
  `mlx_lm.server` started on loopback in this run with the same float32 weights, each request
  naming its adapter (`adapters`), alternating with ours in the first `--server-rounds` rounds
  (default 1: it loads the whole model again for each adapter, minutes a round): its aggregate
  tokens/s as a ratio to our base-only figure, and its median TTFT.
- One decode step of 8 rows on 8 adapters in each mode vs 8 rows on the base, alternating, 30
  times each (medians of wall and of this process's CPU time): the same comparison without
  prompts, sampling or threads, less noisy on a shared machine.
- Memory, as a ratio to the base alone (target <= 1.1), loaded and idle and during a decode that
  mixes the 8 adapters: the cache's accounting (the versions' bytes and the router's working
  arrays, sampled on the engine thread between steps of an untimed 8-adapter round), and MLX's
  own count of live memory in a model of our own: the base's weights, what attaching the
  adapters adds, and what a mixed decode step holds beyond a base decode step on the same KV
  cache (a copy of the adapters' matrices made for the batch would show here).
- TTFT of a request whose adapter is not loaded yet while 7 other streams decode, beside the TTFT
  of a request on a loaded adapter sent the same way, and the longest gap between two tokens of
  those streams meanwhile, as a ratio to the longest gap while a request on a loaded adapter
  joins (a newcomer's prompt runs on the engine thread either way; an adapter load runs off it
  and must add no stall of its own: target <= 2).

The adapters are random (no training): mlx-lm's format (`adapters.safetensors`,
`adapter_config.json`), rank 8 on the attention and MLP projections of the last 16 layers.
One JSON document on stdout, logs on stderr."""

from __future__ import annotations

import inference_svc  # noqa: F401  (fast BLAS: before anything imports MLX)  # isort: skip
import argparse
import contextlib
import http.client
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten

from bench.__main__ import stdout_for_json_only
from bench.inference import PROMPTS  # the same conversations as the inference bench
from bench.timing import ratio, run_together
from inference_svc import lora

log = logging.getLogger("bench.adapters")

KEYS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def make_adapter(base: Path, directory: Path, seed: int, rank: int = 8, scale: float = 20.0, num_layers: int = 16,
                 keys: tuple[str, ...] = KEYS, strength: float = 0.01) -> Path:
    """A random LoRA adapter for the mlx-lm model in `base`, saved as mlx_lm.lora saves one: A drawn as
    mlx-lm initializes it, B non-zero (`strength`) so the adapter changes what the model says."""
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import load_model

    model, _ = load_model(base, lazy=True)
    model.freeze()
    parameters = {"rank": rank, "scale": scale, "dropout": 0.0, "keys": list(keys)}
    linear_to_lora_layers(model, num_layers, parameters)
    mx.random.seed(seed)
    weights = {}
    for name, value in tree_flatten(model.trainable_parameters()):
        if name.endswith("lora_a"):
            bound = value.shape[0] ** -0.5
            weights[name] = mx.random.uniform(-bound, bound, value.shape)
        else:
            weights[name] = mx.random.normal(value.shape) * strength
    directory.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(directory / "adapters.safetensors"), weights)
    (directory / "adapter_config.json").write_text(json.dumps(
        {"fine_tune_type": "lora", "num_layers": num_layers, "lora_parameters": parameters}))
    return directory


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.adapters", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short generations, one round each: a smoke test")
    parser.add_argument("--max-tokens", type=int, help="tokens per stream (default 48, quick 8)")
    parser.add_argument("--rounds", type=int, help="rounds of each side (default 3, quick 1)")
    parser.add_argument("--streams", type=int, default=8, help="concurrent streams (and adapter versions)")
    parser.add_argument("--mlx-lm-server", action="store_true",
                        help="also run the adapter load against mlx_lm.server (a subprocess on loopback)")
    parser.add_argument("--step-repeats", type=int, help="decode steps timed per side (default 30, quick 3)")
    parser.add_argument("--server-rounds", type=int, default=1,
                        help="rounds that include mlx_lm.server (it reloads the model per adapter: minutes a round)")
    args = parser.parse_args(argv)
    args.max_tokens = args.max_tokens or (8 if args.quick else 48)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.step_repeats = args.step_repeats or (3 if args.quick else 30)
    return args


def build_engine(model_dir: Path, streams: int):
    """The engine as `python -m inference_svc` wires it (loader, footprint estimates), with room for `streams`."""
    from inference_svc import footprint, loader, prompts
    from inference_svc.decode.engine import Engine

    fmt = loader.weight_format("float32")
    tokenizers = prompts.Tokenizers()
    return Engine(lambda spec: loader.load(spec.path, spec.adapter_path, fmt, tokenizer=tokenizers.get(spec.path)),
                  4 * 1024**3, 3600.0, max_running=streams, max_queued=64,
                  tokenizer=lambda spec: tokenizers.get(spec.path),
                  estimate=lambda spec: footprint.served_bytes(spec.path, spec.adapter_path, fmt)).start()


def generate(engine, spec, prompt: str, max_tokens: int) -> dict[str, float]:
    """One greedy chat generation: its TTFT, tokens, token times and text."""
    from inference_svc.decode.generation import Chunk, Done, Failed, Request
    from inference_svc.decode.sampling import Sampling

    generation = engine.submit(Request(spec, Sampling(max_tokens=max_tokens), messages=[{"role": "user", "content": prompt}]))
    started, times, text = time.perf_counter(), [], []
    while True:
        event = generation.events.get(timeout=600)
        if isinstance(event, Chunk):
            times.append(time.perf_counter())
            text.append(event.text)
        elif isinstance(event, Done):
            return {"ttft": times[0] - started if times else 0.0, "tokens": event.completion_tokens,
                    "times": times, "text": "".join(text)}
        elif isinstance(event, Failed):
            raise RuntimeError(f"{spec.version}: {event.error}")  # noqa: TRY004  (a failed generation, not a type)


def streams_at_once(count: int, stream: Callable[[int], dict]) -> tuple[float, list[dict]]:
    """`stream(i)` for each of `count` streams, all at once: their aggregate decode tokens/s (after each
    stream's first token, over the window they all decode in) and their results (with `times` and `tokens`)."""
    results: list[dict] = [{}] * count

    def worker(i: int) -> Callable[[], None]:
        return lambda: results.__setitem__(i, stream(i))

    run_together([worker(i) for i in range(count)])
    start = min(r["times"][0] for r in results)
    end = max(r["times"][-1] for r in results)
    tokens = sum(r["tokens"] - 1 for r in results)
    return (tokens / (end - start) if end > start else 0.0), results


def concurrent(engine, specs: list, max_tokens: int) -> dict[str, object]:
    """`len(specs)` streams at once, stream i on specs[i]: aggregate decode tokens/s and the streams' results."""
    rate, results = streams_at_once(
        len(specs), lambda i: generate(engine, specs[i], PROMPTS[i % len(PROMPTS)], max_tokens))
    return {"tok_s": rate, "results": results}


def memory(engine) -> dict[str, float]:
    """The cache's bytes (versions and router working arrays) and MLX's active memory, on the engine thread."""
    return engine.call(lambda: {"cache_bytes": engine.cache.used_bytes, "mlx_active_bytes": mx.get_active_memory()})


def memory_while_decoding(engine, specs: list, max_tokens: int) -> dict[str, object]:
    """The cache's bytes sampled between decode steps while `len(specs)` streams decode at once (the
    largest), and the router's adapter storage then against the adapters' own bytes."""
    samples: list[dict] = []
    done = threading.Event()

    def sample() -> dict:
        entries = engine.cache.snapshot()
        routers = [e.router for e in entries if e.router is not None]
        return {"cache_bytes": engine.cache.used_bytes, "router_working_bytes": sum(r.working_bytes for r in routers),
                "pack_bytes": sum(r.pack.nbytes for r in routers),
                "adapter_bytes": sum(e.loaded.nbytes for e in entries if e.base is not None)}

    def sampler() -> None:
        while not done.wait(0.1):
            samples.append(engine.call(sample))

    thread = threading.Thread(target=sampler)
    thread.start()
    try:
        concurrent(engine, specs, max_tokens)
    finally:
        done.set()
        thread.join()
    samples.append(engine.call(sample))
    return {**max(samples, key=lambda m: m["cache_bytes"]), "samples": len(samples)}


def mlx_memory(model_dir: Path, adapter_dirs: list[Path], rows: int) -> dict[str, float]:
    """MLX's live memory in a model of our own: the base's weights, what attaching `rows` adapters adds,
    and what a decode step of `rows` rows on as many adapters holds (after it, and at its peak) beyond
    a step of `rows` base rows on the same KV cache."""
    import gc

    from mlx_lm.models.cache import make_prompt_cache

    from inference_svc import loader

    gc.collect()
    model = loader.load(str(model_dir), "", loader.FLOAT32).model
    weights = sum(v.nbytes for _, v in tree_flatten(model.parameters()))
    router = lora.Router(model)
    gc.collect()
    before = mx.get_active_memory()
    adapters = [lora.read_adapter(str(d)) for d in adapter_dirs[:rows]]
    for adapter in adapters:
        router.attach(adapter)
    gc.collect()
    attached = mx.get_active_memory() - before
    cache = make_prompt_cache(model)
    token = mx.array([[5]] * rows)

    def step(adapters_or_base: list) -> tuple[int, int]:
        """(active memory after, peak during) one decode step routed to `adapters_or_base`."""
        router.route(adapters_or_base)
        mx.reset_peak_memory()
        mx.eval(mx.argmax(model(token, cache=cache)[:, -1, :], axis=-1))
        router.ended()
        for layer in cache:
            layer.offset -= 1
        gc.collect()
        return mx.get_active_memory(), mx.get_peak_memory()

    router.route([None] * rows)
    mx.eval(model(mx.array([[1 + (i * 7 + j) % 1000 for j in range(60)] for i in range(rows)]), cache=cache))
    step([None] * rows)  # warm
    base_after, base_peak = step([None] * rows)
    step(adapters)  # its routes and masks are made once, then kept
    mixed_after, mixed_peak = step(adapters)
    held = max(0, mixed_after - base_after)
    return {"base_weights_bytes": weights, "adapters_attached_bytes": attached,
            "adapters_matrix_bytes": sum(a.nbytes for a in adapters), "pack_bytes": router.pack.nbytes,
            "mixed_step_held_bytes": held, "mixed_step_peak_extra_bytes": mixed_peak - base_peak,
            "idle_ratio": ratio(weights + attached, weights),
            "mixed_decode_ratio": ratio(weights + attached + held, weights)}


def stall_while_loading(engine, streamers: list, newcomer, max_tokens: int) -> dict[str, float]:
    """TTFT of a request on `newcomer` sent while `streamers` decode, and the longest gap between two
    tokens of theirs meanwhile (vs their median gap)."""
    box: dict[str, dict] = {}
    threads = [threading.Thread(target=lambda i=i: box.__setitem__(str(i), generate(
        engine, streamers[i], PROMPTS[i % len(PROMPTS)], max_tokens * 2))) for i in range(len(streamers))]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    late = generate(engine, newcomer, PROMPTS[0], 4)
    for thread in threads:
        thread.join()
    gaps = [b - a for r in box.values() for a, b in zip(r["times"], r["times"][1:], strict=False)]
    longest, median = (max(gaps), statistics.median(gaps)) if gaps else (0.0, 0.0)
    return {"ttft_ms": late["ttft"] * 1000, "longest_gap_ms": longest * 1000, "median_gap_ms": median * 1000,
            "gap_ratio": ratio(longest, median)}


def float32_copy(model_dir: Path, destination: Path) -> Path:
    """`model_dir` with float32 weights, the format our engine serves on the CPU (`inference_svc.loader`),
    so that mlx_lm.server decodes the same arithmetic."""
    from mlx_lm.utils import dequantize_model, load_model

    model, config = load_model(model_dir)
    model = dequantize_model(model)
    model.set_dtype(mx.float32)
    destination.mkdir(parents=True)
    mx.save_safetensors(str(destination / "model.safetensors"), dict(tree_flatten(model.parameters())))
    config.pop("quantization", None)
    config.pop("quantization_config", None)
    (destination / "config.json").write_text(json.dumps(config))
    for name in model_dir.iterdir():
        if name.name.startswith("tokenizer") or name.name in ("special_tokens_map.json", "chat_template.jinja"):
            shutil.copy(name, destination / name.name)
    return destination


@contextlib.contextmanager
def mlx_lm_server(model_dir: Path, streams: int, log_path: Path) -> Iterator[int]:
    """`python -m mlx_lm.server` serving `model_dir` on a free loopback port (yielded) until the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlx_lm.server", "--model", str(model_dir), "--host", "127.0.0.1", "--port",
             str(port), "--decode-concurrency", str(streams), "--prompt-concurrency", str(streams),
             "--log-level", "WARNING"], stdout=log_file, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f"mlx_lm.server exited ({process.returncode}): {log_path.read_text()[-2000:]}")
                with contextlib.suppress(OSError):
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    connection.request("GET", "/health")
                    if connection.getresponse().status == 200:
                        break
                time.sleep(0.5)
            else:
                raise RuntimeError("mlx_lm.server did not answer /health within 300 s")
            yield port
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def server_generate(port: int, adapter: Path, prompt: str, max_tokens: int) -> dict[str, object]:
    """One greedy streamed chat completion from mlx_lm.server on `adapter`: TTFT, tokens, token times."""
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "temperature": 0.0,
            "stream": True, "stream_options": {"include_usage": True}, "adapters": str(adapter)}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started, times, tokens = time.perf_counter(), [], 0
    connection.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"mlx_lm.server answered {response.status}: {response.read()[:500]!r}")
    for line in response:
        if not line.startswith(b"data: ") or line.strip() == b"data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
        if any(c.get("delta", {}).get("content") for c in chunk.get("choices", [])):
            times.append(time.perf_counter())
    connection.close()
    return {"ttft": times[0] - started if times else 0.0, "tokens": tokens, "times": times}


def server_concurrent(port: int, adapters: list[Path], max_tokens: int) -> dict[str, object]:
    """`len(adapters)` streams at once against mlx_lm.server, stream i on adapters[i], measured as
    `concurrent` measures ours."""
    rate, results = streams_at_once(
        len(adapters), lambda i: server_generate(port, adapters[i], PROMPTS[i % len(PROMPTS)], max_tokens))
    return {"tok_s": rate, "ttft_ms": statistics.median(r["ttft"] for r in results) * 1000}


def step_speed(model_dir: Path, adapter_dirs: list[Path], rows: int, repeats: int) -> dict[str, object]:
    """One decode step of `rows` rows on the base alone vs on `rows` different adapters in each mode,
    alternating, `repeats` times each: median wall and CPU (this process) milliseconds and their ratios
    to the base step. Less noisy than whole streams on a shared machine: no prompts, sampling or
    threads, the same KV cache (60 tokens) every time."""
    from mlx_lm.models.cache import make_prompt_cache

    from inference_svc import loader

    model = loader.load(str(model_dir), "", loader.FLOAT32).model
    router = lora.Router(model)
    adapters = [lora.read_adapter(str(d)) for d in adapter_dirs[:rows]]
    for adapter in adapters:
        router.attach(adapter)
    cache = make_prompt_cache(model)
    router.route([None] * rows)
    mx.eval(model(mx.array([[1 + (i * 7 + j) % 1000 for j in range(60)] for i in range(rows)]), cache=cache))
    token = mx.array([[5]] * rows)

    def step(side: str) -> None:
        router.mode = MODES.get(side, lora.STACK)
        router.route([None] * rows if side == "base" else adapters)
        mx.eval(mx.argmax(model(token, cache=cache)[:, -1, :], axis=-1))
        for layer in cache:
            layer.offset -= 1  # the next step decodes the same position again

    sides = ["base", *MODES]
    for side in sides:
        step(side)
    wall: dict[str, list[float]] = {side: [] for side in sides}
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    for r in range(repeats):
        for side in sides if r % 2 == 0 else sides[::-1]:
            started, used = time.perf_counter(), time.process_time()
            step(side)
            wall[side].append((time.perf_counter() - started) * 1000)
            cpu[side].append((time.process_time() - used) * 1000)
    medians = {name: {side: statistics.median(v) for side, v in d.items()} for name, d in (("wall", wall), ("cpu", cpu))}
    return {"repeats": repeats, "median_ms": medians,
            "speed_vs_base": {name: {side: ratio(m["base"], m[side]) for side in MODES} for name, m in medians.items()},
            "target": 0.8}


MODES = {"adapters": lora.STACK, "adapters_gather": lora.GATHER, "adapters_group": lora.GROUP}


def main(argv: list[str] | None = None) -> dict[str, object]:
    from inference_svc.cache import ModelSpec
    from mlxhub.gguf import convert
    from mlxhub.importer import demo_gguf

    args = parse_args(argv)
    n = args.streams
    with tempfile.TemporaryDirectory(prefix="bench-adapters-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        log.info("converting the demo model")
        model_dir = convert(demo_gguf(), work / "smollm2")
        # n adapters for the decode rounds, then one per round that is loaded only while others stream
        adapter_dirs = [make_adapter(model_dir, work / f"adapter-{i}", seed=i) for i in range(n + args.rounds)]
        base = ModelSpec("smollm2/versions/1", str(model_dir))
        adapters = [ModelSpec(f"smollm2/versions/{i + 2}", str(model_dir), str(d), base.version)
                    for i, d in enumerate(adapter_dirs)]
        sides = ["base", *MODES]
        port = None
        if args.mlx_lm_server:
            log.info("starting mlx_lm.server on float32 weights")
            port = stack.enter_context(mlx_lm_server(float32_copy(model_dir, work / "smollm2-f32"), n,
                                                     work / "mlx_lm_server.log"))
            server_generate(port, adapter_dirs[0], PROMPTS[0], 2)  # its first load, as ours below
            sides.append("mlx_lm_server")
        engine = build_engine(model_dir, n)
        try:
            generate(engine, base, PROMPTS[0], 4)  # load and warm the base
            base_memory = memory(engine)
            base_alone = engine.cache.loaded(base).loaded.nbytes
            for spec in adapters[:n]:
                generate(engine, spec, PROMPTS[0], 2)
            adapters_memory = memory(engine)
            rounds: dict[str, list[float]] = {side: [] for side in sides}
            server_ttft: list[float] = []
            router = engine.cache.loaded(base).router
            for r in range(args.rounds):
                these = [side for side in sides if side != "mlx_lm_server" or r < args.server_rounds]
                for side in these if r % 2 == 0 else these[::-1]:
                    if side == "mlx_lm_server":
                        measured = server_concurrent(port, adapter_dirs[:n], args.max_tokens)
                        server_ttft.append(measured["ttft_ms"])
                    else:
                        router.mode = MODES.get(side, lora.STACK)
                        specs = [base] * n if side == "base" else adapters[:n]
                        measured = concurrent(engine, specs, args.max_tokens)
                    rounds[side].append(measured["tok_s"])
                    log.info("round %d %s: %.1f tok/s", r, side, rounds[side][-1])
            router.mode = lora.STACK
            decoding = memory_while_decoding(engine, adapters[:n], args.max_tokens)
            # cold: an adapter not loaded yet; warm: the same adapter again, now loaded; alternating
            cold, warm = [], []
            for r in range(min(args.rounds, 2)):  # streams of 2x the tokens each: two pairs are enough
                fresh = adapters[n + r]
                cold.append(stall_while_loading(engine, adapters[:n - 1], fresh, args.max_tokens))
                warm.append(stall_while_loading(engine, adapters[:n - 1], fresh, args.max_tokens))
        finally:
            engine.stop()
        log.info("one decode step, base rows vs adapter rows")
        steps = step_speed(model_dir, adapter_dirs, n, args.step_repeats)
        log.info("MLX's live memory: base, adapters attached, a mixed decode step")
        mlx_bytes = mlx_memory(model_dir, adapter_dirs, n)
    medians = {side: statistics.median(v) for side, v in rounds.items()}
    document: dict[str, object] = {
        "options": {"streams": n, "max_tokens": args.max_tokens, "rounds": args.rounds, "quick": args.quick,
                    "mlx_lm_server": args.mlx_lm_server, "server_rounds": min(args.server_rounds, args.rounds)},
        "load_average": os.getloadavg(),
        "aggregate_tok_s": {side: {"median": medians[side], "rounds": v} for side, v in rounds.items()},
        "adapters_vs_base": {"ratio": ratio(medians["adapters"], medians["base"]), "target": 0.8,
                             "met": ratio(medians["adapters"], medians["base"]) >= 0.8,
                             "mode": lora.STACK,
                             "gather_ratio": ratio(medians["adapters_gather"], medians["base"]),
                             "group_ratio": ratio(medians["adapters_group"], medians["base"]),
                             "faster_mode": MODES[max(MODES, key=lambda side: medians[side])]},
        "decode_step": steps,
        "memory": {"base": base_memory, "base_plus_adapters": adapters_memory,
                   "ratio": ratio(adapters_memory["cache_bytes"], base_alone),
                   "during_mixed_decode": {**decoding, "ratio": ratio(decoding["cache_bytes"], base_alone)},
                   "mlx": mlx_bytes,
                   # the process's whole active memory (prompt caches, KV caches of finished requests too)
                   "mlx_active_ratio": ratio(adapters_memory["mlx_active_bytes"], base_memory["mlx_active_bytes"]),
                   "target": 1.1,
                   "met": max(ratio(decoding["cache_bytes"], base_alone), mlx_bytes["mixed_decode_ratio"],
                              ratio(adapters_memory["cache_bytes"], base_alone)) <= 1.1},
        "adapter_load_while_streaming": {
            "cold_ttft_ms": statistics.median(c["ttft_ms"] for c in cold),
            "warm_ttft_ms": statistics.median(w["ttft_ms"] for w in warm),
            "cold_vs_warm_ttft": ratio(statistics.median(c["ttft_ms"] for c in cold),
                                       statistics.median(w["ttft_ms"] for w in warm)),
            "longest_gap_ms": max(c["longest_gap_ms"] for c in cold),
            "warm_longest_gap_ms": max(w["longest_gap_ms"] for w in warm),
            "median_gap_ms": statistics.median(c["median_gap_ms"] for c in cold),
            # the load's own stall: any newcomer's prompt runs on the engine thread (the warm rounds' gap)
            "cold_vs_warm_longest_gap": ratio(max(c["longest_gap_ms"] for c in cold),
                                              max(w["longest_gap_ms"] for w in warm)),
            "gap_target": 2.0,
            "rounds": {"cold": cold, "warm": warm}},
    }
    if args.mlx_lm_server:
        document["mlx_lm_server"] = {
            "weights": "float32 (the same as ours on the CPU)",
            "ratio_to_our_base": ratio(medians["mlx_lm_server"], medians["base"]),
            "ratio_to_our_adapters": ratio(medians["mlx_lm_server"], medians["adapters"]),
            "median_ttft_ms": statistics.median(server_ttft)}
    return document


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    with stdout_for_json_only() as stdout:
        document = main()
        os.write(stdout, (json.dumps(document, indent=2) + "\n").encode())
