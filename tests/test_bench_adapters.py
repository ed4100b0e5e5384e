"""`python -m bench.adapters --quick` runs end to end on the demo model and prints one JSON document
whose figures are real measurements (no timing targets asserted: those are the benchmark's)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def positive(value) -> bool:
    return isinstance(value, (int, float)) and value > 0 and math.isfinite(value)


def test_quick_adapters_bench_compares_adapters_with_the_base_in_one_run():
    done = subprocess.run([sys.executable, "-m", "bench.adapters", "--quick", "--streams", "2", "--max-tokens", "4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)  # stdout holds the JSON document and nothing else
    assert result["options"] == {"streams": 2, "max_tokens": 4, "rounds": 1, "quick": True}
    for side in ("base", "adapters", "adapters_group"):
        assert positive(result["aggregate_tok_s"][side]["median"])
    assert positive(result["adapters_vs_base"]["ratio"]) and result["adapters_vs_base"]["faster_mode"] in ("gather", "group")
    memory = result["memory"]
    # two adapters add only their LoRA matrices (~5 MB each) to the 0.5 GB base: byte accounting, not timing
    assert 1.0 < memory["ratio"] < 1.1
    assert positive(result["adapter_load_while_streaming"]["ttft_ms"])
