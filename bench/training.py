"""`python -m bench.training [--quick] [--model DIR]`: LoRA training tokens/s through the
trainer service (`python -m trainer_svc`, its own process as `mlx-hub up` runs it:
create -> queue -> worker -> progress on NATS) as a ratio to
`mlx_lm.lora`'s own `train_model` run directly in a subprocess, on the same model,
data and config in the same run (rounds alternate between the two; each side reports its
median round); and the job queue latency (create -> worker start,
create -> first step). One JSON document on stdout, logs on stderr."""

from __future__ import annotations

import trainer_svc  # noqa: F401  (fast BLAS: before anything imports MLX)  # isort: skip
import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from bench import harness
from bench.__main__ import stdout_for_json_only
from bench.timing import Stopwatch
from mlxhub.v1 import registry_pb2, trainer_pb2

log = logging.getLogger("bench.training")

# mlx_lm.lora's train_model with a callback that prints each report as JSON (mlx_lm.lora.run would
# replace the callback with its own reporters).
BASELINE = """
import json, sys, types
import trainer_svc  # the same BLAS as the service's workers
from mlx_lm import lora
from mlx_lm.tuner.callbacks import TrainingCallback
from mlx_lm.tuner.datasets import load_dataset
from mlx_lm.utils import load
class Report(TrainingCallback):
    def on_train_loss_report(self, info):
        print("REPORT " + json.dumps(info), flush=True)
args = types.SimpleNamespace(**{**lora.CONFIG_DEFAULTS, **json.loads(sys.argv[1])})
model, tokenizer = load(args.model)
train, valid, _ = load_dataset(args, tokenizer)
lora.train_model(args, model, train, valid, Report())
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.training", description=__doc__)
    parser.add_argument("--model", help="an mlx-lm model directory (default: a random llama of ~3M parameters)")
    parser.add_argument("--iters", type=int, help="training steps per run (default 60, quick 20)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--report-every", type=int, help="steps per mlx_lm report window (default 5, quick 4)")
    parser.add_argument("--rounds", type=int, help="alternating baseline/service rounds (default 3, quick 1)")
    parser.add_argument("--quick", action="store_true", help="small sizes: well under a minute")
    args = parser.parse_args(argv)
    args.iters = args.iters or (12 if args.quick else 60)
    args.report_every = args.report_every or (4 if args.quick else 5)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.iters < 2 * args.report_every:
        parser.error("--iters must cover at least two report windows (the first one is warm-up)")
    return args


def bench_model(directory: Path) -> Path:
    """A random llama big enough that a step is compute, not overhead (~3M parameters)."""
    from bench.tiny_model import make_tiny_model

    return make_tiny_model(directory, layers=4, hidden_size=256, intermediate_size=688, num_attention_heads=8,
                           num_key_value_heads=4)


def write_dataset(path: Path, records: int = 64) -> Path:
    topics = ["the sea", "mountains", "a small town", "rain", "an old library", "the night sky", "bread", "rivers"]
    with path.open("w") as handle:
        for i in range(records):
            topic = topics[i % len(topics)]
            answer = f"A few words about {topic}: it changes with the seasons."
            handle.write(json.dumps({"messages": [{"role": "user", "content": f"Tell me about {topic} ({i})."},
                                                  {"role": "assistant", "content": answer}]}) + "\n")
    return path


def throughput(reports: list[tuple[int, int, float]]) -> float:
    """tokens / seconds over (step, tokens, tokens_per_second) windows."""
    tokens = sum(t for _, t, _ in reports)
    seconds = sum(t / tps for _, t, tps in reports if tps > 0)
    return tokens / seconds if seconds else 0.0


def run_baseline(model: Path, data_dir: Path, args: argparse.Namespace, work: Path) -> dict:
    config = {"model": str(model), "data": str(data_dir), "train": True, "iters": args.iters,
              "batch_size": args.batch_size, "learning_rate": 1e-4, "steps_per_report": args.report_every,
              "steps_per_eval": 10**6, "save_every": 10**6, "adapter_path": str(work / "baseline-adapter"),
              "num_layers": -1}
    with Stopwatch() as watch:
        done = subprocess.run([sys.executable, "-c", BASELINE, json.dumps(config)], capture_output=True, text=True,
                              check=False, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    if done.returncode:
        raise RuntimeError(f"mlx_lm baseline failed:\n{done.stderr[-3000:]}")
    reports = [json.loads(line[7:]) for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    windows, previous = [], 0
    for r in reports:
        windows.append((r["iteration"], r["trained_tokens"] - previous, r["tokens_per_second"]))
        previous = r["trained_tokens"]
    return {"tokens_per_s": round(throughput(windows[1:]), 2), "windows": len(windows), "wall_s": round(watch.seconds, 2)}


def median_round(rounds: list[dict]) -> dict:
    """The round with the median tokens/s, with every round's tokens/s and the median queue latencies."""
    ordered = sorted(rounds, key=lambda r: r["tokens_per_s"])
    found = {**ordered[(len(ordered) - 1) // 2], "tokens_per_s_rounds": [r["tokens_per_s"] for r in rounds]}
    for key in ("queue_pickup_ms", "create_to_first_step_ms"):
        if key in found:
            found[key] = round(statistics.median(r[key] for r in rounds), 1)
    return found


def run_service(stack, trainer_stub, args: argparse.Namespace) -> dict:
    config = trainer_pb2.TrainingConfig(iters=args.iters, batch_size=args.batch_size, learning_rate=1e-4,
                                        num_layers=-1, steps_per_eval=10**6, save_every=10**6)
    created_at = time.monotonic()
    job = trainer_stub.CreateTrainingJob(trainer_pb2.CreateTrainingJobRequest(
        model="bench/versions/1", dataset="bench-data", config=config)).job
    first_step_at, steps, previous = None, [], 0
    for update in trainer_stub.WatchTrainingJob(trainer_pb2.WatchTrainingJobRequest(id=job.id)):
        if update.HasField("progress") and update.progress.step:
            p = update.progress
            first_step_at = first_step_at or time.monotonic()
            steps.append((p.step, p.trained_tokens - previous, p.tokens_per_second))
            previous = p.trained_tokens
        elif update.HasField("job"):
            job = update.job
    if job.state != trainer_pb2.TRAINING_JOB_STATE_SUCCEEDED:
        raise RuntimeError(f"job {job.id} ended {trainer_pb2.TrainingJobState.Name(job.state)}: {job.failure_reason}")
    pickup = job.start_time.ToDatetime() - job.create_time.ToDatetime()
    return {"tokens_per_s": round(throughput(steps[args.report_every:]), 2), "steps": len(steps), "job": job.id,
            "output_version": job.output_version, "queue_pickup_ms": round(pickup.total_seconds() * 1000, 1),
            "create_to_first_step_ms": round((first_step_at - created_at) * 1000, 1)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from mlxhub.v1 import trainer_pb2_grpc

    work = Path(tempfile.mkdtemp(prefix="mlxhub-bench-training-"))
    with stdout_for_json_only(), Stopwatch() as total, harness.started() as stack:
        model = Path(args.model).resolve() if args.model else bench_model(work / "model")
        data_dir = work / "data"
        data_dir.mkdir()
        dataset = write_dataset(stack.settings.datasets_dir / "bench.jsonl")
        (data_dir / "train.jsonl").write_bytes(dataset.read_bytes())
        stack.stub.CreateModel(registry_pb2.CreateModelRequest(name="bench"))
        stack.stub.CreateModelVersion(registry_pb2.CreateModelVersionRequest(name="bench", artifact_path=str(model)))
        stack.stub.RegisterDataset(registry_pb2.RegisterDatasetRequest(name="bench-data", path=str(dataset)))
        baselines, services = [], []
        with harness.service_process(stack, "trainer_svc", work / "trainer.log", MLXHUB_TRAINER_WORKERS="1"), \
                grpc.insecure_channel(stack.settings.address("trainer")) as channel:
            for round_ in range(1, args.rounds + 1):  # alternated, so drift in the machine's speed hits both alike
                log.info("round %d/%d: mlx_lm.lora directly, %d steps", round_, args.rounds, args.iters)
                baselines.append(run_baseline(model, data_dir, args, work))
                log.info("round %d/%d: the trainer service (its own process, one worker)", round_, args.rounds)
                services.append(run_service(stack, trainer_pb2_grpc.TrainerServiceStub(channel), args))
        baseline, service = median_round(baselines), median_round(services)
        result = {
            "benchmark": "mlx-hub trainer vs mlx_lm.lora",
            "options": {"iters": args.iters, "batch_size": args.batch_size, "report_every": args.report_every,
                        "rounds": args.rounds, "quick": args.quick, "model": str(args.model or "random llama 256x4")},
            "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                            "platform": platform.platform(), "load_average_1m": round(os.getloadavg()[0], 2)},
            "mlx_lm_lora": baseline,
            "service": service,
            "ratio": round(service["tokens_per_s"] / baseline["tokens_per_s"], 3),
            "target_ratio": 0.95,
        }
    result["wall_s"] = round(total.seconds, 2)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
