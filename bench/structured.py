"""`python -m bench.structured [--quick]`: constrained decoding (structured outputs) on the demo model
(SmolLM2-135M), measured in one run on the inference engine itself (in this process).

- Grammar engines on this vocabulary (49k tokens), for the same JSON schema: llguidance (the one the
  engine uses, `inference_svc.decode.constraints`) and outlines-core: the time to compile a schema for
  the tokenizer (llguidance's including its first mask), and the CPU cost of one token's mask along a
  valid answer's tokens (median, max).
- Decode tokens/s of constrained requests as a ratio to unconstrained ones in the same run: N concurrent
  streams all constrained, then all free, alternating rounds, medians compared (target >= 0.9); and one
  mixed batch (half constrained), whose free rows must give their tokens unchanged.

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

import numpy as np

from bench.__main__ import stdout_for_json_only
from bench.timing import ratio

log = logging.getLogger("bench.structured")
GB = 1024**3
SCHEMAS = {
    "person": {"type": "object", "additionalProperties": False, "required": ["name", "age", "email"],
               "properties": {"name": {"type": "string", "maxLength": 24},
                              "age": {"type": "integer", "minimum": 0, "maximum": 120},
                              "email": {"type": "string", "pattern": "^[a-z]{1,12}@[a-z]{1,12}\\.com$"}}},
    "catalogue": {"type": "object", "additionalProperties": False, "required": ["items"],
                  "properties": {"items": {"type": "array", "maxItems": 8, "items": {
                      "type": "object", "additionalProperties": False, "required": ["name", "colour", "tags"],
                      "properties": {"name": {"type": "string", "maxLength": 20},
                                     "colour": {"enum": ["red", "green", "blue", "black", "white"]},
                                     "tags": {"type": "array", "maxItems": 3,
                                              "items": {"type": "string", "maxLength": 12}}}}}}},
}
INSTANCES = {
    "person": {"name": "Ada Lovelace", "age": 36, "email": "ada@math.com"},
    "catalogue": {"items": [{"name": f"chair {i}", "colour": "red", "tags": ["wood", "brown"]} for i in range(4)]},
}
# outlines-core compiles a schema into an index over the whole vocabulary up front (tens of seconds for
# the small one on a loaded 2-core machine): measured on that one only.
OUTLINES_SCHEMAS = ("person",)
PROMPTS = ["Describe a catalogue of furniture as JSON.", "List some products as JSON.",
           "Write a JSON catalogue of clothes.", "Give a JSON list of tools in a shed.",
           "Write a short story about a robot who learns to paint.", "Explain how a bicycle works.",
           "Describe the water cycle.", "Give a recipe for a simple vegetable soup."]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.structured", description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="2 streams, 24 tokens, 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.streams, args.max_tokens, args.rounds = 2, 24, 2
    return args


def llguidance_costs(tokenizer, schema: dict, path: list[int]) -> dict[str, float]:
    from inference_svc.decode import constraints
    from inference_svc.decode.vocabulary import vocabulary

    vocab = vocabulary(tokenizer)
    started = time.perf_counter()
    matcher = constraints.json_schema(schema, tokenizer).matcher  # compiled, with its first mask
    compiled = time.perf_counter() - started
    mask = np.zeros((vocab.vocab_size + 31) // 32, dtype=np.int32)
    costs = []
    for token in path:
        t = time.perf_counter()
        matcher.unsafe_compute_mask_ptr(mask.ctypes.data, mask.nbytes)
        costs.append(time.perf_counter() - t)
        assert matcher.consume_token(token), matcher.get_error()
    return {"compile_ms": compiled * 1000, "mask_us_median": statistics.median(costs) * 1e6,
            "mask_us_max": max(costs) * 1e6}


def outlines_costs(tokenizer, schema: dict, path: list[int]) -> dict[str, float]:
    from outlines_core import Guide, Index, Vocabulary
    from outlines_core.json_schema import build_regex_from_schema

    from inference_svc.decode.vocabulary import vocabulary

    vocab = vocabulary(tokenizer)
    eos = min(tokenizer.eos_token_ids)
    tokens: dict[bytes, list[int]] = {}
    for token in range(vocab.vocab_size):
        if token != eos and not vocab.is_special_token(token):
            tokens.setdefault(vocab.decode_bytes([token]), []).append(token)
    vocabulary_ = Vocabulary(eos, tokens)
    started = time.perf_counter()
    guide = Guide(Index(build_regex_from_schema(json.dumps(schema), whitespace_pattern=""), vocabulary_))
    compiled = time.perf_counter() - started
    mask = np.zeros((vocab.vocab_size + 31) // 32, dtype=np.int32)
    costs = []
    for token in path:
        t = time.perf_counter()
        guide.write_mask_into(mask.ctypes.data, mask.size, 4)
        costs.append(time.perf_counter() - t)
        if token != vocabulary_.get_eos_token_id():
            guide.advance(token)
    return {"compile_ms": compiled * 1000, "mask_us_median": statistics.median(costs) * 1e6,
            "mask_us_max": max(costs) * 1e6}


def concurrent(engine, spec, prompts: list[str], max_tokens: int, constraint_for) -> dict:
    """Decode `prompts` at once; per stream its decode rate and token ids."""
    from inference_svc.decode.generation import Chunk, Done, Request
    from inference_svc.decode.sampling import Sampling

    results: dict[int, dict] = {}

    def run(i: int, prompt: str) -> None:
        constraint = constraint_for(i)
        generation = engine.submit(Request(spec, Sampling(max_tokens=max_tokens),
                                           [{"role": "user", "content": prompt}], constraint=constraint))
        ids, text = [], []
        while True:
            event = generation.events.get(timeout=600)
            if isinstance(event, Chunk):
                ids += event.token_ids
                text.append(event.text)
            else:
                assert isinstance(event, Done), event
                results[i] = {"tok_s": event.tokens_per_second, "tokens": event.completion_tokens, "ids": ids,
                              "text": "".join(text), "constrained": constraint is not None}
                return

    threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(prompts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def main(argv: list[str] | None = None) -> dict[str, object]:
    from inference_svc.cache import ModelSpec
    from inference_svc.decode import constraints
    from inference_svc.decode.engine import Engine
    from inference_svc.decode.vocabulary import vocabulary
    from inference_svc.loader import FLOAT32, load
    from mlxhub.gguf import convert
    from mlxhub.importer import demo_gguf

    args = parse_args(argv)
    n = args.streams
    with tempfile.TemporaryDirectory(prefix="bench-structured-") as tmp:
        log.info("converting the demo model")
        model_dir = convert(demo_gguf(), Path(tmp) / "smollm2")
        loaded = load(str(model_dir), "", FLOAT32)
        tokenizer = loaded.tokenizer
        started = time.perf_counter()
        vocabulary(tokenizer)
        vocabulary_s = time.perf_counter() - started
        engines = {}
        for name, schema in SCHEMAS.items():
            path = tokenizer.encode(json.dumps(INSTANCES[name], separators=(",", ":")), add_special_tokens=False)
            path += [min(tokenizer.eos_token_ids)]
            engines[name] = {"llguidance": llguidance_costs(tokenizer, schema, path), "tokens": len(path)}
            if name in OUTLINES_SCHEMAS:
                engines[name]["outlines_core"] = outlines_costs(tokenizer, schema, path)
            log.info("%s: %s", name, engines[name])
        engine = Engine(lambda spec: loaded, 4 * GB, 60.0, max_running=max(8, n), max_queued=64,
                        tokenizer=lambda spec: tokenizer).start()
        spec = ModelSpec("smollm2/versions/1", str(model_dir))
        schema = SCHEMAS["catalogue"]
        try:
            concurrent(engine, spec, PROMPTS[:1], 4, lambda i: None)  # load and warm
            prompts = [PROMPTS[i % len(PROMPTS)] for i in range(n)]
            rounds: dict[str, list[float]] = {"free": [], "constrained": []}
            for r in range(args.rounds):
                for side in (("free", "constrained") if r % 2 == 0 else ("constrained", "free")):
                    make = (lambda i: constraints.json_schema(schema, tokenizer)) if side == "constrained" else (lambda i: None)
                    results = concurrent(engine, spec, prompts, args.max_tokens, make)
                    rounds[side].append(statistics.mean(v["tok_s"] for v in results.values()))
                    log.info("round %d %s: %.1f tok/s per stream", r, side, rounds[side][-1])
            free_alone = concurrent(engine, spec, prompts[:1], args.max_tokens, lambda i: None)[0]["ids"]
            mixed = concurrent(engine, spec, prompts, args.max_tokens,
                               lambda i: None if i == 0 else constraints.json_schema(schema, tokenizer))
            valid = []
            for result in mixed.values():
                if result["constrained"]:
                    try:
                        valid.append(isinstance(json.loads(result["text"]), dict))
                    except json.JSONDecodeError:
                        valid.append(False)  # cut by max_tokens
        finally:
            engine.stop()
    medians = {side: statistics.median(v) for side, v in rounds.items()}
    return {
        "options": {"streams": n, "max_tokens": args.max_tokens, "rounds": args.rounds, "quick": args.quick},
        "grammar_engines": {"vocabulary_build_s": vocabulary_s, "schemas": engines, "chosen": "llguidance"},
        "decode_tok_s_per_stream": {side: {"median": medians[side], "rounds": v} for side, v in rounds.items()},
        "constrained_vs_free": {"ratio": ratio(medians["constrained"], medians["free"]), "target": 0.9},
        "mixed_batch": {"free_row_unchanged": mixed[0]["ids"] == free_alone,
                        "constrained_rows_complete_json": sum(valid), "constrained_rows": len(valid)},
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    with stdout_for_json_only() as stdout:
        document = main()
        os.write(stdout, (json.dumps(document, indent=2) + "\n").encode())
