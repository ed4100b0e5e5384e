"""`python -m bench.adapters [--quick]`: many LoRA adapter versions of the demo model (SmolLM2-135M)
served from one base in one batch, measured in one run on the inference engine itself (in this
process, with the service's loader, cache and memory estimates; `python -m bench.inference`
measures what gRPC and the gateway add on top).

- Aggregate decode tokens/s of 8 concurrent greedy streams spread over 8 different adapter
  versions, as a ratio to 8 streams on the base alone; rounds alternate (base, adapters,
  adapters, base, ...) and the medians are compared (target >= 0.8).
- The same 8-adapter load with each way of adding the per-row low-rank terms
  (`inference_svc.lora`: gather the rows' matrices, or one matmul pair per adapter).
- Memory: the cache's bytes and MLX's active memory with the base and 8 adapters loaded, as a
  ratio to the base alone (target <= 1.1).
- TTFT of a request whose adapter is not loaded yet while the other streams decode, and the
  longest gap between two tokens of those streams meanwhile (an adapter load must not stall them).

The adapters are random (no training): mlx-lm's format (`adapters.safetensors`,
`adapter_config.json`), rank 8 on the attention and MLP projections of the last 16 layers.
One JSON document on stdout, logs on stderr."""

from __future__ import annotations

import inference_svc  # noqa: F401  (fast BLAS: before anything imports MLX)  # isort: skip
import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten

from bench.__main__ import stdout_for_json_only
from bench.inference import PROMPTS  # the same conversations as the inference bench
from bench.timing import ratio

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
    args = parser.parse_args(argv)
    args.max_tokens = args.max_tokens or (8 if args.quick else 48)
    args.rounds = args.rounds or (1 if args.quick else 3)
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


def concurrent(engine, specs: list, max_tokens: int) -> dict[str, object]:
    """`len(specs)` streams at once, stream i on specs[i]: aggregate decode tokens/s (after each stream's
    first token, over the window they all decode in) and the streams' results."""
    results: list[dict] = [{}] * len(specs)

    def run(i: int) -> None:
        results[i] = generate(engine, specs[i], PROMPTS[i % len(PROMPTS)], max_tokens)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(specs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    start = min(r["times"][0] for r in results)
    end = max(r["times"][-1] for r in results)
    tokens = sum(r["tokens"] - 1 for r in results)
    return {"tok_s": tokens / (end - start) if end > start else 0.0, "results": results}


def memory(engine) -> dict[str, float]:
    entries = engine.cache.snapshot()
    return {"cache_bytes": sum(e.loaded.nbytes for e in entries), "mlx_active_bytes": mx.get_active_memory()}


def stall_while_loading(engine, streamers: list, newcomer, max_tokens: int) -> dict[str, float]:
    """TTFT of a request on an adapter not loaded yet, sent while `streamers` decode, and the longest
    gap between two tokens of theirs meanwhile (vs their median gap)."""
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
    return {"ttft_ms": late["ttft"] * 1000, "longest_gap_ms": max(gaps) * 1000 if gaps else 0.0,
            "median_gap_ms": statistics.median(gaps) * 1000 if gaps else 0.0}


def main(argv: list[str] | None = None) -> dict[str, object]:
    from inference_svc import lora
    from inference_svc.cache import ModelSpec
    from mlxhub.gguf import convert
    from mlxhub.importer import demo_gguf

    args = parse_args(argv)
    n = args.streams
    with tempfile.TemporaryDirectory(prefix="bench-adapters-") as tmp:
        work = Path(tmp)
        log.info("converting the demo model")
        model_dir = convert(demo_gguf(), work / "smollm2")
        adapter_dirs = [make_adapter(model_dir, work / f"adapter-{i}", seed=i) for i in range(n + 1)]
        base = ModelSpec("smollm2/versions/1", str(model_dir))
        adapters = [ModelSpec(f"smollm2/versions/{i + 2}", str(model_dir), str(d), base.version)
                    for i, d in enumerate(adapter_dirs)]
        engine = build_engine(model_dir, n)
        try:
            generate(engine, base, PROMPTS[0], 4)  # load and warm the base
            base_memory = memory(engine)
            for spec in adapters[:n]:
                generate(engine, spec, PROMPTS[0], 2)
            adapters_memory = memory(engine)
            rounds = {"base": [], "adapters": [], "adapters_group": []}
            router = engine.cache.loaded(base).router
            for r in range(args.rounds):
                order = ["base", "adapters", "adapters_group"] if r % 2 == 0 else ["adapters_group", "adapters", "base"]
                for side in order:
                    router.mode = lora.GROUP if side == "adapters_group" else lora.GATHER
                    specs = [base] * n if side == "base" else adapters[:n]
                    rounds[side].append(concurrent(engine, specs, args.max_tokens)["tok_s"])
                    log.info("round %d %s: %.1f tok/s", r, side, rounds[side][-1])
            router.mode = lora.GATHER
            stall = stall_while_loading(engine, adapters[:n - 1], adapters[n], args.max_tokens)
        finally:
            engine.stop()
    medians = {side: statistics.median(v) for side, v in rounds.items()}
    return {
        "options": {"streams": n, "max_tokens": args.max_tokens, "rounds": args.rounds, "quick": args.quick},
        "aggregate_tok_s": {side: {"median": medians[side], "rounds": v} for side, v in rounds.items()},
        "adapters_vs_base": {"ratio": ratio(medians["adapters"], medians["base"]), "target": 0.8,
                             "group_ratio": ratio(medians["adapters_group"], medians["base"]),
                             "faster_mode": "gather" if medians["adapters"] >= medians["adapters_group"] else "group"},
        "memory": {"base": base_memory, "base_plus_adapters": adapters_memory,
                   "ratio": ratio(adapters_memory["cache_bytes"], base_memory["cache_bytes"]),
                   "mlx_active_ratio": ratio(adapters_memory["mlx_active_bytes"], base_memory["mlx_active_bytes"]),
                   "target": 1.1},
        "adapter_load_while_streaming": stall,
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    with stdout_for_json_only() as stdout:
        document = main()
        os.write(stdout, (json.dumps(document, indent=2) + "\n").encode())
