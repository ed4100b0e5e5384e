"""`python -m bench.adapters --quick --mlx-lm-server` runs end to end on the demo model (and against
mlx_lm.server, started by the bench on loopback) and prints one JSON document whose figures are
real measurements (no timing targets asserted: those are the benchmark's)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def positive(value) -> bool:
    return isinstance(value, (int, float)) and value > 0 and math.isfinite(value)


def test_quick_adapters_bench_compares_adapters_with_the_base_and_mlx_lm_server_in_one_run():
    done = subprocess.run([sys.executable, "-m", "bench.adapters", "--quick", "--streams", "2", "--max-tokens", "4",
                           "--mlx-lm-server"], cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)  # stdout holds the JSON document and nothing else
    assert result["options"] == {"streams": 2, "max_tokens": 4, "rounds": 1, "quick": True, "mlx_lm_server": True,
                                 "server_rounds": 1}
    for side in ("base", "adapters", "adapters_gather", "adapters_group", "mlx_lm_server"):
        assert positive(result["aggregate_tok_s"][side]["median"]), side
    versus = result["adapters_vs_base"]
    assert positive(versus["ratio"]) and versus["target"] == 0.8 and versus["mode"] == "stack"
    assert versus["faster_mode"] in ("stack", "gather", "group")
    memory = result["memory"]
    # two adapters add only their LoRA matrices (~5 MB each) to the 0.5 GB base: byte accounting, not timing,
    # also while a batch mixes them (their pack is their storage, not a copy beside it)
    assert 1.0 < memory["ratio"] < 1.1 and memory["target"] == 1.1 and memory["met"]
    during = memory["during_mixed_decode"]
    assert during["pack_bytes"] == during["adapter_bytes"] > 0 and 1.0 < during["ratio"] < 1.1
    mlx = memory["mlx"]
    assert mlx["pack_bytes"] == mlx["adapters_matrix_bytes"] <= mlx["adapters_attached_bytes"]
    assert 1.0 < mlx["idle_ratio"] <= mlx["mixed_decode_ratio"] < 1.1
    loads = result["adapter_load_while_streaming"]
    assert all(positive(loads[key]) for key in ("cold_ttft_ms", "warm_ttft_ms", "longest_gap_ms",
                                                 "cold_vs_warm_longest_gap"))
    assert len(loads["rounds"]["cold"]) == len(loads["rounds"]["warm"]) == 1
    server = result["mlx_lm_server"]
    assert positive(server["ratio_to_our_base"]) and positive(server["median_ttft_ms"])
