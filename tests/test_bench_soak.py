"""`python -m bench.soak` for a few seconds at a low rate, against the whole stack (each service its own
process, generation on the tiny random llama): one JSON document whose every figure is a measurement,
no request or stream failed, and every acknowledged write is found again in ReadEvents."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.soak import HUB_PROCESSES, ROUTE_WEIGHTS, WRITE_EVENTS, Write, matches

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_short_soak_has_no_errors_and_replays_every_write():
    options = ["--minutes", "0.1", "--rate", "10", "--warmup-s", "2", "--streams", "4", "--max-tokens", "8",
               "--tiny-model"]
    done = subprocess.run([sys.executable, "-m", "bench.soak", *options], cwd=ROOT, capture_output=True, text=True,
                          timeout=280, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout)  # stdout holds the JSON document and nothing else
    assert result["options"] == {"minutes": 0.1, "rate": 10.0, "streams": 4, "max_tokens": 8, "warmup_s": 2.0,
                                 "tiny_model": True, "seed": 0}
    assert isinstance(result["met"], bool) and result["met"] == all(result["checks"].values())

    routes = result["routes"]
    assert set(routes) == set(ROUTE_WEIGHTS)
    rate = result["rate"]
    assert rate["requests"] == sum(r["count"] for r in routes.values()) >= 40
    assert rate["limited_by"] == "nothing" if rate["met"] else rate["limited_by"].startswith(("the stack", "this client"))
    assert 0 < rate["client_cores"] == result["cpu"]["soak_client"]["cores"]
    for name, route in routes.items():
        assert route["errors"] == 0, (name, route)
        if route["count"]:
            assert 0 < route["p50_ms"] <= route["p99_ms"], (name, route)
    assert result["checks"]["route_errors"] is True

    streams = result["generation_streams"]
    assert streams["errors"] == 0, streams
    assert streams["completed"] >= 4 and streams["completed"] <= streams["tokens"] <= 8 * streams["completed"]
    assert 0 < streams["ttft_p50_ms"] <= streams["duration_p99_ms"]

    replay = result["replay"]
    assert replay["missing_count"] == 0 and replay["missing"] == [], replay
    assert replay["positions_increasing"] and replay["met"]
    assert set(replay["per_kind"]) == set(WRITE_EVENTS)
    assert all(kind["replayed"] == kind["writes"] for kind in replay["per_kind"].values())
    assert replay["writes"] == sum(kind["writes"] for kind in replay["per_kind"].values()) >= 10
    assert replay["per_kind"]["create_model"]["writes"] > 0 and replay["per_kind"]["create_version"]["writes"] > 0
    assert replay["events_read"] >= replay["writes"] + 2  # and the generation model's registration and version

    memory = result["memory"]
    assert set(HUB_PROCESSES) | {"nats", "postgres", "soak_client"} <= set(memory)
    for role in (*HUB_PROCESSES, "nats", "postgres", "soak_client"):
        figures = memory[role]
        assert figures["start_rss_mb"] > 0 and figures["end_rss_mb"] > 0 and figures["growth"] > 0, (role, figures)
        assert figures["raw_start_rss_mb"] > 0, (role, figures)  # read before the warm-up
        assert figures["growth_from_raw_start"] == round(figures["end_rss_mb"] / figures["raw_start_rss_mb"], 3)
        timeline = figures["rss_mb_timeline"]
        assert timeline[0] == figures["start_rss_mb"] and timeline[-1] == figures["end_rss_mb"] and len(timeline) >= 3
        assert figures["growth_second_half"] == round(timeline[-1] / timeline[len(timeline) // 2], 3)
        assert figures["threads"]["start"] >= 1 and figures["threads"]["end"] >= 1, (role, figures)
        assert figures["processes"]["start"] >= 1 and figures["processes"]["end"] >= 1, (role, figures)
    assert memory["registry"]["threads"]["start"] > 8  # its RPC pool's threads, counted
    assert memory["postgres"]["processes"]["start"] > 3  # the postmaster, its own processes and the pool's backends
    times = memory["timeline_s"]
    assert times[0] == 0 and times == sorted(times) and len(times) == len(memory["registry"]["rss_mb_timeline"])
    assert len(memory["load_average_1m_timeline"]) == len(times)
    assert all(memory[role]["target_growth"] == 1.10 and "met" in memory[role] for role in HUB_PROCESSES)
    assert set(result["cpu"]) == set(memory) - {"note", "timeline_s", "load_average_1m_timeline"}
    assert all(result["cpu"][role]["cpu_s"] > 0 for role in (*HUB_PROCESSES, "soak_client"))


def test_replay_check_matches_the_event_a_write_recorded_and_nothing_else():
    version = Write("create_version", "r1", "model/a", version=2)
    event = {"type": "ModelVersionCreated", "aggregate": "model/a", "data": {"version": 2.0}}
    assert matches(version, event)
    assert not matches(version, {**event, "data": {"version": 1.0}})
    assert not matches(version, {**event, "aggregate": "model/b"})
    assert not matches(version, {**event, "type": "ModelUpdated"})
    alias = Write("set_alias", "r2", "model/a", version=3)
    moved = {"type": "AliasMoved", "aggregate": "model/a", "data": {"alias": "prod", "version": 3, "previous_version": 0}}
    assert matches(alias, moved)
    assert not matches(alias, {**moved, "data": {"alias": "other", "version": 3}})
    assert matches(Write("register_dataset", "r3", "dataset/d"), {"type": "DatasetRegistered", "aggregate": "dataset/d"})
