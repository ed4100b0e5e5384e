"""`python -m bench --quick` runs end to end against the real stack and prints one JSON document."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = {
    "appends": [
        "grpc_sequential_events_per_s", "grpc_concurrent_events_per_s", "raw_insert_commit_per_s",
        "raw_concurrent_insert_commit_per_s", "ratio_sequential", "ratio_concurrent", "grpc_health_check_per_s",
        "ratio_health_check_over_raw", "ratio_sequential_ceiling", "append_alone_per_s", "ratio_append_alone_over_raw",
        "ratio_sequential_ceiling_with_append",
    ],
    "replay": ["grpc_read_events_per_s", "raw_select_rows_per_s", "ratio", "in_process_decode_events_per_s",
               "gateway_ndjson_events_per_s", "grpc_batched_events_per_s", "ratio_batched", "target_ratio_batched",
               "grpc_batched_registry_process_events_per_s", "ratio_batched_registry_process"],
    "latency": ["gateway_p50_ms", "gateway_p99_ms", "grpc_p50_ms", "grpc_p99_ms", "ratio_p50", "ratio_p99"],
    "rebuild": ["rebuild_s", "raw_read_s", "ratio", "target_ratio", "rebuild_events_per_s", "command_s", "target_s"],
    "throughput": ["grpc_calls_per_s", "gateway_calls_per_s", "ratio", "target_ratio"],
}  # fmt: skip


def test_quick_bench_prints_one_json_document_with_positive_figures():
    sizes = ["--events", "8", "--seed-events", "300", "--calls", "40", "--rebuild-events", "400",
             "--clients", "8"]  # smaller than --quick
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", *sizes],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)  # stdout holds the JSON document and nothing else
    assert "bench.appends" in done.stderr  # progress is logged to stderr
    assert result["options"] == {"events": 8, "seed_events": 300, "calls": 40, "threads": 4, "clients": 8,
                                 "quick": True, "rebuild_events": 400}
    for section, keys in SECTIONS.items():
        for key in keys:
            value = result[section][key]
            assert isinstance(value, (int, float)) and value > 0 and math.isfinite(value), (section, key, value)
    appends, replay, latency, rebuild = result["appends"], result["replay"], result["latency"], result["rebuild"]
    # The append ratios are medians of each alternating round's ratio (a stall in one round does not decide them)
    for name in ("sequential", "concurrent", "clients_over_sequential", "health_check_over_raw", "append_alone_over_raw"):
        rounds = appends["round_ratios"][name]
        assert len(rounds) == appends["rounds"] and all(value > 0 for value in rounds), (name, rounds)
        assert math.isclose(appends[f"ratio_{name}"], statistics.median(rounds), rel_tol=1e-4), (name, rounds)
    for ratio, value, baseline in (
        (replay["ratio"], replay["grpc_read_events_per_s"], replay["raw_select_rows_per_s"]),
        (replay["ratio_batched"], replay["grpc_batched_events_per_s"], replay["raw_select_rows_per_s"]),
        (replay["ratio_batched_registry_process"], replay["grpc_batched_registry_process_events_per_s"],
         replay["raw_select_rows_per_s"]),
        (rebuild["ratio"], rebuild["rebuild_s"], rebuild["raw_read_s"]),
        (latency["ratio_p50"], latency["gateway_p50_ms"], latency["grpc_p50_ms"]),
        (result["throughput"]["ratio"], result["throughput"]["gateway_calls_per_s"],
         result["throughput"]["grpc_calls_per_s"]),
    ):
        assert math.isclose(ratio, value / baseline, rel_tol=0.01), (ratio, value, baseline)
    health_check = appends["ratio_health_check_over_raw"]
    assert math.isclose(appends["ratio_sequential_ceiling"], 1 / (1 / health_check + 1), rel_tol=1e-3)
    alone = appends["ratio_append_alone_over_raw"]
    assert math.isclose(appends["ratio_sequential_ceiling_with_append"], 1 / (1 / health_check + 1 / alone), rel_tol=1e-3)
    assert appends["registry"] == "own process"  # its appends went to its own database
    assert replay["events"] >= replay["seeded"]
    assert latency["gateway_p99_ms"] >= latency["gateway_p50_ms"]
    assert latency["grpc_p99_ms"] >= latency["grpc_p50_ms"]
    assert latency["calls"] == 40
    assert result["throughput"]["clients"] == 8
    assert rebuild["events"] == 400 and rebuild["read_model"]["model_count"] > 0
    follow = replay["follow_latency"]
    assert follow["samples"] == 20 and 0 < follow["p50_ms"] <= follow["p99_ms"] and follow["target_p99_ms"] == 50
    assert isinstance(replay["target_met"], bool) and isinstance(rebuild["target_met"], bool)
    assert result["wall_s"] > 0
