"""`python -m bench.training --quick` runs end to end and prints one JSON document."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_training_bench_prints_ratio_and_queue_latency():
    done = subprocess.run([sys.executable, "-m", "bench.training", "--quick", "--iters", "8", "--report-every", "4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)
    baseline, service = result["mlx_lm_lora"], result["service"]
    for value in (baseline["tokens_per_s"], service["tokens_per_s"], service["queue_pickup_ms"],
                  service["create_to_first_step_ms"]):
        assert isinstance(value, (int, float)) and value > 0 and math.isfinite(value)
    assert math.isclose(result["ratio"], service["tokens_per_s"] / baseline["tokens_per_s"], abs_tol=0.002)
    assert service["steps"] == 8 and baseline["windows"] == 2
    assert service["output_version"] == "bench/versions/2"
    assert service["create_to_first_step_ms"] >= service["queue_pickup_ms"]
