"""`python -m bench.inference --quick` runs end to end (the service, a gateway and mlx_lm.server as
their own processes) and prints one JSON document whose figures are real measurements."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def positive(value) -> bool:
    return isinstance(value, (int, float)) and value > 0 and math.isfinite(value)


def test_quick_inference_bench_compares_floor_ours_and_mlx_lm_server():
    done = subprocess.run([sys.executable, "-m", "bench.inference", "--quick", "--max-tokens", "6", "--repeats", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)  # stdout holds the JSON document and nothing else
    assert result["options"] == {"max_tokens": 6, "repeats": 1, "concurrency": [1, 2], "quick": True}
    floor = result["floor_stream_generate"]
    assert positive(floor["ttft_ms_p50"]) and positive(floor["decode_tok_s"])
    for name in ("ours_grpc", "ours_gateway"):
        assert positive(result[name]["decode_ratio_to_floor"]) and math.isfinite(result[name]["ttft_overhead_ms_p50"])
    # Greedy decoding through the service gives the floor's text on the same conversation, as does mlx_lm.server.
    assert result["ours_grpc"]["same_text_as_floor"] == 1.0
    assert result["mlx_lm_server"]["single"]["same_text_as_floor"] == 1.0
    versus = result["ours_vs_mlx_lm_server"]
    assert set(versus["aggregate_ratio"]) == {"1", "2"} and all(positive(v) for v in versus["aggregate_ratio"].values())
    assert set(result["second_turn"]["ttft_speedup_vs_floor"]) == {"grpc", "gateway", "peer"}
    assert result["blas"]["blas_off"]["blas"].startswith("reference") and positive(result["blas"]["ttft_speedup"])
    assert result["environment"]["weight_format"] == "float32"
